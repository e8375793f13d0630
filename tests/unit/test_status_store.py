"""The status store's fold skips (and reports) a record that does not decode, never hiding the others;
the calls router picks the call partition and drops calls whose callers gave up."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fs_bus.calls.records import CallRequest
from fs_bus.calls.router import CallInbox, call_partition
from fs_bus.clock import now_ms
from fs_bus.config.validate import parse_config
from fs_bus.status import records as status
from fs_bus.status.records import FunctionStatus, ObservedState, StatusTable
from fs_bus.status.store import fold


@dataclass
class Msg:
    k: bytes | None
    v: bytes | None
    off: int = 0

    def key(self): return self.k
    def value(self): return self.v
    def topic(self): return "ns.status"
    def partition(self): return 0
    def offset(self): return self.off


def test_a_bad_status_record_is_reported_and_skipped(caplog) -> None:
    good = FunctionStatus("f", "n1", 2, ObservedState.RUNNING, None, ("in:0",), 1)
    table = fold(StatusTable(), Msg(status.function_key("f", "n1"), status.encode_status(good)))
    with caplog.at_level(logging.WARNING, logger="fs_bus.status.store"):
        after = fold(table, Msg(b"function/f/n2", b"garbage", 7))
    assert after is table and after.of_function("f") == {"n1": good}
    assert "ns.status[0]@7" in caplog.text


def test_a_tombstone_forgets_a_functions_status() -> None:
    good = FunctionStatus("f", "n1", 2, ObservedState.RUNNING, None, (), 1)
    table = fold(StatusTable(), Msg(status.function_key("f", "n1"), status.encode_status(good)))
    assert fold(table, Msg(status.function_key("f", "n1"), None)).of_function("f") == {}


CONFIG = """\
name: f
type: processor
input-groups: [{inputs: [{bootstrap_servers: "k:9092", topic: b, group_id: g, partition: 3},
                         {bootstrap_servers: "k:9092", topic: a, group_id: g}]}]
outputs: [{bootstrap_servers: "k:9092", topic: o}]
"""


def test_calls_go_to_the_first_inputs_lowest_partition() -> None:
    assert call_partition(parse_config(CONFIG)) == ("b", 3)
    assert call_partition(parse_config(CONFIG.replace(", partition: 3", ""))) == ("b", 0)


def test_an_inbox_keeps_calls_for_its_partition_only_and_drops_expired_ones() -> None:
    inbox = CallInbox(parse_config(CONFIG))
    live = CallRequest("1", "f", b"", now_ms(), now_ms() + 60_000)
    expired = CallRequest("2", "f", b"", now_ms() - 2000, now_ms() - 1000)
    assert inbox.offer(live, owns_partition=True) and inbox.offer(expired, owns_partition=True)
    assert not inbox.offer(CallRequest("3", "f", b"", 0, now_ms() + 60_000), owns_partition=False)
    assert [r.id for r in inbox.take()] == ["1"]
    assert list(inbox.take()) == []


def test_a_status_round_trips_with_its_error_count_and_an_older_one_reads_as_no_errors() -> None:
    import io

    import fastavro

    from fs_bus.control import codec

    counted = FunctionStatus("f", "n1", 2, ObservedState.RUNNING, "1 record(s) skipped", ("in:0",), 1, errors=7)
    key = status.function_key("f", "n1")
    assert status.apply(StatusTable(), key, status.encode_status(counted)).of_function("f") == {"n1": counted}
    old = codec._load(codec.HISTORY_DIR / "function_status.v1.avsc")  # as a node from before the count wrote it
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old.parsed, {"function": "f", "node_id": "n1", "revision": 2, "state": "RUNNING",
                                                 "error": None, "partitions": ["in:0"], "updated_at": 1})
    written_before = codec.MAGIC + old.fingerprint + buf.getvalue()
    assert old.fingerprint != codec.schemas()["FunctionStatus"].fingerprint
    (st,) = status.apply(StatusTable(), key, written_before).of_function("f").values()
    assert st.errors == 0 and st.partitions == ("in:0",)


def test_folding_in_place_gives_the_table_folding_by_copy_gives() -> None:
    from fs_bus.status.store import fold_into

    @dataclass
    class Rec:
        k: bytes
        v: bytes | None

        def key(self): return self.k
        def value(self): return self.v
        def topic(self): return "ns.status"
        def partition(self): return 0
        def offset(self): return 0

    def st(fn: str, node: str, revision: int) -> Rec:
        return Rec(status.function_key(fn, node), status.encode_status(
            FunctionStatus(fn, node, revision, ObservedState.RUNNING, None, ("t:0",), 1)))

    log = [st("f", "n1", 1), st("g", "n1", 1), st("f", "n2", 1), st("f", "n1", 2),
           Rec(status.function_key("g", "n1"), None), Rec(b"garbage", b"\x00"), st("g", "n2", 3)]
    copied, in_place = StatusTable(), StatusTable()
    for rec in log:
        copied = fold(copied, rec)
        in_place = fold_into(in_place, rec)
    assert in_place == copied and set(in_place.functions) == {("f", "n1"), ("f", "n2"), ("g", "n2")}
