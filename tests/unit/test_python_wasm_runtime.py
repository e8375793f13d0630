"""The Python runtime component: ``type: python`` modules run inside the WebAssembly sandbox.

The component (fs_bus/runtime/python_wasm/guest, built with componentize-py) gets the
modules through ``fs-exec`` and forwards the world's exports to the user's
FSProcessorDriver; its state is the host's, through the kv interface. No Kafka.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fs_bus
from fs_bus.errors import GuestError, InvalidArtifact
from fs_bus.runtime.python_wasm import runtime_component, runtime_key
from fs_bus.runtime.wasm import LoadedComponent, WasmEngine, WasmProcessor
from fs_bus.state.backend import MemoryBackend
from fs_bus.state.kv import ComplexKey, KvStore
from tests.wasm_hosts import AVAILABLE

CACHE = Path.home() / ".cache" / "fs-bus" / "test-guests" / "python-runtime"

COUNTER = b'''
import json
from fs_api import FSProcessorDriver, Context
class CounterProcessor(FSProcessorDriver):
    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        store = ctx.getOrCreateKVStore("counter-store")
        n = int(store.get_state(data) or b"0") + 1
        store.put_state(data, str(n).encode())
        ctx.emit(json.dumps({"word": data.decode(), "count": n}).encode(), 0)
'''


@pytest.fixture(scope="session")
def runtime_wasm() -> bytes:
    try:
        return runtime_component(CACHE)
    except InvalidArtifact as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session", params=AVAILABLE)
def engine(request: pytest.FixtureRequest) -> Iterator[WasmEngine]:
    # Compiling the ~30 MB component takes seconds; the compiled form is cached too.
    with WasmEngine(CACHE / "compiled", host=request.param) as e:
        yield e


@pytest.fixture(scope="session")
def runtime(engine: WasmEngine, runtime_wasm: bytes) -> LoadedComponent:
    return engine.load(hashlib.sha256(runtime_wasm).hexdigest(), runtime_wasm)


def make(engine: WasmEngine, runtime: LoadedComponent, class_name: str, modules: list[tuple[str, bytes]], *,
         config: dict[str, str] | None = None, state: MemoryBackend | None = None,
         name: str = "counter") -> WasmProcessor:
    p = WasmProcessor(engine, runtime, {"k": "v"} if config is None else config, function_name=name,
                      state=MemoryBackend() if state is None else state)
    try:
        p.exec(class_name, modules)
    except BaseException:
        p.close()
        raise
    return p


def records(out) -> list[tuple[int, object]]:  # type: ignore[no-untyped-def]
    return [(target, json.loads(data)) for target, data in out.records]


def test_the_runtime_is_a_processor_runtime_component(runtime: LoadedComponent) -> None:
    assert {"fs-init", "fs-process", "fs-exec", "fs-custom", "fs-close"} <= runtime.exports
    assert runtime.export_types["fs-exec"] == "func(string, list<tuple<string, list<u8>>>)"
    assert runtime.needs_wasi


def test_the_counter_counts_exactly_and_its_state_is_the_hosts(engine: WasmEngine, runtime: LoadedComponent) -> None:
    backend = MemoryBackend()
    p = make(engine, runtime, "CounterProcessor", [("counter_mod", COUNTER)], state=backend)
    try:
        words = [b"apple", b"pear", b"apple", b"fig", b"apple", b"pear"]
        out = [records(p.process(0, w)) for w in words]
        assert out == [
            [(0, {"word": "apple", "count": 1})],
            [(0, {"word": "pear", "count": 1})],
            [(0, {"word": "apple", "count": 2})],
            [(0, {"word": "fig", "count": 1})],
            [(0, {"word": "apple", "count": 3})],
            [(0, {"word": "pear", "count": 2})],
        ]
        # The guest's store is the host's, with the kv key layout.
        p.flush_state()
        store = KvStore(backend, "counter-store")
        assert store.get_state(b"apple") == b"3"
        assert store.get_state(b"pear") == b"2"
        assert store.get_state(b"fig") == b"1"
        assert store.list_states(b"", b"\xff") == [b"apple", b"fig", b"pear"]
        assert p.open_kv_handles == {"store": 1, "iterator": 0}  # one handle per store name
    finally:
        p.close()


def test_a_second_instance_over_the_same_state_goes_on_counting(engine: WasmEngine, runtime: LoadedComponent) -> None:
    backend = MemoryBackend()
    KvStore(backend, "counter-store").put_state(b"apple", b"41")
    p = make(engine, runtime, "CounterProcessor", [("counter_mod", COUNTER)], state=backend)
    try:
        assert records(p.process(0, b"apple")) == [(0, {"word": "apple", "count": 42})]
    finally:
        p.close()


def test_a_module_graph_with_a_package(engine: WasmEngine, runtime: LoadedComponent) -> None:
    # Dependencies first, the driver's module last; `text` is a package because
    # `text.case` exists, and `text` imports its own submodule.
    modules = [
        ("text", b"from text.case import shout\nSUFFIX = b'!'\n"),
        ("text.case", b"def shout(data: bytes) -> bytes:\n    return data.upper()\n"),
        ("helper", b"from text import shout, SUFFIX\ndef loud(data):\n    return shout(data) + SUFFIX\n"),
        ("app.main", b'''
from fs_api import FSProcessorDriver
import helper
import text
class Loud(FSProcessorDriver):
    def process(self, ctx, source_id, data):
        ctx.emit(helper.loud(data), source_id)
        ctx.emit(repr((text.__name__, text.__package__, hasattr(text, "__path__"), __name__)).encode(), 7)
'''),
    ]
    p = make(engine, runtime, "Loud", modules)
    try:
        out = p.process(3, b"hey")
        assert out.records == [(3, b"HEY!"), (7, repr(("text", "text", True, "app.main")).encode())]
    finally:
        p.close()


def test_user_init_sees_the_config_and_what_it_emits_goes_out_first(engine: WasmEngine,
                                                                    runtime: LoadedComponent) -> None:
    src = b'''
import json
from fs_api import FSProcessorDriver
class WithInit(FSProcessorDriver):
    def init(self, ctx, config):
        self.prefix = config["prefix"].encode()
        self.calls = getattr(self, "calls", 0) + 1
        ctx.emit(json.dumps({"init": config, "ctx": ctx.getConfig()}).encode(), 1)
    def process(self, ctx, source_id, data):
        ctx.emit(self.prefix + data + b" " + str(self.calls).encode())
'''
    p = make(engine, runtime, "WithInit", [("m", src)], config={"prefix": ">> ", "other": "x"})
    try:
        out = p.process(0, b"a")
        assert out.records[0] == (1, json.dumps({"init": {"prefix": ">> ", "other": "x"},
                                                 "ctx": {"prefix": ">> ", "other": "x"}}).encode())
        assert out.records[1:] == [(0, b">> a 1")]
        assert p.process(0, b"b").records == [(0, b">> b 1")]  # init ran once
    finally:
        p.close()


def test_without_fs_init_the_driver_is_initialized_with_an_empty_config(engine: WasmEngine,
                                                                       runtime: LoadedComponent) -> None:
    # A host that never calls fs-init (here: one that does not see the export).
    no_init = dataclasses.replace(runtime, exports=runtime.exports - {"fs-init"})
    src = b'''
from fs_api import FSProcessorDriver
class D(FSProcessorDriver):
    def init(self, ctx, config):
        ctx.emit(b"init %r %r" % (config, ctx.getConfig()))
    def process(self, ctx, source_id, data):
        ctx.emit(data)
'''
    p = make(engine, no_init, "D", [("m", src)])
    try:
        assert p.process(0, b"x").records == [(0, b"init {} {}"), (0, b"x")]
    finally:
        p.close()


def test_an_exception_in_user_code_is_a_guest_error_and_the_log_names_it(
    engine: WasmEngine, runtime: LoadedComponent, caplog: pytest.LogCaptureFixture
) -> None:
    src = COUNTER + b'''
class Fragile(CounterProcessor):
    def process(self, ctx, source_id, data):
        if data == b"boom":
            raise ZeroDivisionError("no " + data.decode())
        super().process(ctx, source_id, data)
'''
    p = make(engine, runtime, "Fragile", [("counter_mod", src)], name="fragile")
    try:
        assert records(p.process(0, b"ok")) == [(0, {"word": "ok", "count": 1})]
        with caplog.at_level(logging.WARNING, logger="fs_bus.guest.fragile"), \
                pytest.raises(GuestError, match="trapped in fs-process"):
            p.process(0, b"boom")
        # The GuestError itself says only "trapped" (the host does not read the
        # guest's stderr into it); the function's log names the exception, with
        # the user's source line.
        assert "stderr: fs-bus python runtime: Fragile.process raised ZeroDivisionError: no boom" in caplog.text
        assert 'raise ZeroDivisionError("no " + data.decode())' in caplog.text
        assert p.broken
    finally:
        p.close()


@pytest.mark.parametrize("class_name, src, why", [
    ("NotADriver", b"class NotADriver:\n    def process(self, ctx, s, d): pass\n",
     "'NotADriver' in module 'm' is not a subclass of FSProcessorDriver"),
    ("Missing", b"from fs_api import FSProcessorDriver\n", "module 'm' defines no 'Missing'"),
    ("NoProcess", b"from fs_api import FSProcessorDriver\nclass NoProcess(FSProcessorDriver): pass\n",
     "class 'NoProcess' does not define process()"),
    ("X", b"import numpy\n", "importing module 'm' raised ModuleNotFoundError: No module named 'numpy' "
                             "(only the standard library bundled"),
    ("X", b"def broken(:\n", "importing module 'm' raised SyntaxError"),
])
def test_exec_refuses_what_is_not_a_driver(engine: WasmEngine, runtime: LoadedComponent,
                                           caplog: pytest.LogCaptureFixture, class_name: str, src: bytes,
                                           why: str) -> None:
    with caplog.at_level(logging.WARNING, logger="fs_bus.guest.bad"), \
            pytest.raises(GuestError, match="trapped in fs-exec"):
        make(engine, runtime, class_name, [("m", src)], name="bad")
    assert why in caplog.text


def test_process_before_exec_is_refused(engine: WasmEngine, runtime: LoadedComponent,
                                        caplog: pytest.LogCaptureFixture) -> None:
    p = WasmProcessor(engine, runtime, {}, function_name="early")
    try:
        with caplog.at_level(logging.WARNING, logger="fs_bus.guest.early"), pytest.raises(GuestError):
            p.process(0, b"x")
        assert "fs-process before fs-exec" in caplog.text
    finally:
        p.close()


def test_exec_twice_is_refused(engine: WasmEngine, runtime: LoadedComponent) -> None:
    p = make(engine, runtime, "CounterProcessor", [("counter_mod", COUNTER)])
    try:
        with pytest.raises(GuestError, match="trapped in fs-exec"):
            p.exec("CounterProcessor", [("counter_mod", COUNTER)])
    finally:
        p.close()


HOOKS = b'''
import json
from fs_api import FSProcessorDriver
class Hooks(FSProcessorDriver):
    def init(self, ctx, config):
        self.healthy = True
        self.seen = []
    def process(self, ctx, source_id, data):
        if data == b"sick":
            self.healthy = False
        self.seen.append(data.decode())
    def process_watermark(self, ctx, source_id, watermark):
        ctx.emit_watermark(watermark + 1, 2)
        ctx.emit(b"wm %d %d" % (source_id, watermark), 1)
    def take_checkpoint(self, ctx, checkpoint_id):
        ctx.getOrCreateKVStore("meta").put_state(b"checkpoint", str(checkpoint_id).encode())
        ctx.emit(b"cp %d" % checkpoint_id)
    def check_heartbeat(self, ctx):
        return self.healthy
    def close(self, ctx):
        ctx.getOrCreateKVStore("meta").put_state(b"closed", b"yes")
    def custom(self, payload):
        return json.dumps({"seen": self.seen, "payload": payload[::-1].decode()}).encode()
'''


def test_every_hook_is_forwarded(engine: WasmEngine, runtime: LoadedComponent) -> None:
    backend = MemoryBackend()
    p = make(engine, runtime, "Hooks", [("hooks", HOOKS)], state=backend)
    try:
        out = p.process_watermark(1, 1000)
        assert out.records == [(1, b"wm 1 1000")] and out.watermarks == [(2, 1001)]
        assert p.check_heartbeat() is True
        assert p.process(0, b"a").records == []
        assert p.take_checkpoint(1).records == [(0, b"cp 1")]
        assert KvStore(backend, "meta").get_state(b"checkpoint") == b"1"
        assert json.loads(p.custom(b"olleh")) == {"seen": ["a"], "payload": "hello"}
        p.process(0, b"sick")
        assert p.check_heartbeat() is False
    finally:
        p.close()
    assert KvStore(backend, "meta").get_state(b"closed") == b"yes"


def test_custom_without_a_custom_hook_is_refused(engine: WasmEngine, runtime: LoadedComponent,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    p = make(engine, runtime, "CounterProcessor", [("counter_mod", COUNTER)])
    try:
        with caplog.at_level(logging.WARNING, logger="fs_bus.guest.counter"), \
                pytest.raises(GuestError, match="trapped in fs-custom"):
            p.custom(b"x")
        assert "CounterProcessor does not define custom()" in caplog.text
    finally:
        p.close()


KV_TOUR = b'''
import json
from fs_api import ComplexKey, FSProcessorDriver
class Tour(FSProcessorDriver):
    def process(self, ctx, source_id, data):
        s = ctx.getOrCreateKVStore("tour")
        assert ctx.getOrCreateKVStore("tour") is s
        out = {}
        s.put_state(b"a", b"1"); s.put_state(bytearray(b"b"), memoryview(b"2")); s.put_state(b"c", b"3")
        s.delete_state(b"c"); s.delete_state(b"never")
        out["list_states"] = [k.decode() for k in s.list_states(b"", b"z")]
        out["missing"] = s.get_state(b"nope")
        ck = lambda uk: ComplexKey(b"g", b"k", b"ns", uk)
        for i in range(5):
            s.put(ck(b"u%d" % i), b"v%d" % i)
        s.merge(ck(b"u0"), b"+m"); s.merge(ck(b"new"), b"fresh")
        out["get"] = s.get(ck(b"u0")).decode()
        out["merged_new"] = s.get(ck(b"new")).decode()
        s.delete(ck(b"u4"))
        out["list_complex"] = [k.decode() for k in s.list_complex(b"g", b"k", b"ns", b"u1", b"u9")]
        with s.scan_complex(b"g", b"k", b"ns") as it:
            out["scan"] = [[k.decode(), v.decode()] for k, v in it]
        it = s.scan_complex(b"g", b"k", b"ns")
        first = [it.has_next(), it.next()[0].decode()]
        it.close()
        out["first"] = first
        s.delete_prefix(ck(b"u"))
        out["after_delete_prefix"] = [k.decode() for k in s.list_complex(b"g", b"k", b"ns", b"", b"\\xff")]
        try:
            s.put_state("text", b"x")
        except TypeError as e:
            out["type_error"] = str(e)
        ctx.emit(json.dumps(out).encode())
'''


def test_the_kv_store_api_inside_the_sandbox(engine: WasmEngine, runtime: LoadedComponent) -> None:
    backend = MemoryBackend()
    p = make(engine, runtime, "Tour", [("tour", KV_TOUR)], state=backend)
    try:
        (_, out), = records(p.process(0, b""))
        assert out == {
            "list_states": ["a", "b"],
            "missing": None,
            "get": "v0+m",
            "merged_new": "fresh",
            "list_complex": ["u1", "u2", "u3"],
            "scan": [["new", "fresh"], ["u0", "v0+m"], ["u1", "v1"], ["u2", "v2"], ["u3", "v3"]],
            "first": [True, "new"],
            "after_delete_prefix": ["new"],
            "type_error": "put_state() takes bytes, not str: encode it first, e.g. text.encode()",
        }
        assert p.open_kv_handles == {"store": 1, "iterator": 0}  # iterators were released
        host = KvStore(backend, "tour")
        assert host.get(ComplexKey(b"g", b"k", b"ns", b"new")) == b"fresh"
        assert host.get_state(b"b") == b"2"
    finally:
        p.close()


def test_the_standard_library_is_there(engine: WasmEngine, runtime: LoadedComponent) -> None:
    src = b'''
import collections, dataclasses, datetime, decimal, fractions, hashlib, itertools, math, re, statistics
import base64, struct, textwrap, uuid, zlib, heapq, bisect, csv, io, string, random, typing, enum
import urllib.parse, html, unicodedata, time, calendar, functools, operator, copy, ipaddress
from fs_api import FSProcessorDriver
class Std(FSProcessorDriver):
    def process(self, ctx, source_id, data):
        out = [
            hashlib.sha256(data).hexdigest()[:8],
            str(decimal.Decimal("1.10") + decimal.Decimal("2.205")),
            str(statistics.mean([1, 2, 3, 4])),
            datetime.datetime(2024, 1, 2, 3, 4, 5).isoformat(),
            datetime.datetime.strptime("2024-05-06", "%Y-%m-%d").date().isoformat(),
            re.sub(r"\\d+", "#", "a1b22"),
            data.decode("latin-1").encode("utf-16-le").hex(),
            data.decode("cp1252"),
            base64.b64encode(zlib.compress(data)).decode()[:4],
            urllib.parse.quote("a b/c"),
            str(collections.Counter(data.decode()).most_common(1)),
        ]
        ctx.emit("|".join(out).encode())
'''
    p = make(engine, runtime, "Std", [("std", src)])
    try:
        (target, data), = p.process(0, b"aab").records
        assert data.decode().split("|") == [
            hashlib.sha256(b"aab").hexdigest()[:8], "3.305", "2.5", "2024-01-02T03:04:05", "2024-05-06", "a#b#",
            "610061006200", "aab", "eJxL", "a%20b/c", "[('a', 2)]",
        ]
    finally:
        p.close()


def test_user_code_cannot_read_the_hosts_files(engine: WasmEngine, runtime: LoadedComponent) -> None:
    src = b'''
import os
from fs_api import FSProcessorDriver
class Snoop(FSProcessorDriver):
    def process(self, ctx, source_id, data):
        pass
    def custom(self, payload):
        results = []
        for path in (payload.decode(), "/", "."):
            try:
                with open(path, "rb") as f:
                    results.append("read %d bytes" % len(f.read()))
            except OSError as e:
                results.append(type(e).__name__)
        try:
            results.append(str(os.listdir("/")))
        except OSError as e:
            results.append(type(e).__name__)
        results.append(str(dict(os.environ)))
        return "|".join(results).encode()
'''
    p = make(engine, runtime, "Snoop", [("snoop", src)])
    try:
        results = p.custom(b"/etc/passwd").decode().split("|")
        assert results[0] == "FileNotFoundError"  # no preopens: there is no filesystem at all
        assert not any(r.startswith("read") for r in results[:3])
        assert results[3] in ("FileNotFoundError", "[]")
        assert results[4] == "{}"
    finally:
        p.close()


def test_instances_do_not_share_python_state(engine: WasmEngine, runtime: LoadedComponent) -> None:
    src = b'''
from fs_api import FSProcessorDriver
COUNT = [0]
class Global(FSProcessorDriver):
    def process(self, ctx, source_id, data):
        COUNT[0] += 1
        ctx.emit(str(COUNT[0]).encode())
'''
    a = make(engine, runtime, "Global", [("g", src)])
    b = make(engine, runtime, "Global", [("g", src)])
    try:
        assert [a.process(0, b"").records for _ in range(3)] == [[(0, b"1")], [(0, b"2")], [(0, b"3")]]
        assert b.process(0, b"").records == [(0, b"1")]
    finally:
        a.close()
        b.close()


# --- building ---------------------------------------------------------------------


def test_the_build_is_cached_by_key(runtime_wasm: bytes) -> None:
    key = runtime_key()
    assert (CACHE / f"python-runtime-{key}.wasm").read_bytes() == runtime_wasm
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(runtime_component(CACHE))) for _ in range(4)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [runtime_wasm] * 4
    assert time.perf_counter() - start < 5  # read from the cache, not built again


def test_missing_componentize_py_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def version(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(InvalidArtifact, match=r"needs componentize-py: pip install componentize-py==0\.25\.1"):
        runtime_component(tmp_path)


def test_missing_wit_is_refused_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fs_bus, "__file__", str(tmp_path / "fs_bus" / "__init__.py"))
    with pytest.raises(InvalidArtifact, match="processor.wit"):
        runtime_component(tmp_path)
