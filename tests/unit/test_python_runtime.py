"""Python functions (fs_bus.runtime.python): the user's driver class in a process of its own. No Kafka."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fs_bus.artifacts.python_bundle import PythonBundle, pack
from fs_bus.errors import BatchFailed, GuestError, GuestTimeout, InvalidArtifact
from fs_bus.runtime.base import Emitted
from fs_bus.runtime.python import PythonProcessor
from fs_bus.runtime.python import protocol
from fs_bus.state.backend import MemoryBackend
from fs_bus.state.kv import ComplexKey, KvStore

REPO = Path(__file__).resolve().parents[2]
Make = Callable[..., PythonProcessor]

COUNTER = """
import json
from fs_api import FSProcessorDriver, Context

class CounterProcessor(FSProcessorDriver):
    def init(self, ctx: Context, config: dict) -> None: ...

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        if not data.strip():
            return
        if data == b"die":
            import os
            os._exit(3)
        store = ctx.getOrCreateKVStore("counter-store")
        n = int(store.get_state(data) or b"0") + 1
        store.put_state(data, str(n).encode())
        ctx.emit(json.dumps({"word": data.decode(), "count": n}).encode(), 0)
"""


def bundle(source: str, class_name: str = "Driver", *helpers: tuple[str, str], module: str = "driver") -> bytes:
    modules = tuple((name, textwrap.dedent(src).encode()) for name, src in helpers)
    return pack(PythonBundle(class_name, (*modules, (module, textwrap.dedent(source).encode()))))


def driver(body: str, imports: str = "") -> bytes:
    """A bundle whose class ``Driver`` has ``body`` as its class body."""
    source = f"from fs_api import FSProcessorDriver, Context\n{imports}\n\nclass Driver(FSProcessorDriver):\n"
    return bundle(source + textwrap.indent(textwrap.dedent(body), "    "))


def counts(results: list[Emitted]) -> list[tuple[str, int]]:
    out = []
    for emitted in results:
        for _target, data in emitted.records:
            record = json.loads(data)
            out.append((record["word"], record["count"]))
    return out


def alive(pid: int) -> bool:
    """Running, not a zombie (a killed grandchild may wait for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., PythonProcessor]]:
    """``make(bundle, **kwargs)``: a PythonProcessor closed at the end of the test."""
    made: list[PythonProcessor] = []

    def factory(code: bytes, config: dict[str, str] | None = None, **kwargs: object) -> PythonProcessor:
        kwargs.setdefault("function_name", "counter")
        kwargs.setdefault("state_path", None)
        processor = PythonProcessor(code, config or {}, **kwargs)  # type: ignore[arg-type]
        made.append(processor)
        return processor

    yield factory
    for processor in made:
        processor.close()


@pytest.fixture
def counter_bundle() -> bytes:
    return bundle(COUNTER, "CounterProcessor", module="counter")


# --- the counter of the issue -------------------------------------------------------


def test_counter_counts_exactly_over_several_batches(make: Make, counter_bundle: bytes) -> None:
    p = make(counter_bundle)
    assert counts(p.process_batch(0, [b"a", b"b", b"a"])) == [("a", 1), ("b", 1), ("a", 2)]
    assert counts(p.process_batch(0, [b"a", b"c"])) == [("a", 3), ("c", 1)]
    assert counts([p.process(0, b"b")]) == [("b", 2)]
    assert all(target == 0 for e in p.process_batch(1, [b"a"]) for target, _ in e.records)


def test_empty_and_whitespace_records_are_skipped_by_the_users_class(make: Make, counter_bundle: bytes) -> None:
    p = make(counter_bundle)
    results = p.process_batch(0, [b"", b"  ", b"a", b"\n\t", b"a"])
    assert [len(e.records) for e in results] == [0, 0, 1, 0, 1]
    assert counts(results) == [("a", 1), ("a", 2)]


def test_500_records_keep_their_order_and_totals(make: Make, counter_bundle: bytes) -> None:
    p = make(counter_bundle)
    words = [f"w{i % 7}".encode() for i in range(500)]
    results = p.process_batch(0, words)
    assert len(results) == 500
    seen: dict[str, int] = {}
    expected = []
    for w in words:
        seen[w.decode()] = seen.get(w.decode(), 0) + 1
        expected.append((w.decode(), seen[w.decode()]))
    assert counts(results) == expected
    assert counts(p.process_batch(0, [b"w0"])) == [("w0", seen["w0"] + 1)]


