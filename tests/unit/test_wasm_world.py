"""The whole functionstream:core@0.1.0 world on the host, driven from a real guest.

The guest (tests/guests/kv_probe/app.py, built with componentize-py) reads each
record as a JSON command, makes the kv call it names and emits the answer, so
each test drives one host behaviour end to end.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import wasmtime

from fs_bus.errors import GuestError, GuestTimeout
from fs_bus.runtime.wasm import KV, LoadedComponent, WasiGrants, WasmEngine, WasmProcessor
from fs_bus.state.backend import MemoryBackend, SqliteBackend, StateError
from fs_bus.state.kv import ComplexKey, KvStore
from tests.guests import build
from tests.unit.test_wasm_runtime import COUNTER, OPTS, make
from tests.wasm_hosts import AVAILABLE

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = REPO / "tests" / "guests" / "kv_probe"
WIT_DIR = REPO / "wit"
CACHE = build.CACHE


@pytest.fixture(scope="session")
def guest_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    try:
        return build.kv_probe(tmp_path_factory.mktemp("guest"))
    except build.GuestBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session", params=AVAILABLE)
def engine(request: pytest.FixtureRequest) -> Iterator[WasmEngine]:
    # The compiled form is cached too: compiling the 18 MB guest takes seconds.
    with WasmEngine(CACHE / "compiled", host=request.param) as e:
        yield e


@pytest.fixture(scope="session")
def guest(engine: WasmEngine, guest_wasm: bytes) -> LoadedComponent:
    return engine.load(hashlib.sha256(guest_wasm).hexdigest(), guest_wasm)


class Guest:
    """A processor of the probe guest, with the command protocol wrapped."""

    def __init__(self, p: WasmProcessor) -> None:
        self.p = p

    def run(self, op: str, **args: Any) -> Any:
        """Send one command; return its `ok` value, or raise KvErr for the kv error variant."""
        for k, v in args.items():
            if isinstance(v, bytes):
                args[k] = v.hex()
            elif isinstance(v, ComplexKey):
                args[k] = [v.key_group.hex(), v.key.hex(), v.namespace.hex(), v.user_key.hex()]
        out = self.p.process(0, json.dumps({"op": op, **args}).encode())
        (target, data), = out.records
        assert target == 0
        answer = json.loads(data)
        if "err" in answer:
            raise KvErr(*answer["err"])
        return answer["ok"]


class KvErr(Exception):
    """The guest got the kv `error` variant: (case class name, message)."""


def new_guest(engine: WasmEngine, component: LoadedComponent, **kw: Any) -> Guest:
    return Guest(WasmProcessor(engine, component, {"k": "v"}, function_name="probe", call_timeout_s=60, **kw))


@pytest.fixture
def g(engine: WasmEngine, guest: LoadedComponent) -> Iterator[Guest]:
    probe = new_guest(engine, guest)
    yield probe
    probe.p.close()


def h(data: bytes) -> str:
    return data.hex()


# --- kv: simple keys ------------------------------------------------------------


def test_the_guest_imports_kv_and_exports_the_whole_world(guest: LoadedComponent) -> None:
    assert KV in guest.imports and guest.needs_wasi
    assert guest.exports == {
        "fs-init", "fs-process", "fs-process-watermark", "fs-take-checkpoint",
        "fs-check-heartbeat", "fs-close", "fs-exec", "fs-custom",
    }  # fmt: skip


def test_put_get_delete_state(g: Guest) -> None:
    assert g.run("put_state", key=b"k", value=b"v1") is None
    assert g.run("get_state", key=b"k") == h(b"v1")
    g.run("put_state", key=b"k", value=b"v2")
    assert g.run("get_state", key=b"k") == h(b"v2")
    g.run("delete_state", key=b"k")
    assert g.run("get_state", key=b"k") is None


def test_a_missing_key_is_none_not_an_error(g: Guest) -> None:
    assert g.run("get_state", key=b"never written") is None
    assert g.run("get", ck=ComplexKey(b"g", b"k", b"n", b"u")) is None
    assert g.run("delete_state", key=b"never written") is None


def test_list_states_gives_the_keys_in_the_half_open_range_in_order(g: Guest) -> None:
    for k in [b"b", b"a", b"c\x00", b"c", b"d", b""]:
        g.run("put_state", key=k, value=b"x")
    assert g.run("list_states", start=b"a", end=b"d") == [h(b"a"), h(b"b"), h(b"c"), h(b"c\x00")]
    assert g.run("list_states", start=b"", end=b"\xff") == [h(k) for k in [b"", b"a", b"b", b"c", b"c\x00", b"d"]]
    assert g.run("list_states", start=b"d", end=b"a") == []


def test_stores_with_different_names_are_separate_and_same_names_are_shared(g: Guest) -> None:
    g.run("put_state", store="one", key=b"k", value=b"1")
    assert g.run("get_state", store="two", key=b"k") is None
    g.run("drop_store", store="one")
    assert g.run("get_state", store="one", key=b"k") == h(b"1")  # a new handle, the same store


# --- kv: complex keys -----------------------------------------------------------


def test_put_get_delete_complex(g: Guest) -> None:
    ck = ComplexKey(b"group", b"key", b"ns", b"user")
    g.run("put", ck=ck, value=b"v")
    assert g.run("get", ck=ck) == h(b"v")
    # every component counts
    for other in [ComplexKey(b"groupkey", b"", b"ns", b"user"), ComplexKey(b"group", b"key", b"", b"nsuser")]:
        assert g.run("get", ck=other) is None
    g.run("delete", ck=ck)
    assert g.run("get", ck=ck) is None


def test_merge_appends_the_bytes_to_the_current_value(g: Guest) -> None:
    ck = ComplexKey(b"g", b"k", b"n", b"list")
    g.run("merge", ck=ck, value=b"first")  # missing: becomes the operand
    g.run("merge", ck=ck, value=b",second")
    assert g.run("get", ck=ck) == h(b"first,second")


def test_delete_prefix_removes_exactly_the_keys_under_it(g: Guest) -> None:
    for user in [b"a", b"ab", b"abc", b"b", b""]:
        g.run("put", ck=ComplexKey(b"g", b"k", b"n", user), value=b"x")
    g.run("put", ck=ComplexKey(b"g", b"k", b"other", b"ab"), value=b"x")
    g.run("delete_prefix", ck=ComplexKey(b"g", b"k", b"n", b"ab"))
    assert g.run("list_complex", kg=b"g", k=b"k", ns=b"n", start=b"", end=b"\xff") == [h(b""), h(b"a"), h(b"b")]
    assert g.run("get", ck=ComplexKey(b"g", b"k", b"other", b"ab")) == h(b"x")
    g.run("delete_prefix", ck=ComplexKey(b"g", b"k", b"n", b""))  # empty prefix: all of (g, k, n)
    assert g.run("list_complex", kg=b"g", k=b"k", ns=b"n", start=b"", end=b"\xff") == []


def test_list_complex_gives_the_user_keys_in_range(g: Guest) -> None:
    for user in [b"d", b"a", b"c", b"b"]:
        g.run("put", ck=ComplexKey(b"g", b"k", b"n", user), value=b"x")
    g.run("put", ck=ComplexKey(b"g", b"k2", b"n", b"b"), value=b"x")
    assert g.run("list_complex", kg=b"g", k=b"k", ns=b"n", start=b"b", end=b"d") == [h(b"b"), h(b"c")]


def test_scan_complex_walks_10000_entries_in_order_a_page_at_a_time(engine: WasmEngine, guest: LoadedComponent) -> None:
    state = MemoryBackend()
    probe = new_guest(engine, guest, state=state)
    try:
        assert probe.run("fill", kg=b"g", k=b"k", ns=b"n", n=10_000) == 10_000
        probe.run("put", ck=ComplexKey(b"g", b"k", b"m", b"\x00"), value=b"other namespace")
        fetches = state.fetches
        answer = probe.run("scan", kg=b"g", k=b"k", ns=b"n")
        expected = hashlib.sha256()
        for i in range(10_000):
            expected.update((4).to_bytes(4, "big") + i.to_bytes(4, "big") + str(i).encode())
        assert answer["count"] == 10_000 and answer["sha256"] == expected.hexdigest()
        assert answer["after_end"] is None  # next() past the end: none
        assert state.fetches - fetches >= 10_000 // state.page_size  # paged, not loaded at once
        assert probe.p.open_kv_handles["iterator"] == 0  # the guest dropped it: so did the host
    finally:
        probe.p.close()


def test_scan_complex_sees_keys_the_guest_writes_ahead_of_it(g: Guest) -> None:
    g.run("fill", kg=b"g", k=b"k", ns=b"n", n=300)
    # every 10th entry it reads, the guest puts user_key + 0x00: the very next key
    answer = g.run("scan", kg=b"g", k=b"k", ns=b"n", write_every=10, keys=True)

    def model(n: int, every: int) -> list[bytes]:
        """next() = the smallest key after the last one returned, as the store is now."""
        store = {i.to_bytes(4, "big") for i in range(n)}
        out: list[bytes] = []
        while ahead := sorted(k for k in store if not out or k > out[-1]):
            out.append(ahead[0])
            if len(out) % every == 0:
                store.add(ahead[0] + b"\x00")
        return out

    expected = model(300, 10)
    assert answer["keys"] == [k.hex() for k in expected] and answer["count"] == len(expected) > 300


def test_iterators_and_stores_are_freed_when_the_guest_drops_them(g: Guest) -> None:
    g.run("fill", kg=b"g", k=b"k", ns=b"n", n=3)
    assert g.run("scan", kg=b"g", k=b"k", ns=b"n", keep=True) == {"kept": 1}
    assert g.run("scan", kg=b"g", k=b"k", ns=b"n", keep=True) == {"kept": 2}
    assert g.p.open_kv_handles == {"store": 1, "iterator": 2}
    g.run("drop_kept")
    assert g.p.open_kv_handles == {"store": 1, "iterator": 0}
    g.run("drop_store")
    assert g.p.open_kv_handles == {"store": 0, "iterator": 0}


class FailingBackend(MemoryBackend):
    """Fails every call while `failure` is set."""

    failure: Exception | None = None

    def get(self, store: str, key: bytes) -> bytes | None:
        if self.failure:
            raise self.failure
        return super().get(store, key)

    def put(self, store: str, key: bytes, value: bytes) -> None:
        if self.failure:
            raise self.failure
        super().put(store, key, value)


@pytest.mark.parametrize(
    "failure, case",
    [(StateError("disk full"), "Error_IoError"), (RuntimeError("host bug"), "Error_Other")],
)
def test_backend_failures_reach_the_guest_as_the_error_variant(
    engine: WasmEngine, guest: LoadedComponent, failure: Exception, case: str
) -> None:
    state = FailingBackend()
    probe = new_guest(engine, guest, state=state)
    try:
        probe.run("put_state", key=b"k", value=b"v")
        state.failure = failure
        # get-state returns result<option<list<u8>>, error>: the case wasmtime-py cannot lower unaided.
        # Calls that reach the back end: the native host caches point reads and writes
        # (what it holds never fails), so its calls here are ones the cache cannot answer.
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_state", {"key": b"not cached"}),
            ("get", {"ck": ComplexKey(b"", b"", b"", b"")}),
        ]
        if engine.host == "python":  # write-through: every call reaches the back end
            calls += [("get_state", {"key": b"k"}), ("put_state", {"key": b"k", "value": b"v"})]
        else:  # a range read first hands the cached write of "k" to the back end, which fails
            calls += [("list_states", {"start": b"", "end": b"z"})]
        for op, args in calls:
            with pytest.raises(KvErr) as err:
                probe.run(op, **args)
            assert err.value.args[0] == case and str(failure) in err.value.args[1]
        state.failure = None
        assert probe.run("get_state", key=b"k") == h(b"v")  # the instance is fine
        assert not probe.p.broken
    finally:
        probe.p.close()


def test_a_back_end_that_fails_at_a_checkpoint_fails_the_checkpoint(
    engine: WasmEngine, guest: LoadedComponent
) -> None:
    """On the native host writes reach the back end at the latest at the checkpoint:
    a back end failing then fails the checkpoint (so offsets are not committed)."""
    state = FailingBackend()
    probe = new_guest(engine, guest, state=state)
    try:
        state.failure = StateError("disk full")
        if engine.host == "python":  # write-through: the write itself fails
            with pytest.raises(KvErr, match="Error_IoError"):
                probe.run("put_state", key=b"k", value=b"v")
        else:
            probe.run("put_state", key=b"k", value=b"v")  # cached: nothing fails yet
            with pytest.raises(StateError, match="disk full"):
                probe.p.take_checkpoint(1)
    finally:
        state.failure = None
        probe.p.close()


def test_a_write_whose_hand_over_failed_still_reaches_the_back_end_at_the_checkpoint(
    engine: WasmEngine, guest: LoadedComponent
) -> None:
    """The native host hands cached writes over before a range read; if the back end
    fails then, the writes stay pending and go at the next hand-over (a checkpoint), so
    nothing the guest wrote is committed away. (Write-through: the write itself fails.)"""
    state = FailingBackend()
    probe = new_guest(engine, guest, state=state)
    try:
        if engine.host == "native":
            probe.run("put_state", key=b"k", value=b"v")  # cached
            state.failure = StateError("disk full")
            with pytest.raises(KvErr, match="Error_IoError"):
                probe.run("list_states", start=b"", end=b"z")  # the hand-over fails
        else:
            state.failure = StateError("disk full")
            with pytest.raises(KvErr, match="Error_IoError"):
                probe.run("put_state", key=b"k", value=b"v")
            state.failure = None
            probe.run("put_state", key=b"k", value=b"v")
        state.failure = None
        probe.p.take_checkpoint(1)
        assert KvStore(state, "s").get_state(b"k") == b"v"
    finally:
        state.failure = None
        probe.p.close()


def test_state_written_by_the_guest_is_durable_at_a_checkpoint(
    engine: WasmEngine, guest: LoadedComponent, tmp_path: Path
) -> None:
    path = tmp_path / "p0.sqlite"
    state = SqliteBackend(path)
    probe = new_guest(engine, guest, state=state)
    probe.run("put_state", key=b"committed", value=b"1")
    out = probe.p.take_checkpoint(1)
    assert out.records == [(1, b"checkpoint 1")]  # emitted by the guest's fs-take-checkpoint
    probe.run("put_state", key=b"not committed", value=b"2")
    probe.p.close()
    state.close()  # no checkpoint since the second put: as after a crash
    reopened = SqliteBackend(path)
    kv = KvStore(reopened, "s")
    assert kv.get_state(b"committed") == b"1" and kv.get_state(b"not committed") is None
    reopened.close()


# --- the other exports ------------------------------------------------------------


def test_fs_init_take_checkpoint_watermark_and_exec_reach_the_guest(g: Guest) -> None:
    assert g.p.take_checkpoint(1).records == [(1, b"checkpoint 1")]
    assert g.p.take_checkpoint(2).records == [(1, b"checkpoint 2")]
    out = g.p.process_watermark(3, 1_700_000_000_000)
    assert out.watermarks == [(3, 1_700_000_000_000)] and out.records == []
    g.p.exec("my.Class", [("my/__init__.py", b""), ("my/mod.py", b"x = 1\n")])
    assert g.run("report") == {
        "config": {"k": "v"},
        "checkpoints": [1, 2],
        "watermarks": [[3, 1_700_000_000_000]],
        "exec": [["my.Class", [["my/__init__.py", ""], ["my/mod.py", "x = 1\n"]]]],
    }


def test_checkpoint_ids_must_increase(g: Guest) -> None:
    g.p.take_checkpoint(5)
    with pytest.raises(ValueError, match="checkpoint id 5 does not follow 5"):
        g.p.take_checkpoint(5)


def test_fs_custom_round_trip(g: Guest) -> None:
    assert g.p.custom(b"hello") == b"custom:olleh"
    assert g.p.custom(b"") == b"custom:"


def test_fs_check_heartbeat_false_when_the_guest_says_so(g: Guest) -> None:
    assert g.p.check_heartbeat() is True
    g.run("heartbeat", healthy=False)
    assert g.p.check_heartbeat() is False


def test_a_broken_instance_fails_its_heartbeat(g: Guest) -> None:
    with pytest.raises(GuestError, match="trapped in fs-process"):
        g.run("trap")
    assert g.p.check_heartbeat() is False


def test_hooks_a_component_does_not_export(engine: WasmEngine) -> None:
    loaded = engine.load(hashlib.sha256(COUNTER).hexdigest(), COUNTER)
    with WasmProcessor(engine, loaded, {}, function_name="counter") as p:
        assert p.check_heartbeat() is True
        assert p.process_watermark(0, 10).watermarks == []
        assert p.take_checkpoint(1).records == []
        with pytest.raises(GuestError, match="'counter' does not export fs-custom"):
            p.custom(b"x")
        with pytest.raises(GuestError, match="'counter' does not export fs-exec"):
            p.exec("C", [])


# The other published form of the reference world: fs-take-checkpoint returns
# bytes and fs-exec takes one payload. Checkpoint ids are emitted as watermarks
# on target 9, the fs-exec payload is emitted as it came.
OTHER_FORMS = make(
    core="""
    (func (export "fs-process") (param i32 i32 i32))
    (func (export "fs-take-checkpoint") (param $id i64) (result i32)
      (call $emit_wm (i32.const 9) (local.get $id))
      (i32.store (i32.const 16) (i32.const 32))
      (i32.store (i32.const 20) (i32.const 3))
      (i32.store (i32.const 32) (i32.const 0x636261))
      (i32.const 16))
    (func (export "fs-exec") (param $ptr i32) (param $len i32)
      (call $emit (i32.const 0) (local.get $ptr) (local.get $len)))
    """,
    lifts=f"""
  (func (export "fs-process") (param "source-id" u32) (param "data" (list u8))
    (canon lift (core func $main "fs-process") {OPTS}))
  (func (export "fs-take-checkpoint") (param "checkpoint-id" u64) (result (list u8))
    (canon lift (core func $main "fs-take-checkpoint") {OPTS}))
  (func (export "fs-exec") (param "payload" (list u8))
    (canon lift (core func $main "fs-exec") {OPTS}))""",
)


def test_the_other_published_forms_of_take_checkpoint_and_exec(engine: WasmEngine) -> None:
    loaded = engine.load(hashlib.sha256(OTHER_FORMS).hexdigest(), OTHER_FORMS)
    assert loaded.export_types["fs-take-checkpoint"] == "func(u64) -> list<u8>"
    assert loaded.export_types["fs-exec"] == "func(list<u8>)"
    with WasmProcessor(engine, loaded, {}, function_name="other") as p:
        assert p.take_checkpoint(7).watermarks == [(9, 7)]  # called; its bytes ignored
        p.exec("pkg.Cls", [("pkg/a.py", b"\x00\xffbinary ok")])
        (target, payload), = p.process(0, b"").records
        assert json.loads(payload) == {"class-name": "pkg.Cls", "modules": [["pkg/a.py", "AP9iaW5hcnkgb2s="]]}


SPIN_CUSTOM = make(
    core="""
    (func (export "fs-process") (param i32 i32 i32))
    (func (export "fs-custom") (param i32 i32) (result i32) (loop $forever (br $forever)) (i32.const 0))
    """,
    lifts=f"""
  (func (export "fs-process") (param "source-id" u32) (param "data" (list u8))
    (canon lift (core func $main "fs-process") {OPTS}))
  (func (export "fs-custom") (param "payload" (list u8)) (result (list u8))
    (canon lift (core func $main "fs-custom") {OPTS}))""",
)


def test_every_export_call_has_the_time_budget(engine: WasmEngine) -> None:
    loaded = engine.load(hashlib.sha256(SPIN_CUSTOM).hexdigest(), SPIN_CUSTOM)
    p = WasmProcessor(engine, loaded, {}, function_name="spin", call_timeout_s=0.3)
    with pytest.raises(GuestTimeout, match=r"'spin' ran past its 0.3 s budget in fs-custom"):
        p.custom(b"x")
    assert p.broken and p.check_heartbeat() is False
    p.close()


# --- WASI ---------------------------------------------------------------------------


def test_guest_stdout_and_stderr_land_in_the_log_one_record_per_line(
    engine: WasmEngine, guest: LoadedComponent, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test.guest.probe")
    probe = new_guest(engine, guest, log=logger)
    try:
        with caplog.at_level(logging.INFO, logger="test.guest.probe"):
            probe.run("print", text="hello\nworld ✓", stderr="something went wrong")
        records = [r for r in caplog.records if r.name == "test.guest.probe"]
        assert [(r.levelno, r.getMessage()) for r in records] == [
            (logging.INFO, "stdout: hello"),
            (logging.INFO, "stdout: world ✓"),
            (logging.WARNING, "stderr: something went wrong"),
        ]
        assert [r.guest_stream for r in records] == ["stdout", "stdout", "stderr"]  # type: ignore[attr-defined]
        assert all(r.function_name == "probe" for r in records)  # type: ignore[attr-defined]
    finally:
        probe.p.close()


def test_a_guest_traceback_lands_in_the_log(g: Guest, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fs_bus.guest.probe"), pytest.raises(GuestError):
        g.run("trap")
    assert "stderr: RuntimeError: asked to fail" in caplog.text


def test_the_guest_has_no_filesystem_environment_or_network_by_default(g: Guest) -> None:
    assert "FileNotFoundError" in g.run("read_file", path="/etc/passwd")["error"]
    assert "error" in g.run("list_dir", path="/")
    assert g.run("env") == {}
    with loopback_listener() as (port, accepted):
        assert g.run("connect", ip="127.0.0.1", port=port) == {"error": "<ErrorCode.ACCESS_DENIED: 1>"}
    assert accepted == []


def test_granted_environment_and_directories_are_visible(engine: WasmEngine, guest: LoadedComponent, tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_bytes(b"12345")
    grants = WasiGrants(env={"GREETING": "hi"}, preopens=[(str(tmp_path), "/data")])
    probe = new_guest(engine, guest, wasi=grants)
    try:
        assert probe.run("env") == {"GREETING": "hi"}
        assert probe.run("read_file", path="/data/input.txt") == {"read": 5}
        assert "FileNotFoundError" in probe.run("read_file", path="/etc/passwd")["error"]
    finally:
        probe.p.close()


class loopback_listener:
    """A TCP listener on 127.0.0.1 that records what connects to it."""

    def __enter__(self) -> tuple[int, list[bytes]]:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.accepted: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self.sock.getsockname()[1], self.accepted

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                self.accepted.append(conn.recv(100))

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_wasmtime_is_the_pinned_major_version() -> None:
    # fs_bus.runtime.wasm works around wasmtime-py 50's result lowering; a new
    # major version must be re-checked (test_backend_failures_... does that).
    assert importlib.metadata.version("wasmtime").split(".")[0] == "50"
    with WasmEngine(host="python"):  # the wasmtime-py host patches wasmtime-py when first made
        assert wasmtime.component.ResultType.convert_to_c.__name__ == "_lower_result"


def test_the_node_grants_exactly_what_the_config_says(engine: WasmEngine, guest: LoadedComponent,
                                                      tmp_path: Path) -> None:
    from fs_bus.artifacts.cache import ArtifactCache
    from fs_bus.control.records import ArtifactKind, ArtifactManifest, DesiredState, FunctionRecord
    from fs_bus.control.spec import FunctionSpec
    from fs_bus.kafka.settings import KafkaSettings
    from fs_bus.node.loader import Loader

    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "input.txt").write_bytes(b"12345")
    config_text = f"""\
