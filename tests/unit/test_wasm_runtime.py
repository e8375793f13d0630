"""The wasmtime host (fs_bus.runtime.wasm), with small components written in WAT."""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_bus.errors import ArtifactError, BatchFailed, GuestError, GuestTimeout, InvalidArtifact
from fs_bus.runtime.framing import Record
from fs_bus.runtime.wasm import COLLECTOR, KV, LoadedComponent, WasmEngine, WasmProcessor, _native
from tests.wasm_hosts import AVAILABLE

UPPER_DIR = Path(__file__).resolve().parents[2] / "examples" / "upper"

# --- test components ----------------------------------------------------------

COLLECTOR_IMPORT = """
  (import "functionstream:core/collector@0.1.0" (instance $collector
    (export "emit" (func (param "target-id" u32) (param "data" (list u8))))
    (export "emit-watermark" (func (param "target-id" u32) (param "watermark" u64)))
  ))
"""

# Memory in its own module (so `emit` can be lowered with it before the main module
# exists), the collector lowered, and a bump `realloc` that grows memory.
TEMPLATE = """
(component
  {imports}
  (alias export $collector "emit" (func $emit))
  (alias export $collector "emit-watermark" (func $emit_wm))
  (core module $Memory (memory (export "memory") 1))
  (core instance $memory (instantiate $Memory))
  (alias core export $memory "memory" (core memory $mem))
  (core func $emit_lowered (canon lower (func $emit) (memory $mem)))
  (core func $emit_wm_lowered (canon lower (func $emit_wm)))
  {lowers}
  (core module $Main
    (import "env" "memory" (memory 1))
    (import "host" "emit" (func $emit (param i32 i32 i32)))
    (import "host" "emit-watermark" (func $emit_wm (param i32 i64)))
    {core_imports}
    (global $bump (mut i32) (i32.const 1024))
    (func $realloc (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ptr i32)
      (local.set $ptr (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                               (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $ptr) (local.get 3)))
      (if (i32.gt_u (global.get $bump) (i32.shl (memory.size) (i32.const 16)))
        (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $bump)
                (i32.shl (memory.size) (i32.const 16))) (i32.const 16)) (i32.const 1))))))
      (local.get $ptr))
    {core}
  )
  (core instance $main (instantiate $Main
    (with "env" (instance $memory))
    (with "host" (instance (export "emit" (func $emit_lowered))
                           (export "emit-watermark" (func $emit_wm_lowered))))
    {with_}))
  {lifts}
)
"""

OPTS = '(memory $mem) (realloc (core func $main "realloc"))'
LIFT_PROCESS = f"""
  (func (export "fs-process") (param "source-id" u32) (param "data" (list u8))
    (canon lift (core func $main "fs-process") {OPTS}))"""


def make(
    core: str,
    lifts: str = LIFT_PROCESS,
    *,
    imports: str = "",
    lowers: str = "",
    core_imports: str = "",
    with_: str = "",
) -> bytes:
    """Assemble TEMPLATE: `core` is the main module's body, `lifts` the component's
    exports; the keyword hooks add imports (component level, lowered, imported by
    the main module, and the instance that supplies them)."""
    wat = TEMPLATE.format(
        imports=COLLECTOR_IMPORT + imports,
        lowers=lowers,
        core=core,
        core_imports=core_imports,
        with_=with_,
        lifts=lifts,
    )
    return bytes(wasmtime.wat2wasm(wat))


# fs-init emits every config pair as (0, key), (1, value); fs-process does nothing.
CONFIG_ECHO = make(
    core="""
    (func (export "fs-init") (param $ptr i32) (param $len i32)
      (local $end i32)
      (local.set $end (i32.add (local.get $ptr) (i32.mul (local.get $len) (i32.const 16))))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
        (call $emit (i32.const 0) (i32.load (local.get $ptr)) (i32.load offset=4 (local.get $ptr)))
        (call $emit (i32.const 1) (i32.load offset=8 (local.get $ptr)) (i32.load offset=12 (local.get $ptr)))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 16)))
        (br $next))))
    (func (export "fs-process") (param i32 i32 i32))
    """,
    lifts=LIFT_PROCESS
    + f"""
  (func (export "fs-init") (param "config" (list (tuple string string)))
    (canon lift (core func $main "fs-init") {OPTS} string-encoding=utf8))""",
)