def test_a_record_raising_fails_the_batch_at_its_index(make: Make) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            if data == b"bad":
                self.explode(data)
            ctx.emit(data.upper())

        def explode(self, data):
            raise ValueError(f"boom on {data!r}")
    """))
    with pytest.raises(BatchFailed) as failed:
        p.process_batch(0, [b"a", b"b", b"bad", b"c"])
    exc = failed.value
    assert exc.index == 2
    assert [e.records for e in exc.done] == [[(0, b"A")], [(0, b"B")]]
    message = str(exc)
    assert message.startswith("function 'counter' raised ValueError: boom on b'bad'")
    assert "record 2 of a batch of 4" in message
    assert "Traceback (most recent call last)" in message
    assert "in explode" in message and 'raise ValueError(f"boom on {data!r}")' in message
    assert "fs_bus/runtime/python" not in message  # the runtime's own frames are left out
    assert p.broken


def test_a_single_record_raising_is_a_guest_error_and_breaks_the_instance(make: Make) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            raise KeyError("nope")
    """))
    with pytest.raises(GuestError) as failed:
        p.process(0, b"x")
    assert not isinstance(failed.value, BatchFailed)
    assert "raised KeyError: 'nope'" in str(failed.value)
    assert p.broken and not alive(p.pid)
    with pytest.raises(GuestError, match="broken"):
        p.process(0, b"x")
    assert p.check_heartbeat() is False


# --- the process dying ------------------------------------------------------------


def test_os_exit_is_a_guest_error_and_a_new_processor_continues_from_the_checkpoint(
    make: Make, counter_bundle: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "p0.sqlite"
    p = make(counter_bundle, state_path=state)
    assert counts(p.process_batch(0, [b"a", b"a"])) == [("a", 1), ("a", 2)]
    p.take_checkpoint(1)
    with pytest.raises(GuestError, match=r"exited with code 3 in process") as failed:
        p.process_batch(0, [b"a", b"die", b"a"])
    assert not isinstance(failed.value, BatchFailed)  # which record died is not known
    assert p.broken
    again = make(counter_bundle, state_path=state)
    assert counts(again.process_batch(0, [b"a"])) == [("a", 3)]


def test_segfault_is_a_guest_error_naming_the_signal_with_the_last_stderr_lines(make: Make) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            print("about to crash")
            import ctypes
            ctypes.string_at(0)
    """))
    with pytest.raises(GuestError) as failed:
        p.process(0, b"x")
    message = str(failed.value)
    assert "killed by SIGSEGV" in message
    assert "about to crash" in message
    assert "Segmentation fault" in message  # faulthandler's report, from stderr


def test_sys_exit_in_init_fails_the_start(make: Make) -> None:
    with pytest.raises(GuestError, match=r"exited with code 0 in init"):
        make(driver("""
            def init(self, ctx, config):
                import sys
                sys.exit()

            def process(self, ctx, source_id, data):
                pass
        """))


def test_endless_loop_is_killed_within_its_budget_with_what_it_started(make: Make, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.guest.loop")
    p = make(driver("""
        def process(self, ctx, source_id, data):
            import subprocess, sys
            child = subprocess.Popen(["sleep", "60"])
            print("grandchild", child.pid, flush=True)
            while True:
                pass
    """), call_timeout_s=0.5, log=log)
    caplog.set_level(logging.INFO, logger="test.guest.loop")
    started = time.monotonic()
    with pytest.raises(GuestTimeout, match=r"ran past its 0.5 s budget in process"):
        p.process(0, b"x")
    assert time.monotonic() - started < 0.5 + 1.5
    assert p.broken
    assert not alive(p.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(p.pid, 0)  # reaped, not a zombie
    grandchild = int(next(r.getMessage().split()[-1] for r in caplog.records if "grandchild" in r.getMessage()))
    assert wait_until(lambda: not alive(grandchild), 2.0)


def test_memory_bomb_under_a_limit_is_a_guest_error_and_the_parent_is_fine(make: Make) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            hog = []
            while True:
                hog.append(bytearray(16 << 20))
    """), memory_limit_mb=200)
    with pytest.raises(GuestError, match="MemoryError|exited|killed"):
        p.process(0, b"x")
    assert p.broken and not alive(p.pid)
    assert len(bytearray(300 << 20)) == 300 << 20  # the limit was the child's only


