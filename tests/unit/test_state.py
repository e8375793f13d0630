"""State back ends (fs_bus.state.backend) and the kv semantics over them (fs_bus.state.kv),
checked against plain dict models."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from fs_bus.state.backend import (
    _DELETE_FROM,
    _DELETE_RANGE,
    _SCAN_FROM,
    _SCAN_RANGE,
    MemoryBackend,
    SqliteBackend,
    StateBackend,
    StateError,
    prefix_end,
)
from fs_bus.state.kv import ComplexKey, KvIterator, KvStore, append, encode_complex

# Few distinct byte values and short keys, so that hypothesis hits equal keys,
# shared prefixes, 0x00 and 0xff edges all the time.
small_bytes = st.lists(st.sampled_from([0x00, 0x01, 0x7F, 0xFF]), max_size=3).map(bytes)
values = st.binary(max_size=4)
store_names = st.sampled_from(["a", "b"])

STATEFUL = settings(max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def in_range(key: bytes, start: bytes, end: bytes | None) -> bool:
    return key >= start and (end is None or key < end)


# --- the backends against a dict model ------------------------------------------


class BackendMachine(RuleBasedStateMachine):
    """Any sequence of writes leaves a backend observably equal to a dict per store.
    A tiny page size makes every scan cross page boundaries."""

    make: Callable[[Path], StateBackend]

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="fs-bus-state-"))
        self.backend = self.make(self.dir)
        self.model: dict[str, dict[bytes, bytes]] = {"a": {}, "b": {}}

    def teardown(self) -> None:
        self.backend.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(store=store_names, key=small_bytes, value=values)
    def put(self, store: str, key: bytes, value: bytes) -> None:
        self.backend.put(store, key, value)
        self.model[store][key] = value

    @rule(store=store_names, key=small_bytes)
    def delete(self, store: str, key: bytes) -> None:
        self.backend.delete(store, key)
        self.model[store].pop(key, None)

    @rule(store=store_names, start=small_bytes, end=st.none() | small_bytes)
    def delete_range(self, store: str, start: bytes, end: bytes | None) -> None:
        self.backend.delete_range(store, start, end)
        self.model[store] = {k: v for k, v in self.model[store].items() if not in_range(k, start, end)}

    @rule(store=store_names, key=small_bytes)
    def get(self, store: str, key: bytes) -> None:
        assert self.backend.get(store, key) == self.model[store].get(key)

    @rule(store=store_names, start=small_bytes, end=st.none() | small_bytes)
    def scan(self, store: str, start: bytes, end: bytes | None) -> None:
        expected = sorted((k, v) for k, v in self.model[store].items() if in_range(k, start, end))
        assert list(self.backend.scan(store, start, end)) == expected

    @rule()
    def checkpoint(self) -> None:
        self.backend.checkpoint()

    @invariant()
    def whole_stores_match(self) -> None:
        for store, data in self.model.items():
            assert list(self.backend.scan(store, b"", None)) == sorted(data.items())


class MemoryBackendMachine(BackendMachine):
    make = staticmethod(lambda _dir: MemoryBackend(page_size=2))


class SqliteBackendMachine(BackendMachine):
    """The same, plus crashes: closing without a checkpoint and reopening gives
    back exactly the state of the last checkpoint."""

    make = staticmethod(lambda d: SqliteBackend(d / "p0.sqlite", page_size=2))

    def __init__(self) -> None:
        super().__init__()
        self.committed: dict[str, dict[bytes, bytes]] = {"a": {}, "b": {}}

    @rule()
    def checkpoint(self) -> None:
        self.backend.checkpoint()
        self.committed = {s: dict(d) for s, d in self.model.items()}

    @rule()
    def crash_and_reopen(self) -> None:
        self.backend.close()
        self.backend = self.make(self.dir)
        self.model = {s: dict(d) for s, d in self.committed.items()}


TestMemoryBackend = MemoryBackendMachine.TestCase
TestMemoryBackend.settings = STATEFUL
TestSqliteBackend = SqliteBackendMachine.TestCase
TestSqliteBackend.settings = STATEFUL


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    b: StateBackend = MemoryBackend(page_size=3) if request.param == "memory" else SqliteBackend(tmp_path / "p.sqlite", page_size=3)
    yield b
    b.close()


def test_sqlite_state_survives_close_and_reopen_after_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "p0.sqlite"
    b = SqliteBackend(path)
    b.put("s", b"k", b"v1")
    b.checkpoint()
    b.close()
    b = SqliteBackend(path)
    assert b.get("s", b"k") == b"v1"
    b.close()


def test_sqlite_loses_changes_since_the_last_checkpoint_on_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "p0.sqlite"
    b = SqliteBackend(path)
    b.put("s", b"kept", b"1")
    b.checkpoint()
    b.put("s", b"lost", b"2")
    b.delete("s", b"kept")
    b.close()  # no checkpoint: as if the process had died here
    b = SqliteBackend(path)
    assert list(b.scan("s", b"", None)) == [(b"kept", b"1")]
    b.close()


def test_sqlite_committed_state_is_what_another_connection_sees(tmp_path: Path) -> None:
    # Durable means "in the file", not "visible to this connection".
    path = tmp_path / "p0.sqlite"
    b = SqliteBackend(path)
    b.put("s", b"k", b"v")
    peek = sqlite3.connect(path)
    assert peek.execute("SELECT count(*) FROM kv").fetchone() == (0,)
    b.checkpoint()
    assert peek.execute("SELECT key, value FROM kv").fetchall() == [(b"k", b"v")]
    peek.close()
    b.close()


@pytest.mark.parametrize(
    "sql, args",
    [
        (_SCAN_RANGE, ("s", b"a", b"b", 10)),
        (_SCAN_FROM, ("s", b"a", 10)),
        (_DELETE_RANGE, ("s", b"a", b"b")),
        (_DELETE_FROM, ("s", b"a")),
    ],
)
def test_sqlite_ranges_are_primary_key_seeks_not_full_scans(tmp_path: Path, sql: str, args: tuple[object, ...]) -> None:
    b = SqliteBackend(tmp_path / "p0.sqlite")
    plan = " | ".join(row[3] for row in b._conn().execute(f"EXPLAIN QUERY PLAN {sql}", args))
    b.close()
    assert "USING PRIMARY KEY (store=? AND key>?" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


def test_closed_backend_raises_state_error(backend: StateBackend) -> None:
    backend.close()
    with pytest.raises(StateError, match="closed"):
        backend.get("s", b"k")
    with pytest.raises(StateError, match="closed"):
        backend.put("s", b"k", b"v")


def test_scan_stays_ordered_while_the_store_is_written_between_items(backend: StateBackend) -> None:
    keys = [bytes([i]) for i in range(0, 40, 2)]
    for k in keys:
        backend.put("s", k, b"v")
    seen = []
    for key, _ in backend.scan("s", b"", None):
        seen.append(key)
        backend.delete("s", key)  # behind the scan
        backend.put("s", key + b"\x00", b"new")  # right ahead of it, on the same page or not
        backend.put("s", b"\x00", b"far behind")
    # every original key once, in order; the keys written ahead may show up
    # (pages are read as they are when fetched), never out of order or twice
    assert seen == sorted(set(seen))
    assert [k for k in seen if k in keys] == keys


def test_prefix_end() -> None:
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None


@settings(max_examples=500, deadline=None)
@given(prefix=small_bytes, key=small_bytes)
def test_prefix_range_holds_exactly_the_keys_with_that_prefix(prefix: bytes, key: bytes) -> None:
    assert key.startswith(prefix) == in_range(key, prefix, prefix_end(prefix))


# --- KvStore: the world's semantics against a dict model -------------------------------

# Components chosen so that naive concatenation would collide: (b"ab", b"") and
# (b"a", b"b") must stay apart.
key_groups = st.sampled_from([b"", b"a", b"ab"])
keys = st.sampled_from([b"", b"b", b"\x00"])
namespaces = st.sampled_from([b"", b"\xff"])
complex_keys = st.builds(ComplexKey, key_groups, keys, namespaces, small_bytes)

Triple = tuple[bytes, bytes, bytes]


class KvStoreMachine(RuleBasedStateMachine):
    """Simple and complex keys of two stores on one backend behave like dicts;
    ranges, prefixes and iterators give exactly the model's keys, in order."""

    make: Callable[[Path], StateBackend]
    iterators = Bundle("iterators")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="fs-bus-kv-"))
        self.backend = self.make(self.dir)
        self.stores = {name: KvStore(self.backend, name, page_size=2) for name in ("a", "b")}
        self.simple: dict[str, dict[bytes, bytes]] = {"a": {}, "b": {}}
        self.complex: dict[str, dict[ComplexKey, bytes]] = {"a": {}, "b": {}}
        # id(iterator) -> (store, triple, last user key returned or None)
        self.cursors: dict[int, tuple[str, Triple, bytes | None]] = {}

    def teardown(self) -> None:
        self.backend.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def user_keys(self, store: str, triple: Triple) -> list[bytes]:
        return sorted(ck.user_key for ck in self.complex[store] if (ck.key_group, ck.key, ck.namespace) == triple)

    # simple keys
    @rule(store=store_names, key=small_bytes, value=values)
    def put_state(self, store: str, key: bytes, value: bytes) -> None:
        self.stores[store].put_state(key, value)
        self.simple[store][key] = value

    @rule(store=store_names, key=small_bytes)
    def delete_state(self, store: str, key: bytes) -> None:
        self.stores[store].delete_state(key)
        self.simple[store].pop(key, None)

    @rule(store=store_names, key=small_bytes)
    def get_state(self, store: str, key: bytes) -> None:
        assert self.stores[store].get_state(key) == self.simple[store].get(key)

    @rule(store=store_names, start=small_bytes, end=small_bytes)
    def list_states(self, store: str, start: bytes, end: bytes) -> None:
        expected = sorted(k for k in self.simple[store] if start <= k < end)
        assert self.stores[store].list_states(start, end) == expected

    # complex keys
    @rule(store=store_names, ck=complex_keys, value=values)
    def put(self, store: str, ck: ComplexKey, value: bytes) -> None:
        self.stores[store].put(ck, value)
        self.complex[store][ck] = value

    @rule(store=store_names, ck=complex_keys)
    def delete(self, store: str, ck: ComplexKey) -> None:
        self.stores[store].delete(ck)
        self.complex[store].pop(ck, None)

    @rule(store=store_names, ck=complex_keys, value=values)
    def merge(self, store: str, ck: ComplexKey, value: bytes) -> None:
        self.stores[store].merge(ck, value)
        self.complex[store][ck] = self.complex[store].get(ck, b"") + value

    @rule(store=store_names, ck=complex_keys)
    def delete_prefix(self, store: str, ck: ComplexKey) -> None:
        self.stores[store].delete_prefix(ck)
        self.complex[store] = {
            k: v
            for k, v in self.complex[store].items()
            if not ((k.key_group, k.key, k.namespace) == (ck.key_group, ck.key, ck.namespace) and k.user_key.startswith(ck.user_key))
        }

    @rule(store=store_names, ck=complex_keys)
    def get(self, store: str, ck: ComplexKey) -> None:
        assert self.stores[store].get(ck) == self.complex[store].get(ck)

    @rule(store=store_names, kg=key_groups, key=keys, ns=namespaces, start=small_bytes, end=small_bytes)
    def list_complex(self, store: str, kg: bytes, key: bytes, ns: bytes, start: bytes, end: bytes) -> None:
        expected = [u for u in self.user_keys(store, (kg, key, ns)) if start <= u < end]
        assert self.stores[store].list_complex(kg, key, ns, start, end) == expected

    @rule(store=store_names, kg=key_groups, key=keys, ns=namespaces)
    def scan_complex_to_the_end(self, store: str, kg: bytes, key: bytes, ns: bytes) -> None:
        it = self.stores[store].scan_complex(kg, key, ns)
        got = []
        while it.has_next():
            item = it.next()
            assert item is not None
            got.append(item)
        assert it.next() is None
        expected = [(u, self.complex[store][ComplexKey(kg, key, ns, u)]) for u in self.user_keys(store, (kg, key, ns))]
        assert got == expected

    # iterators kept open while the rules above write to the stores
    @rule(target=iterators, store=store_names, kg=key_groups, key=keys, ns=namespaces)
    def open_iterator(self, store: str, kg: bytes, key: bytes, ns: bytes) -> KvIterator:
        it = self.stores[store].scan_complex(kg, key, ns)
        self.cursors[id(it)] = (store, (kg, key, ns), None)
        return it

    @rule(it=iterators)
    def iterator_next(self, it: KvIterator) -> None:
        # Always the smallest user key after the last one returned, as the store is now.
        store, triple, last = self.cursors[id(it)]
        ahead = [u for u in self.user_keys(store, triple) if last is None or u > last]
        assert it.has_next() == bool(ahead)
        item = it.next()
        if not ahead:
            assert item is None
            return
        assert item == (ahead[0], self.complex[store][ComplexKey(*triple, ahead[0])])
        self.cursors[id(it)] = (store, triple, ahead[0])

    @rule()
    def checkpoint(self) -> None:
        self.backend.checkpoint()