# Only collector imported, only fs-process exported; a global counter emitted as
# u32 little-endian on target 0 and as a watermark on target `source-id`.
COUNTER = make(
    core="""
    (global $count (mut i32) (i32.const 0))
    (func (export "fs-process") (param $src i32) (param i32 i32)
      (global.set $count (i32.add (global.get $count) (i32.const 1)))
      (i32.store (i32.const 0) (global.get $count))
      (call $emit (i32.const 0) (i32.const 0) (i32.const 4))
      (call $emit_wm (local.get $src) (i64.extend_i32_u (global.get $count))))
    """
)

# Emits each record unchanged to target `source-id`: the source id a call got is visible.
ECHO_TO_SOURCE = make(core="""
    (func (export "fs-process") (param $src i32) (param $ptr i32) (param $len i32)
      (call $emit (local.get $src) (local.get $ptr) (local.get $len)))
    """)

# As ECHO_TO_SOURCE, but traps on a record whose first byte is "x".
TRAP_ON_X = make(core="""
    (func (export "fs-process") (param $src i32) (param $ptr i32) (param $len i32)
      (if (i32.and (i32.gt_u (local.get $len) (i32.const 0))
                   (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 120)))
        (then unreachable))
      (call $emit (local.get $src) (local.get $ptr) (local.get $len)))
    """)

SPIN = make(core='(func (export "fs-process") (param i32 i32 i32) (loop $forever (br $forever)))')

TRAP = make(core='(func (export "fs-process") (param i32 i32 i32) unreachable)')

# Grows its memory 1 MiB at a time up to 256 MiB, trapping (as an allocator aborts)
# the moment a grow is refused; emits the MiB it reached.
MEMORY_BOMB = make(core="""
    (func (export "fs-process") (param i32 i32 i32)
      (local $mib i32)
      (block $done (loop $more
        (br_if $done (i32.ge_u (local.get $mib) (i32.const 256)))
        (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
        (local.set $mib (i32.add (local.get $mib) (i32.const 1)))
        (br $more)))
      (i32.store (i32.const 0) (local.get $mib))
      (call $emit (i32.const 0) (i32.const 0) (i32.const 4)))
    """)

# fs-close traps; fs-process emits nothing.
CLOSE_TRAPS = make(
    core="""
    (func (export "fs-process") (param i32 i32 i32))
    (func (export "fs-close") unreachable)
    """,
    lifts=LIFT_PROCESS + '\n  (func (export "fs-close") (canon lift (core func $main "fs-close")))',
)

# fs-process takes a string instead of list<u8>: not the processor world.
WRONG_TYPE = make(
    core='(func (export "fs-process") (param i32 i32 i32))',
    lifts=f"""
  (func (export "fs-process") (param "source-id" u32) (param "data" string)
    (canon lift (core func $main "fs-process") {OPTS} string-encoding=utf8))""",
)

# Imports collector with `emit` taking a string: wasmtime would link it to our
# untyped host function, so load() must refuse it.
WRONG_COLLECTOR = bytes(
    wasmtime.wat2wasm(
        TEMPLATE.format(
            imports=COLLECTOR_IMPORT.replace('(param "data" (list u8))', '(param "data" string)'),
            lowers="",
            core_imports="",
            with_="",
            core='(func (export "fs-process") (param i32 i32 i32))',
            lifts=LIFT_PROCESS,
        ).replace("(canon lower (func $emit) (memory $mem))", "(canon lower (func $emit) (memory $mem) string-encoding=utf8)")
    )
)

NO_PROCESS = make(
    core='(func (export "fs-close"))',
    lifts='(func (export "fs-close") (canon lift (core func $main "fs-close")))',
)

# Imports kv too (a resource and its constructor), which the host does not provide
# yet: it must still instantiate and run; only a call into kv traps (source-id 1).
KV_USER = make(
    imports="""
  (import "functionstream:core/kv@0.1.0" (instance $kv
    (export "store" (type $store (sub resource)))
    (export "[constructor]store" (func (param "name" string) (result (own $store))))))
  (alias export $kv "[constructor]store" (func $store_new))""",
    lowers='(core func $store_new_lowered (canon lower (func $store_new) (memory $mem) string-encoding=utf8))',
    core_imports='(import "kv" "store-new" (func $store_new (param i32 i32) (result i32)))',
    with_='(with "kv" (instance (export "store-new" (func $store_new_lowered))))',
    core="""
    (func (export "fs-process") (param $src i32) (param $ptr i32) (param $len i32)
      (if (i32.eq (local.get $src) (i32.const 1))
        (then (drop (call $store_new (i32.const 0) (i32.const 0)))))
      (call $emit (i32.const 0) (local.get $ptr) (local.get $len)))
    """,
)