def test_cpu_burnt_outside_any_call_is_stopped_by_the_cpu_limit(make: Make) -> None:
    # No call runs past its budget here: a thread started in init spins in the background.
    p = make(driver("""
        def init(self, ctx, config):
            import threading
            threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=True).start()

        def process(self, ctx, source_id, data):
            ctx.emit(data, 0)
    """), cpu_limit_s=1, call_timeout_s=10)
    assert wait_until(lambda: not alive(p.pid), 10.0)
    with pytest.raises(GuestError, match=r"SIGXCPU .*cpu-limit-seconds"):
        p.process(0, b"x")
    assert p.broken


def test_the_nodes_kafka_credentials_do_not_reach_user_code(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FS_BUS_KAFKA_SASL_PASSWORD", "s3cret")
    p = make(driver("""
        def process(self, ctx, source_id, data):
            import os
            ctx.emit(repr(sorted(k for k in os.environ if k.startswith("FS_BUS_KAFKA"))).encode(), 0)
    """))
    assert p.process(0, b"x").records == [(0, b"[]")]


def test_the_child_exits_when_its_parent_dies_even_in_an_endless_loop(counter_bundle: bytes, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, sys
        from fs_bus.runtime.python import PythonProcessor
        p = PythonProcessor(open({str(tmp_path / 'b.zip')!r}, 'rb').read(), {{}}, function_name='f',
                            state_path=None, call_timeout_s=60)
        print(p.pid, flush=True)
        import threading
        threading.Thread(target=lambda: p.process(0, b'loop'), daemon=True).start()
        import time; time.sleep(0.3)
        os._exit(0)
    """)
    (tmp_path / "b.zip").write_bytes(driver("""
        def process(self, ctx, source_id, data):
            while True:
                pass
    """))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, check=True)
    pid = int(out.stdout.split()[0])
    assert wait_until(lambda: not alive(pid), 5.0)


# --- loading ---------------------------------------------------------------------


def test_a_driver_module_importing_a_helper_module_of_the_bundle(make: Make) -> None:
    code = bundle(
        """
        from fs_api import FSProcessorDriver
        from textutil import shout
        import pkg.sub as sub

        class Driver(FSProcessorDriver):
            def process(self, ctx, source_id, data):
                ctx.emit(shout(data) + sub.SUFFIX)
        """,
        "Driver",
        ("textutil", "def shout(b):\n    return b.upper() + b'!'\n"),
        ("pkg.sub", "SUFFIX = b'?'\n"),
    )
    p = make(code)
    assert p.process(0, b"hi").records == [(0, b"HI!?")]


def test_a_package_of_the_bundle_with_relative_imports(make: Make) -> None:
    modules = (
        ("tools", b"from .helpers import double\n"),
        ("tools.helpers", b"def double(b):\n    return b + b\n"),
        ("driver", b"from fs_api import FSProcessorDriver\nfrom tools import double\n"
                   b"class Driver(FSProcessorDriver):\n    def process(self, ctx, s, d):\n        ctx.emit(double(d))\n"),
    )
    p = make(pack(PythonBundle("Driver", modules), packages=frozenset({"tools"})))
    assert p.process(0, b"ab").records == [(0, b"abab")]


@pytest.mark.parametrize(
    ("source", "class_name", "message"),
    [
        ("class Driver:\n    def process(self, ctx, s, d): pass\n", "Driver", "not a subclass of FSProcessorDriver"),
        ("Driver = 42\n", "Driver", "not a subclass of FSProcessorDriver"),
        ("class Other: pass\n", "Driver", "defines no 'Driver'"),
        ("from fs_api import FSProcessorDriver\nclass Driver(FSProcessorDriver): pass\n", "Driver",
         "does not define process"),
    ],
)
def test_a_bundle_without_a_usable_driver_class_is_refused_at_start(make: Make, source: str, class_name: str,
                                                                    message: str) -> None:
    with pytest.raises(InvalidArtifact, match=message):
        make(bundle(source, class_name))


def test_an_import_error_in_user_code_names_the_module(make: Make) -> None:
    with pytest.raises(GuestError, match=r"raised ModuleNotFoundError: No module named 'nonexistent_lib'.*"
                                          r"importing module 'driver'"):
        make(bundle("import nonexistent_lib\n"))


def test_init_gets_the_config_and_its_output_goes_out_with_the_first_record(make: Make) -> None:
    p = make(driver("""
        def init(self, ctx, config):
            self.prefix = config["prefix"].encode()
            ctx.emit(b"hello from init", 1)
            assert ctx.getConfig() == config

        def process(self, ctx, source_id, data):
            ctx.emit(self.prefix + data)
    """), {"prefix": ">"})
    assert p.process_batch(0, [b"a", b"b"])[0].records == [(1, b"hello from init"), (0, b">a")]


# --- the other hooks ----------------------------------------------------------------


def test_watermarks_reach_the_driver_and_come_back(make: Make) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            pass

        def process_watermark(self, ctx, source_id, watermark):
            ctx.emit_watermark(watermark + source_id, 2)
    """))
    assert p.process_watermark(3, 1_700_000_000_000).watermarks == [(2, 1_700_000_000_003)]


