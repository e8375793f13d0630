"""Changelog-backed state, the pure half: keys, sealing, confirming, replaying, and when a local copy is usable."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from fs_bus.errors import DecodeError
from fs_bus.runtime.python import protocol as p
from fs_bus.state.backend import MemoryBackend, SqliteBackend
from fs_bus.state.changelog import (
    DELETE_RETENTION_MS, INTERNAL_STORE, POSITION_KEY, TOPIC_NAME_MAX, Change, ChangelogBackend, changelog_topic, decode_key, encode_key, usable,
)

import pytest

stores = st.sampled_from(["a", "b", "counter-store", "__fs_bus__", "ü"])
keys = st.binary(max_size=6)
values = st.binary(max_size=8)
ops = st.lists(st.one_of(
    st.tuples(st.just("put"), stores, keys, values),
    st.tuples(st.just("delete"), stores, keys),
    st.tuples(st.just("delete_range"), stores, keys, st.none() | keys),
    st.just(("checkpoint",)),
), max_size=60)


def _apply(backend, op) -> None:
    if op[0] == "put":
        backend.put(op[1], op[2], op[3])
    elif op[0] == "delete":
        backend.delete(op[1], op[2])
    elif op[0] == "delete_range":
        backend.delete_range(op[1], op[2], op[3])
    else:
        backend.checkpoint()


def _contents(backend) -> dict:
    """Every store's entries, without the local-only record of the changelog position."""
    return {s: [(k, v) for k, v in backend.scan(s, b"", None) if (s, k) != (INTERNAL_STORE, POSITION_KEY)]
            for s in ["a", "b", "counter-store", "__fs_bus__", "ü"]}


@given(stores, st.binary(max_size=40))
def test_keys_round_trip(store, key):
    assert decode_key(encode_key(store, key)) == (store, key)


@settings(max_examples=500)
@given(st.binary(max_size=20))
def test_garbage_keys_are_decode_errors_or_keys(data):
    try:
        store, key = decode_key(data)
    except DecodeError:
        return
    assert encode_key(store, key) == data


@settings(max_examples=300)
@given(ops)
def test_replaying_what_was_sealed_rebuilds_the_same_state(script):
    """The changelog's whole promise: an empty store that applies every sealed change
    in order holds what the live store holds."""
    live = ChangelogBackend(MemoryBackend(page_size=2))
    replica = ChangelogBackend(MemoryBackend())
    for op in script + [("checkpoint",)]:
        _apply(live, op)
        if op[0] == "checkpoint":
            for change in live.sealed():
                replica.apply(change)
            live.confirm(0, 0)
    assert _contents(replica) == _contents(live)


def test_sealed_changes_hold_the_latest_value_per_key_and_deletes_as_none():
    b = ChangelogBackend(MemoryBackend())
    b.put("s", b"k", b"1")
    b.put("s", b"k", b"2")
    b.put("s", b"gone", b"x")
    b.delete("s", b"gone")
    b.checkpoint()
    assert sorted(b.sealed(), key=lambda c: c.key) == [Change("s", b"gone", None), Change("s", b"k", b"2")]


def test_delete_range_is_a_tombstone_per_key_present():
    b = ChangelogBackend(MemoryBackend())
    for k in (b"a1", b"a2", b"b1"):
        b.put("s", k, b"v")
    b.checkpoint()
    b.confirm(3, 0)
    b.delete_range("s", b"a", b"b")
    b.checkpoint()
    assert sorted(b.sealed(), key=lambda c: c.key) == [Change("s", b"a1", None), Change("s", b"a2", None)]


def test_nothing_is_committed_locally_until_confirm(tmp_path):
    path = tmp_path / "p.sqlite"
    b = ChangelogBackend(SqliteBackend(path))
    b.put("s", b"k", b"v")
    b.checkpoint()  # sealed, but the changelog does not hold it yet
    b.close()
    again = ChangelogBackend(SqliteBackend(path))
    assert again.get("s", b"k") is None and again.position() is None
    again.put("s", b"k", b"v")
    again.checkpoint()
    again.confirm(17, 1234)
    again.close()
    last = ChangelogBackend(SqliteBackend(path))
    assert last.get("s", b"k") == b"v" and last.position() == (17, 1234)
    assert last.sealed() == []  # the position is local bookkeeping, never a change
    last.close()


@pytest.mark.parametrize("position, low, high, now, ok", [
    (None, 0, 0, 0, False),
    ((5, 0), 0, 9, 1, True),
    ((9, 0), 0, 9, 1, True),  # caught up exactly
    ((10, 0), 0, 9, 1, False),  # beyond the end: the topic was recreated
    ((3, 0), 4, 9, 1, False),  # before the start: records it needs are gone
    ((5, 0), 0, 9, DELETE_RETENTION_MS, False),  # older than tombstones are kept
])
def test_when_a_local_copy_can_catch_up(position, low, high, now, ok):
    assert usable(position, low, high, now) is ok


def test_changelog_topic_names_carry_the_generation_and_stay_legal():
    assert changelog_topic("ns", "f", 0, "in") == "ns.changelog.f.g0.in"
    assert changelog_topic("ns", "f", 1, "in") != changelog_topic("ns", "f", 0, "in")
    long = changelog_topic("ns", "f" * 200, 3, "t" * 200)
    assert len(long) == TOPIC_NAME_MAX and long != changelog_topic("ns", "f" * 200, 4, "t" * 200)


@given(st.lists(st.builds(Change, stores, keys, st.none() | values), max_size=20))
def test_the_python_process_ships_changes_intact(changes):
    reply = p.Reply(p.encode_changes(changes))
    assert reply.u8() == p.Status.OK
    assert reply.changes() == changes


@settings(max_examples=500)
@given(st.binary(max_size=60))
def test_a_garbled_changes_reply_is_a_protocol_error(data):
    try:
        p.Reply(data).changes()
    except p.ProtocolError:
        pass