name: probe
type: processor
input-groups: [{{inputs: [{{bootstrap_servers: "k:9092", topic: in, group_id: g}}]}}]
outputs: [{{bootstrap_servers: "k:9092", topic: out}}]
wasi:
  env: {{GREETING: hi}}
  dirs: [{{host: "{granted}", guest: /data, read-only: true}}]
"""
    record = FunctionRecord("probe", "processor", config_text, ArtifactManifest("0" * 64, 0, ArtifactKind.WASM_COMPONENT, "a", ()),
                            DesiredState.RUNNING, 1, 0)
    loader = Loader(KafkaSettings("unused:9092"), ArtifactCache(tmp_path / "cache"), engine, tmp_path / "state",
                    tmp_path / "venvs", tmp_path / "compiled")
    from fs_bus.state.backend import MemoryBackend
    from fs_bus.state.changelog import ChangelogBackend
    loader._restore = lambda *_: ChangelogBackend(MemoryBackend())  # no broker here: state starts empty
    runtime = loader._wasm_factory(FunctionSpec(record), guest)("in", 0)
    processor, state = runtime.processor, runtime.state
    probe = Guest(processor)
    try:
        assert probe.run("env") == {"GREETING": "hi"}
        assert probe.run("read_file", path="/data/input.txt") == {"read": 5}
        assert "FileNotFoundError" in probe.run("read_file", path="/etc/passwd")["error"]
    finally:
        processor.close()
        state.close()


def test_a_components_stdout_and_stderr_become_log_lines_on_the_logs_topic(
    engine: WasmEngine, guest: LoadedComponent, bootstrap_servers: str, namespace: str
) -> None:
    """What the node's logs-topic handler makes of a component's output, as read back
    from Kafka: the lines, each with its function, partition (from the logger's name) and stream."""
    from confluent_kafka import Producer

    from fs_bus.observability.logs import KafkaLogHandler, decode_log_line, function_logger
    from tests.integration.harness import create_topic, read_topic

    topic = f"{namespace}.logs"
    create_topic(bootstrap_servers, topic)
    logger = function_logger("probe", "in.put-topic", 7)
    handler = KafkaLogHandler(Producer({"bootstrap.servers": bootstrap_servers}), topic, "n1")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    probe = new_guest(engine, guest, log=logger)
    try:
        probe.run("print", text="hello\nworld ✓", stderr="something went wrong")
    finally:
        probe.p.close()
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        handler.close()
    lines = [decode_log_line(m.value()) for m in read_topic(bootstrap_servers, topic, 3)]
    assert [(ln.function, ln.node, ln.topic, ln.partition, ln.stream, ln.line) for ln in lines] == [
        ("probe", "n1", "in.put-topic", 7, "stdout", "hello"),
        ("probe", "n1", "in.put-topic", 7, "stdout", "world ✓"),
        ("probe", "n1", "in.put-topic", 7, "stderr", "something went wrong"),
    ]


# --- the native host's write-back kv cache against the wasmtime-py host ------------

_KEYS = st.binary(max_size=2).map(lambda b: bytes(b"ab\x00\xff"[x % 4] for x in b))
_CKS = st.builds(ComplexKey, st.sampled_from([b"g", b""]), st.sampled_from([b"k"]), st.sampled_from([b"n", b"m"]), _KEYS)
_OPS = st.one_of(
    st.tuples(st.just("put_state"), st.fixed_dictionaries({"key": _KEYS, "value": _KEYS})),
    st.tuples(st.just("get_state"), st.fixed_dictionaries({"key": _KEYS})),
    st.tuples(st.just("delete_state"), st.fixed_dictionaries({"key": _KEYS})),
    st.tuples(st.just("list_states"), st.fixed_dictionaries({"start": _KEYS, "end": _KEYS})),
    st.tuples(st.just("put"), st.fixed_dictionaries({"ck": _CKS, "value": _KEYS})),
    st.tuples(st.just("get"), st.fixed_dictionaries({"ck": _CKS})),
    st.tuples(st.just("delete"), st.fixed_dictionaries({"ck": _CKS})),
    st.tuples(st.just("merge"), st.fixed_dictionaries({"ck": _CKS, "value": _KEYS})),
    st.tuples(st.just("delete_prefix"), st.fixed_dictionaries({"ck": _CKS})),
    st.tuples(st.just("list_complex"), st.fixed_dictionaries(
        {"kg": st.just(b"g"), "k": st.just(b"k"), "ns": st.just(b"n"), "start": _KEYS, "end": _KEYS})),
    st.tuples(st.just("checkpoint"), st.just({})),
)


@pytest.fixture(scope="module")
def both_hosts(guest_wasm: bytes) -> Iterator[dict[str, tuple[WasmEngine, LoadedComponent]]]:
    if "native" not in AVAILABLE:
        pytest.fail("the native host is not built here (test_the_native_host_is_built_where_rust_is says why)")
    sha = hashlib.sha256(guest_wasm).hexdigest()
    with WasmEngine(CACHE / "compiled", host="native") as native, \
            WasmEngine(CACHE / "compiled", host="python") as python:
        yield {"native": (native, native.load(sha, guest_wasm)), "python": (python, python.load(sha, guest_wasm))}


@settings(max_examples=40, deadline=None)
@given(script=st.lists(_OPS, max_size=25))
def test_the_native_kv_cache_answers_and_stores_exactly_what_the_python_host_does(both_hosts, script) -> None:
    """Random kv scripts (colliding keys, ranges, prefix deletes, merges, checkpoints)
    through the same guest on both hosts, the native one with a cache of 3 entries so
    that every script also crosses evictions: every answer and the back end's final
    contents are the same."""
    from fs_bus.runtime.wasm.native import NativeWasmProcessor

    engine, component = both_hosts["native"]
    native_state, python_state = MemoryBackend(), MemoryBackend()
    native = Guest(NativeWasmProcessor(engine, component, {}, function_name="probe", call_timeout_s=60,
                                       state=native_state, kv_cache_entries=3))
    engine, component = both_hosts["python"]
    python = new_guest(engine, component, state=python_state)
    try:
        checkpoint = 0
        for op, args in script:
            if op == "checkpoint":
                checkpoint += 1
                assert native.p.take_checkpoint(checkpoint) == python.p.take_checkpoint(checkpoint)
                continue
            assert native.run(op, **dict(args)) == python.run(op, **dict(args)), (op, args)
        native.p.flush_state()
        assert list(native_state.scan("s", b"", None)) == list(python_state.scan("s", b"", None))
    finally:
        native.p.close()
        python.p.close()