def test_custom_round_trip(make: Make, counter_bundle: bytes) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            pass

        def custom(self, payload):
            return payload[::-1] + bytes(range(256))
    """))
    assert p.custom(b"abc") == b"cba" + bytes(range(256))
    assert p.custom(b"") == bytes(range(256))
    plain = make(counter_bundle)
    with pytest.raises(GuestError, match="does not define custom"):
        plain.custom(b"x")
    assert not plain.broken  # nothing failed: the hook is just not there


def test_check_heartbeat_false_when_the_driver_says_so(make: Make) -> None:
    p = make(driver("""
        healthy = True

        def process(self, ctx, source_id, data):
            self.healthy = data != b"sick"

        def check_heartbeat(self, ctx):
            return self.healthy
    """))
    assert p.check_heartbeat() is True
    p.process(0, b"sick")
    assert p.check_heartbeat() is False
    assert not p.broken


def test_close_calls_the_drivers_close_and_is_idempotent(make: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "closed"
    p = make(driver(f"""
        def process(self, ctx, source_id, data):
            pass

        def close(self, ctx):
            open({str(marker)!r}, "w").write("yes")
    """))
    p.close()
    p.close()
    assert marker.read_text() == "yes"
    assert not alive(p.pid)
    with pytest.raises(GuestError, match="closed"):
        p.process(0, b"x")


# --- state ------------------------------------------------------------------------------


KV_DRIVER = """
def init(self, ctx, config):
    self.store = ctx.getOrCreateKVStore("kv")

def process(self, ctx, source_id, data):
    pass

def custom(self, payload):
    # payload: a JSON list of [op, args...] with bytes as latin-1 strings; reply: the results
    s = self.store
    b = lambda x: x.encode("latin-1")
    out = []
    for op, *args in json.loads(payload):
        if op in ("put", "get", "delete", "merge", "delete_prefix"):
            result = getattr(s, op)(ComplexKey(*map(b, args[:4])), *map(b, args[4:]))
        elif op == "scan_complex":
            it = s.scan_complex(*map(b, args))
            result = [[k, v] for k, v in it]
            assert it.has_next() is False and it.next() is None
        else:
            result = getattr(s, op)(*map(b, args))
        out.append(result)
    enc = lambda x: x.decode("latin-1") if isinstance(x, bytes) else [enc(y) for y in x] if isinstance(x, list) else x
    return json.dumps([enc(r) for r in out]).encode()