# Imports a WASI interface: the host must link real WASI (a trap stub would fail
# the call). Emits monotonic-clock.now() as u64 little-endian.
WASI_CLOCK = make(
    imports="""
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (export "now" (func (result u64)))))
  (alias export $clock "now" (func $now))""",
    lowers="(core func $now_lowered (canon lower (func $now)))",
    core_imports='(import "clock" "now" (func $now (result i64)))',
    with_='(with "clock" (instance (export "now" (func $now_lowered))))',
    core="""
    (func (export "fs-process") (param i32 i32 i32)
      (i64.store (i32.const 0) (call $now))
      (call $emit (i32.const 0) (i32.const 0) (i32.const 8)))
    """,
)


def upper_expected(data: bytes) -> bytes:
    return bytes(b - 32 if 97 <= b <= 122 else b for b in data)


def sha(wasm: bytes) -> str:
    return hashlib.sha256(wasm).hexdigest()


@pytest.fixture(params=AVAILABLE)
def engine(request: pytest.FixtureRequest) -> Iterator[WasmEngine]:
    with WasmEngine(host=request.param) as e:
        yield e


def processor(
    engine: WasmEngine, wasm: bytes, config: dict[str, str] | None = None, **kw: float
) -> WasmProcessor:
    return WasmProcessor(engine, engine.load(sha(wasm), wasm), config or {}, function_name="f", **kw)


@pytest.fixture(scope="module")
def upper_wasm() -> bytes:
    return (UPPER_DIR / "upper.wasm").read_bytes()


# --- the upper example ----------------------------------------------------------


def test_checked_in_upper_wasm_is_built_from_upper_wat(upper_wasm: bytes) -> None:
    assert upper_wasm == bytes(wasmtime.wat2wasm((UPPER_DIR / "upper.wat").read_text()))


def test_upper_uppercases_and_emits_to_target_0(engine: WasmEngine, upper_wasm: bytes) -> None:
    loaded = engine.load(sha(upper_wasm), upper_wasm)
    assert isinstance(loaded, LoadedComponent)
    assert loaded.exports == {"fs-init", "fs-process", "fs-close"}
    assert loaded.imports == {COLLECTOR}
    with WasmProcessor(engine, loaded, {"greeting": "hello"}, function_name="upper") as p:
        assert not p.parallel_batches  # a call and an emit per record: threads would trade the GIL
        out = p.process(0, b"hello, World 42!")
        assert out.records == [(0, b"HELLO, WORLD 42!")]
        assert out.watermarks == []
        assert type(out.records[0][1]) is bytes
        # non-ASCII, a-z neighbours ('`' and '{'), and empty data
        for data in [b"", "grüße ñ".encode(), b"`az{@AZ[", bytes(range(256))]:
            assert p.process(3, data).records == [(0, upper_expected(data))]
        # bytearray / memoryview are accepted (wasmtime-py itself wants bytes)
        assert p.process(0, bytearray(b"abc")).records == [(0, b"ABC")]
        assert p.process(0, memoryview(b"xyz")).records == [(0, b"XYZ")]


def test_upper_handles_a_record_bigger_than_its_memory(engine: WasmEngine, upper_wasm: bytes) -> None:
    data = b"abc\x00" * 50_000  # 200 KB: realloc must grow memory past its 64 KiB page
    with processor(engine, upper_wasm) as p:
        for _ in range(2):  # the bump pointer is reset, so the second call fits as well
            assert p.process(0, data).records == [(0, upper_expected(data))]