class KvOverMemory(KvStoreMachine):
    make = staticmethod(lambda _dir: MemoryBackend(page_size=2))


class KvOverSqlite(KvStoreMachine):
    make = staticmethod(lambda d: SqliteBackend(d / "p0.sqlite", page_size=2))


TestKvOverMemory = KvOverMemory.TestCase
TestKvOverMemory.settings = STATEFUL
TestKvOverSqlite = KvOverSqlite.TestCase
TestKvOverSqlite.settings = STATEFUL


def test_simple_and_complex_keys_live_in_separate_key_spaces(backend: StateBackend) -> None:
    kv = KvStore(backend, "s")
    kv.put_state(b"", b"simple")
    kv.put(ComplexKey(b"", b"", b"", b""), b"complex")
    assert kv.list_states(b"", b"\xff" * 20) == [b""]
    assert kv.list_complex(b"", b"", b"", b"", b"\xff") == [b""]
    assert kv.get_state(b"") == b"simple" and kv.get(ComplexKey(b"", b"", b"", b"")) == b"complex"


def test_stores_of_one_backend_do_not_see_each_other(backend: StateBackend) -> None:
    a, b = KvStore(backend, "a"), KvStore(backend, "b")
    a.put_state(b"k", b"1")
    assert b.get_state(b"k") is None
    b.delete_prefix(ComplexKey(b"", b"", b"", b""))
    assert a.get_state(b"k") == b"1"