"""


def run_kv(store: KvStore, ops: list[list[str]]) -> list[object]:
    """The same ops against the reference: fs_bus.state.kv over a MemoryBackend."""

    def b(x: str) -> bytes:
        return x.encode("latin-1")

    out: list[object] = []
    for op, *args in ops:
        if op in ("put", "get", "delete", "merge", "delete_prefix"):
            result = getattr(store, op)(ComplexKey(*map(b, args[:4])), *map(b, args[4:]))
        elif op == "scan_complex":
            it = store.scan_complex(*map(b, args))
            result = []
            while (item := it.next()) is not None:
                result.append(list(item))
        else:
            result = getattr(store, op)(*map(b, args))
        out.append(result)

    def enc(x: object) -> object:
        if isinstance(x, bytes):
            return x.decode("latin-1")
        if isinstance(x, (list, tuple)):
            return [enc(y) for y in x]
        return x

    return [enc(r) for r in out]


def test_kv_semantics_through_the_api_match_the_wasm_kv_over_1000_entries(make: Make, tmp_path: Path) -> None:
    p = make(driver(KV_DRIVER, "import json\nfrom fs_api import ComplexKey"), state_path=tmp_path / "kv.sqlite")
    reference = KvStore(MemoryBackend(page_size=7), "kv")
    ops: list[list[str]] = []
    for i in range(1000):
        ops.append(["put_state", f"k{i:04d}", f"v{i}"])
        ops.append(["put", "g", "key", "ns", f"u{i:04d}", f"c{i}"])
    ops += [
        ["get_state", "k0007"], ["get_state", "absent"], ["delete_state", "k0007"], ["get_state", "k0007"],
        ["list_states", "k0005", "k0012"], ["list_states", "k0990", "\xff"], ["list_states", "b", "a"],
        ["get", "g", "key", "ns", "u0500"], ["get", "g", "key", "other", "u0500"],
        ["merge", "g", "key", "ns", "u0500", "+more"], ["merge", "g", "key", "ns", "fresh", "first"],
        ["get", "g", "key", "ns", "u0500"], ["get", "g", "key", "ns", "fresh"],
        ["delete_prefix", "g", "key", "ns", "u01"], ["list_complex", "g", "key", "ns", "u0095", "u0205"],
        ["delete", "g", "key", "ns", "u0999"], ["get", "g", "key", "ns", "u0999"],
        ["put", "g", "keyn", "s", "x", "not under (g, key, ns)"],
        ["scan_complex", "g", "key", "ns"], ["scan_complex", "g", "keyn", "s"], ["scan_complex", "none", "", ""],
    ]
    got = json.loads(p.custom(json.dumps(ops).encode()))
    assert got == run_kv(reference, ops)
    scan = got[-3]
    assert len(scan) == 1000 - 100 - 1 + 1  # u0100..u0199 deleted, u0999 deleted, fresh added
    assert scan[0] == ["fresh", "first"] and ["u0500", "c500+more"] in scan


def test_kv_store_is_a_python_iterator_in_user_code() -> None:
    from fs_api import ComplexKey as Key
    from fs_api import Context

    ctx = Context()
    store = ctx.getOrCreateKVStore("s")
    assert store is ctx.getOrCreateKVStore("s")
    for i in range(600):
        store.put(Key(b"g", b"k", b"n", i.to_bytes(2, "big")), b"v")
    assert [int.from_bytes(k, "big") for k, _ in store.scan_complex(b"g", b"k", b"n")] == list(range(600))


def test_take_checkpoint_makes_state_durable_and_later_writes_are_lost_with_the_process(
    make: Make, counter_bundle: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "p0.sqlite"
    p = make(counter_bundle, state_path=state)
    p.process_batch(0, [b"a", b"b"])
    p.take_checkpoint(1)
    p.process_batch(0, [b"a", b"c"])  # not checkpointed
    os.kill(p.pid, signal.SIGKILL)
    with pytest.raises(GuestError, match="killed by SIGKILL"):
        p.process(0, b"a")
    again = make(counter_bundle, state_path=state)
    assert counts(again.process_batch(0, [b"a", b"b", b"c"])) == [("a", 2), ("b", 2), ("c", 1)]


def test_close_without_a_checkpoint_drops_the_uncommitted_state(make: Make, counter_bundle: bytes, tmp_path: Path) -> None:
    state = tmp_path / "p0.sqlite"
    p = make(counter_bundle, state_path=state)
    p.process(0, b"a")
    p.take_checkpoint(1)
    p.process(0, b"a")
    p.close()
    assert counts([make(counter_bundle, state_path=state).process(0, b"a")]) == [("a", 2)]


def test_checkpoint_ids_must_increase(make: Make, counter_bundle: bytes) -> None:
    p = make(counter_bundle)
    p.take_checkpoint(5)
    with pytest.raises(ValueError, match="must increase"):
        p.take_checkpoint(5)


def test_take_checkpoint_raising_is_a_guest_error(make: Make) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            pass

        def take_checkpoint(self, ctx, checkpoint_id):
            raise RuntimeError(f"cannot checkpoint {checkpoint_id}")
    """))
    with pytest.raises(GuestError, match=r"raised RuntimeError: cannot checkpoint 9 \(in take_checkpoint\)"):
        p.take_checkpoint(9)


# --- output -------------------------------------------------------------------------------