@pytest.fixture(scope="module")
def upper_processor(upper_wasm: bytes) -> Iterator[WasmProcessor]:
    # hypothesis runs a test body many times: one instance serves every example,
    # which also checks that state left by one record never leaks into the next.
    with WasmEngine() as e, processor(e, upper_wasm) as p:
        yield p


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), source_id=st.integers(0, 2**32 - 1))
def test_upper_changes_only_ascii_lowercase(upper_processor: WasmProcessor, data: bytes, source_id: int) -> None:
    assert upper_processor.process(source_id, data).records == [(0, upper_expected(data))]


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.tuples(st.integers(0, 2**32 - 1),
                                  st.lists(st.tuples(st.binary(max_size=400), st.none() | st.binary(max_size=8)),
                                           max_size=12)),
                        max_size=6))
def test_batches_of_any_record_sizes_keep_every_record_its_bytes_source_and_key(batches) -> None:
    """The per-record road of the reference world reuses its argument array: records
    longer and shorter than the last, empty ones, and a source id that changes
    between batches must each reach the guest exactly as given."""
    with WasmEngine() as engine, processor(engine, ECHO_TO_SOURCE) as p:
        for source_id, records in batches:
            out = p.process_records(source_id, [Record(value, key) for value, key in records])
            assert out.records == [(source_id, value, key, None) for value, key in records]
            # values alone, one result per record
            each = p.process_batch(source_id, [value for value, _ in records])
            assert [e.records for e in each] == [[(source_id, value)] for value, _ in records]


def test_an_endless_loop_in_a_batch_fails_that_record_within_its_budget(engine: WasmEngine) -> None:
    spin = processor(engine, SPIN, call_timeout_s=0.3)
    start = time.monotonic()
    with pytest.raises(BatchFailed, match=r"ran past its 0.3 s budget in fs-process") as info:
        spin.process_records(0, [Record(b"x"), Record(b"y")])
    elapsed = time.monotonic() - start
    assert info.value.index == 0 and spin.broken
    assert 0.25 <= elapsed < 3.0, elapsed  # the budget is a floor, and it is enforced


def test_a_trap_in_a_batch_names_its_record_and_keeps_what_ran_before(engine: WasmEngine) -> None:
    with processor(engine, TRAP_ON_X) as p:
        with pytest.raises(BatchFailed, match="trapped in fs-process") as info:
            p.process_batch(7, [b"a", b"b", b"x", b"c"])
    assert info.value.index == 2
    assert [e.records for e in info.value.done] == [[(7, b"a")], [(7, b"b")]]


# --- fs-init ----------------------------------------------------------------------


def test_fs_init_receives_the_config_and_its_output_goes_out_with_the_first_record(engine: WasmEngine) -> None:
    config = {"greeting": "hello", "ünï": "cödé ✓", "empty": ""}
    with processor(engine, CONFIG_ECHO, config) as p:
        first = p.process(0, b"x")
        pairs = list(zip(first.records[0::2], first.records[1::2]))
        assert [(k.decode(), v.decode()) for (tk, k), (tv, v) in pairs] == list(config.items())
        assert all(tk == 0 and tv == 1 for (tk, _), (tv, _) in pairs)
        assert p.process(0, b"x").records == []


def test_fs_init_with_empty_config(engine: WasmEngine) -> None:
    with processor(engine, CONFIG_ECHO, {}) as p:
        assert p.process(0, b"x").records == []


# --- partial worlds, imports ------------------------------------------------------


def test_component_with_only_collector_and_fs_process_runs(engine: WasmEngine) -> None:
    loaded = engine.load(sha(COUNTER), COUNTER)
    assert loaded.exports == {"fs-process"} and loaded.imports == {COLLECTOR}
    with WasmProcessor(engine, loaded, {"ignored": "yes"}, function_name="counter") as p:
        out = p.process(7, b"")
        assert out.records == [(0, struct.pack("<I", 1))]
        assert out.watermarks == [(7, 1)]


def test_processors_of_one_component_have_independent_state(engine: WasmEngine) -> None:
    p1, p2 = processor(engine, COUNTER), processor(engine, COUNTER)
    try:
        counts1 = [struct.unpack("<I", p1.process(0, b"").records[0][1])[0] for _ in range(3)]
        count2 = struct.unpack("<I", p2.process(0, b"").records[0][1])[0]
        assert counts1 == [1, 2, 3] and count2 == 1
    finally:
        p1.close()
        p2.close()