def test_missing_keys_are_none_and_deleting_them_is_fine(backend: StateBackend) -> None:
    kv = KvStore(backend, "s")
    ck = ComplexKey(b"g", b"k", b"n", b"u")
    assert kv.get_state(b"nope") is None and kv.get(ck) is None
    kv.delete_state(b"nope")
    kv.delete(ck)


def test_merge_appends_bytes_and_a_missing_key_merges_to_the_operand(backend: StateBackend) -> None:
    kv = KvStore(backend, "s")
    ck = ComplexKey(b"g", b"k", b"n", b"u")
    kv.merge(ck, b"ab")
    kv.merge(ck, b"cd")
    assert kv.get(ck) == b"abcd"
    assert append(None, b"x") == b"x" and append(b"a", b"") == b"a"


def test_a_store_declared_with_another_merge_operator_uses_it(backend: StateBackend) -> None:
    def add(current: bytes | None, operand: bytes) -> bytes:
        return (int.from_bytes(current or b"\0", "big") + int.from_bytes(operand, "big")).to_bytes(8, "big")

    kv = KvStore(backend, "counters", merge_operator=add)
    ck = ComplexKey(b"", b"clicks", b"", b"")
    for _ in range(3):
        kv.merge(ck, b"\x02")
    assert int.from_bytes(kv.get(ck) or b"", "big") == 6