def test_prints_land_in_the_log_and_never_corrupt_the_protocol(make: Make, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.guest.printer")
    p = make(driver("""
        def process(self, ctx, source_id, data):
            for i in range(2000):
                print(f"line {i} \\x00\\x01\\xff \\udcff {data!r}")
            sys.stdout.buffer.write(b"\\x00\\x00\\x00\\x05\\x01raw bytes on fd 1\\n")
            sys.stdout.flush()
            os.write(1, b"\\xff\\xfe straight to the descriptor\\n")
            print("to stderr", file=sys.stderr)
            logging.getLogger("user").warning("a logging call")
            if data == b"b":  # the last record of the call: its line ends with the call
                print("no newline at the end", end="")
            ctx.emit(data.upper())
    """, "import logging, os, sys"), log=log)
    caplog.set_level(logging.INFO, logger="test.guest.printer")
    results = p.process_batch(0, [b"a", b"b"])
    assert [e.records for e in results] == [[(0, b"A")], [(0, b"B")]]
    messages = [r.getMessage() for r in caplog.records if r.name == "test.guest.printer"]
    assert sum(m.startswith("stdout: line ") for m in messages) == 4000
    assert "stdout: line 1999 \x00\x01\xff \\udcff b'b'" in messages
    assert "stdout: \x00\x00\x00\x05\x01raw bytes on fd 1" in messages  # frame-like bytes are just output
    assert any("straight to the descriptor" in m for m in messages)
    assert "stdout: no newline at the end" in messages
    stderr = [r for r in caplog.records if r.getMessage() == "stderr: to stderr"]
    assert stderr and stderr[0].levelno == logging.WARNING
    assert any("a logging call" in m for m in messages)
    assert p.process(0, b"c").records == [(0, b"C")]  # still in step


# --- the API package ---------------------------------------------------------------------


def test_fs_api_imports_without_wasmtime_or_confluent_kafka() -> None:
    code = (
        "import sys\n"
        "from fs_api import FSProcessorDriver, Context, ComplexKey, KVStore\n"
        "import fs_bus.api\n"
        "assert FSProcessorDriver is fs_bus.api.FSProcessorDriver\n"
        "print(sorted(m for m in ('wasmtime', 'confluent_kafka') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]"


def test_context_checks_what_user_code_emits() -> None:
    from fs_api import Context

    ctx = Context({"a": 1})  # type: ignore[dict-item]
    assert ctx.getConfig() == {"a": "1"}
    ctx.emit(bytearray(b"x"), 3)
    ctx.emit_watermark(7)
    with pytest.raises(TypeError, match="encode it first"):
        ctx.emit("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel"):
        ctx.emit(b"x", -1)
    assert ctx.take_emitted() == Emitted([(3, b"x")], [(0, 7)])
    assert ctx.take_emitted() == Emitted()


# --- the protocol ---------------------------------------------------------------------------


def test_garbage_forged_on_the_reply_pipe_by_user_code_is_refused(make: Make) -> None:
    p = make(driver("""
        def process(self, ctx, source_id, data):
            os.write(int(sys.argv[2]), data)  # the reply pipe's descriptor
            while True:
                pass
    """, "import os, sys"), call_timeout_s=2)
    with pytest.raises(GuestError, match="malformed reply"):
        p.process(0, b"\xff\xff\xff\xff")  # announces a 4 GiB frame
    assert p.broken and not alive(p.pid)


emitted_lists = st.lists(
    st.builds(
        Emitted,
        st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=40)), max_size=4),
        st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)), max_size=3),
    ),
    max_size=20,
)


@given(emitted_lists)
def test_results_round_trip(results: list[Emitted]) -> None:
    outputs = protocol.Outputs()
    for emitted in results:
        outputs.records += emitted.records
        outputs.watermarks += emitted.watermarks
        outputs.record_ends.append(len(outputs.records))
        outputs.watermark_ends.append(len(outputs.watermarks))
    reply = protocol.Reply(protocol.ok_results(outputs))
    assert reply.u8() == protocol.Status.OK
    assert reply.results(len(results)) == results


@given(st.binary(max_size=200), st.integers(0, 5))
def test_malformed_replies_raise_protocol_error_only(body: bytes, count: int) -> None:
    for parse in (lambda r: r.results(count), lambda r: r.failure()):
        try:
            parse(protocol.Reply(body))
        except protocol.ProtocolError:
            pass