def test_kv_constructor_reaches_the_host(engine: WasmEngine) -> None:
    loaded = engine.load(sha(KV_USER), KV_USER)
    assert KV in loaded.imports
    with WasmProcessor(engine, loaded, {}, function_name="kvf") as p:
        assert p.process(0, b"ok").records == [(0, b"ok")]
        assert p.process(1, b"calls kv").records == [(0, b"calls kv")]
        assert p.open_kv_handles == {"store": 1, "iterator": 0} and not p.broken


UNKNOWN_USER = make(
    imports="""
  (import "example:unknown/thing@0.1.0" (instance $kv
    (export "store" (type $store (sub resource)))
    (export "[constructor]store" (func (param "name" string) (result (own $store))))))
  (alias export $kv "[constructor]store" (func $store_new))""",
    lowers='(core func $store_new_lowered (canon lower (func $store_new) (memory $mem) string-encoding=utf8))',
    core_imports='(import "kv" "store-new" (func $store_new (param i32 i32) (result i32)))',
    with_='(with "kv" (instance (export "store-new" (func $store_new_lowered))))',
    core="""
    (func (export "fs-process") (param $src i32) (param $ptr i32) (param $len i32)
      (if (i32.eq (local.get $src) (i32.const 1))
        (then (drop (call $store_new (i32.const 0) (i32.const 0)))))
      (call $emit (i32.const 0) (local.get $ptr) (local.get $len)))
    """,
)


def test_unknown_imports_are_stubbed_to_trap_when_called(engine: WasmEngine) -> None:
    loaded = engine.load(sha(UNKNOWN_USER), UNKNOWN_USER)
    with WasmProcessor(engine, loaded, {}, function_name="kvf") as p:
        assert p.process(0, b"ok").records == [(0, b"ok")]
        with pytest.raises(GuestError, match=r"'kvf' failed in fs-process: .*thing@0.1.0#\[constructor\]store is not provided"):
            p.process(1, b"calls it")
        assert p.broken


def test_wasi_imports_are_linked_to_real_wasi(engine: WasmEngine) -> None:
    loaded = engine.load(sha(WASI_CLOCK), WASI_CLOCK)
    assert loaded.needs_wasi
    with WasmProcessor(engine, loaded, {}, function_name="clock") as p:
        (target, data), = p.process(0, b"").records
        assert target == 0 and struct.unpack("<Q", data)[0] > 0


# --- failures ---------------------------------------------------------------------


def test_endless_loop_is_interrupted_within_its_budget(engine: WasmEngine, upper_wasm: bytes) -> None:
    spin = processor(engine, SPIN, call_timeout_s=0.3)
    with ThreadPoolExecutor(1) as pool:
        def run() -> float:
            start = time.monotonic()
            with pytest.raises(GuestTimeout, match=r"function 'f' ran past its 0.3 s budget in fs-process"):
                spin.process(0, b"x")
            return time.monotonic() - start

        elapsed = pool.submit(run).result(timeout=30)  # waits on the outcome, not a sleep
    assert 0.25 <= elapsed < 3.0, elapsed
    assert spin.broken
    with pytest.raises(GuestError, match="broken after a previous trap"):
        spin.process(0, b"x")
    spin.close()
    # the engine (and its ticker) still serve other instances, old and new
    with processor(engine, upper_wasm) as p:
        assert p.process(0, b"still fine").records == [(0, b"STILL FINE")]
    spin2 = processor(engine, SPIN, call_timeout_s=0.3)
    with pytest.raises(GuestTimeout):
        spin2.process(0, b"")
    spin2.close()


def test_a_memory_bomb_fails_its_own_instance_at_its_limit_and_no_other(engine: WasmEngine) -> None:
    bomb = processor(engine, MEMORY_BOMB, memory_limit_mb=16)
    unlimited = processor(engine, MEMORY_BOMB)
    with pytest.raises(GuestError, match=r"trapped in fs-process \(its memory is limited to 16 MiB\)"):
        bomb.process(0, b"x")
    assert bomb.broken
    bomb.close()
    # The limit is the instance's own: another instance of the same component grows on.
    (_, reached), = unlimited.process(0, b"x").records
    assert struct.unpack("<I", reached)[0] == 256
    unlimited.close()