def test_complex_key_encoding_keeps_components_apart() -> None:
    assert encode_complex(ComplexKey(b"ab", b"", b"", b"")) != encode_complex(ComplexKey(b"a", b"b", b"", b""))
    # user keys sort bytewise under their prefix
    ks = [ComplexKey(b"g", b"k", b"n", u) for u in (b"", b"\x00", b"a", b"a\x00", b"b", b"\xff")]
    assert sorted(ks, key=encode_complex) == ks


class CountingBackend(MemoryBackend):
    """Counts the entries scans hand out, to see that iterators read in pages."""

    def __init__(self) -> None:
        super().__init__()
        self.entries_read = 0

    def scan(self, store: str, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for item in super().scan(store, start, end):
            self.entries_read += 1
            yield item


@pytest.fixture
def ten_thousand() -> tuple[CountingBackend, KvStore]:
    backend = CountingBackend()
    kv = KvStore(backend, "s", page_size=100)
    for i in range(10_000):
        kv.put(ComplexKey(b"g", b"k", b"n", i.to_bytes(4, "big")), str(i).encode())
    return backend, kv


def test_an_iterator_over_10000_entries_reads_them_a_page_at_a_time(ten_thousand: tuple[CountingBackend, KvStore]) -> None:
    backend, kv = ten_thousand
    it = kv.scan_complex(b"g", b"k", b"n")
    assert it.next() == ((0).to_bytes(4, "big"), b"0")
    assert backend.entries_read == 100  # one page, not 10 000
    count = 1
    while it.has_next():
        user_key, value = it.next() or (b"", b"")
        assert int.from_bytes(user_key, "big") == count and value == str(count).encode()
        count += 1
        assert backend.entries_read <= count + 100
    assert count == 10_000 and backend.entries_read == 10_000


def test_an_iterator_stays_correct_while_the_store_is_written_between_calls(
    ten_thousand: tuple[CountingBackend, KvStore],
) -> None:
    _, kv = ten_thousand

    def ck(i: int, suffix: bytes = b"") -> ComplexKey:
        return ComplexKey(b"g", b"k", b"n", i.to_bytes(4, "big") + suffix)

    it = kv.scan_complex(b"g", b"k", b"n")
    seen: list[bytes] = []
    while (item := it.next()) is not None:
        seen.append(item[0])
        i = int.from_bytes(item[0][:4], "big")
        if len(item[0]) == 4 and i % 7 == 0:
            kv.put(ck(i, b"+"), b"inserted ahead")  # must be returned next
            kv.delete(ck(i + 1))  # deleted ahead: must never be returned
            if i > 0:
                kv.put(ck(i - 1, b"+"), b"behind")  # behind the cursor: not returned
    expected = []
    for i in range(10_000):
        if i % 7 == 1:
            continue
        expected.append(i.to_bytes(4, "big"))
        if i % 7 == 0:
            expected.append(i.to_bytes(4, "big") + b"+")
    assert seen == expected