def test_trap_raises_guest_error_and_breaks_the_instance(engine: WasmEngine) -> None:
    p = processor(engine, TRAP)
    with pytest.raises(GuestError, match=r"function 'f' trapped in fs-process: .*unreachable") as info:
        p.process(0, b"x")
    assert not isinstance(info.value, GuestTimeout)
    assert p.broken
    with pytest.raises(GuestError, match="instance is broken after a previous trap; restart it"):
        p.process(0, b"x")
    p.close()
    # a fresh instance of the same component is a fresh start
    q = processor(engine, COUNTER)
    assert q.process(0, b"").records
    q.close()


def test_trap_in_fs_close_is_logged_not_raised(engine: WasmEngine, caplog: pytest.LogCaptureFixture) -> None:
    p = processor(engine, CLOSE_TRAPS)
    assert p.process(0, b"x").records == []
    with caplog.at_level(logging.WARNING, logger="fs_bus.runtime.wasm"):
        p.close()
    assert "trapped in fs-close" in caplog.text
    p.close()  # idempotent
    with pytest.raises(GuestError, match="closed"):
        p.process(0, b"x")


@pytest.mark.parametrize(
    "wasm, message",
    [
        (b"garbage bytes", "not a WebAssembly binary"),
        (b"", "not a WebAssembly binary"),
        (b"(component)", "not a WebAssembly binary"),  # text, not a binary: never assembled
        (bytes(wasmtime.wat2wasm('(module (func (export "fs-process")))')), "core WebAssembly module, not a component"),
        (b"\0asm\x0d\x00\x01\x00\xff\xff", "not a valid WebAssembly component"),
        (NO_PROCESS, "does not export fs-process"),
        (WRONG_TYPE, r"export fs-process has type func\(u32, string\)"),
        (WRONG_COLLECTOR, r"collector@0.1.0#emit has type func\(u32, string\)"),
    ],
)
def test_invalid_artifacts_are_refused(engine: WasmEngine, wasm: bytes, message: str) -> None:
    with pytest.raises(InvalidArtifact, match=message):
        engine.load(sha(wasm), wasm)


def test_bytes_not_matching_their_hash_are_refused(engine: WasmEngine, upper_wasm: bytes) -> None:
    with pytest.raises(ArtifactError, match="expected"):
        engine.load("0" * 64, upper_wasm)


# --- the compiled cache -----------------------------------------------------------


def test_compiled_cache_is_used_by_a_fresh_engine(tmp_path: Path, upper_wasm: bytes) -> None:
    h = sha(upper_wasm)
    with WasmEngine(tmp_path) as e1:
        first = e1.load(h, upper_wasm)
        assert not first.from_cache and e1.compiled == 1
        assert e1.load(h, upper_wasm) is first  # in-memory: no second compile
        assert e1.compiled == 1
    cached = e1.cache_path(h)
    assert cached is not None and cached.exists()
    wasmtime_version = _native.WASMTIME_VERSION if e1.host == "native" else version("wasmtime")
    assert cached.name == f"{h}-{'native-' if e1.host == 'native' else ''}wasmtime{wasmtime_version}.cwasm"
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]  # no tmp files left
    with WasmEngine(tmp_path) as e2:
        second = e2.load(h, upper_wasm)
        assert second.from_cache and e2.deserialized == 1 and e2.compiled == 0
        assert second.exports == first.exports
        with WasmProcessor(e2, second, {}, function_name="upper") as p:
            assert p.process(0, b"cached").records == [(0, b"CACHED")]


def test_corrupt_compiled_cache_is_recompiled(tmp_path: Path, upper_wasm: bytes) -> None:
    h = sha(upper_wasm)
    with WasmEngine(tmp_path) as e1:
        e1.load(h, upper_wasm)
        path = e1.cache_path(h)
    assert path is not None
    good = path.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01  # one bit in the native code: wasmtime alone would run it
    for corrupt in [b"not a compiled component", good[: 100], bytes(flipped)]:
        path.write_bytes(corrupt)
        with WasmEngine(tmp_path) as e2:
            loaded = e2.load(h, upper_wasm)
            assert not loaded.from_cache and e2.compiled == 1
            with WasmProcessor(e2, loaded, {}, function_name="upper") as p:
                assert p.process(0, b"ok").records == [(0, b"OK")]
        # ... and the cache was rewritten with a good one
        with WasmEngine(tmp_path) as e3:
            assert e3.load(h, upper_wasm).from_cache

