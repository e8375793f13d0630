"""The wasmtime host for WebAssembly components of the ``functionstream:core@0.1.0``
``processor`` world (see ``wit/processor.wit``).

One :class:`WasmEngine` per node compiles components (and caches the compiled form
on disk); one :class:`WasmProcessor` per partition worker owns a Store and an
instance, so state never leaks between partitions and no Store is ever shared
between threads.

Facts about wasmtime-py 50 this module relies on (probed, see DESIGN.md):

- ``list<u8>`` parameters must be ``bytes`` exactly (``bytearray`` and
  ``memoryview`` raise ``TypeError``); ``list<u8>`` values reaching a host
  function arrive as ``bytes``. Either way they are converted one element at a
  time, which is what bounds throughput today.
- ``post_return`` is done by wasmtime itself: a second call without it works.
  ``Func.post_return`` is still available and cheap, but we do not need it.
- A trap (including an epoch interruption) poisons the component instance: any
  later call fails with "cannot enter component instance".
- A new Store's epoch deadline is 0, i.e. "already expired" once the epoch has
  moved: the deadline must be set before instantiation and before every call.
- ``Linker.define_unknown_imports_as_traps`` defines exact ``wasi:x@0.2.0``
  stubs that win over ``add_wasip2``'s semver-compatible 0.2.x definitions, so
  we stub unknown imports ourselves (``_stub``) and leave ``wasi:`` ones alone.
- A Python exception raised by a host function comes back out of the call as
  that exception (wasmtime-py keeps it in a module global meanwhile).
- ``Component.deserialize_file`` mmaps the file: truncating it in place later
  crashes the process, so the cache is read into memory instead.
- ``Component(engine, data)`` parses ``bytes`` that do not start with ``\\0`` as
  WAT text, so the binary header is checked before anything is compiled.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import logging
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component as wc

from fs_bus.errors import ArtifactError, GuestError, GuestTimeout, InvalidArtifact
from fs_bus.runtime.base import Emitted

log = logging.getLogger(__name__)

COLLECTOR = "functionstream:core/collector@0.1.0"
KV = "functionstream:core/kv@0.1.0"

# The processor world's exports, as WIT parameter/result types (names left out:
# we call positionally, and toolchains are free to rename parameters).
PROCESSOR_EXPORTS: dict[str, str] = {
    "fs-init": "func(list<tuple<string, string>>)",
    "fs-process": "func(u32, list<u8>)",
    "fs-process-watermark": "func(u32, u64)",
    "fs-take-checkpoint": "func(u64)",
    "fs-check-heartbeat": "func() -> bool",
    "fs-close": "func()",
    "fs-exec": "func(string, list<tuple<string, list<u8>>>)",
    "fs-custom": "func(list<u8>) -> list<u8>",
}

# The host functions we define are untyped (wasmtime-py's add_func): wasmtime
# would link a guest whose `emit` takes a string and hand us a str. So the
# collector import is checked against the WIT at load time.
COLLECTOR_FUNCS: dict[str, str] = {
    "emit": "func(u32, list<u8>)",
    "emit-watermark": "func(u32, u64)",
}

WASMTIME_VERSION = importlib.metadata.version("wasmtime")

_WASM_MAGIC = b"\0asm"
_CORE_MODULE_VERSION = b"\x01\x00\x00\x00"  # a component's layer/version differs
_INTERRUPT = "wasm trap: interrupt"  # wasmtime's message for an epoch deadline


@dataclass(frozen=True, slots=True)
class LoadedComponent:
    """A compiled component plus what the host needs to know before instantiating it."""

    sha256: str
    component: wc.Component
    exports: frozenset[str]  # the processor-world exports it has (fs-process always)
    imports: frozenset[str]  # every import name, e.g. "functionstream:core/collector@0.1.0"
    from_cache: bool  # deserialized from the on-disk compiled cache, not compiled

    @property
    def needs_wasi(self) -> bool:
        return any(name.startswith("wasi:") for name in self.imports)


class WasmEngine:
    """One per node: the wasmtime Engine, its epoch ticker and the component cache.

    ``cache_dir`` (optional) holds compiled components as
    ``<sha256>-wasmtime<version>.cwasm``: compiling a 20 MB component takes
    seconds, deserializing it a tenth of a second.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, *, tick_s: float = 0.05) -> None:
        if tick_s <= 0:
            raise ValueError(f"tick_s must be > 0, got {tick_s}")
        config = wasmtime.Config()
        config.wasm_component_model = True
        # Epoch interruption is the cheap way to bound a call's wall time: the
        # guest checks a counter at loop heads and function entries, and the
        # ticker thread below bumps it.
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.tick_s = tick_s
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Counters, so callers (and tests) can see which road load() took.
        self.compiled = 0
        self.deserialized = 0
        self._loaded: dict[str, LoadedComponent] = {}
        # One lock for all loads: two workers of one function starting at once
        # must not both spend seconds compiling the same component.
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="wasm-epoch-ticker", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        # increment_epoch is a relaxed atomic add in wasmtime: safe from any thread.
        while not self._stop.wait(self.tick_s):
            self.engine.increment_epoch()

    def deadline_ticks(self, timeout_s: float) -> int:
        """Epoch ticks for a budget of ``timeout_s``. One extra tick because the
        first may come right after the deadline is set: the budget is a floor."""
        return max(1, math.ceil(timeout_s / self.tick_s)) + 1

    def cache_path(self, sha256: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{sha256}-wasmtime{WASMTIME_VERSION}.cwasm"

    def load(self, sha256: str, wasm: bytes) -> LoadedComponent:
        """Compile (or fetch from the caches) the component whose bytes are ``wasm``.

        Raises ``InvalidArtifact`` if the bytes are not a WebAssembly component
        of the processor world, ``ArtifactError`` if they do not hash to ``sha256``.
        """
        sha256 = sha256.lower()
        with self._load_lock:
            loaded = self._loaded.get(sha256)
            if loaded is not None:
                return loaded
            # The cache is keyed by the hash: trusting a wrong one would run the
            # wrong code from the cache. Hashing is cheap next to compiling.
            actual = hashlib.sha256(wasm).hexdigest()
            if actual != sha256:
                raise ArtifactError(f"component bytes hash to {actual}, expected {sha256}")
            _check_header(wasm)
            component, from_cache = self._compile_or_deserialize(sha256, wasm)
            loaded = _describe(self.engine, sha256, component, from_cache)
            self._loaded[sha256] = loaded
            return loaded

    def _compile_or_deserialize(self, sha256: str, wasm: bytes) -> tuple[wc.Component, bool]:
        path = self.cache_path(sha256)
        if path is not None and path.exists():
            try:
                # Read, don't mmap (deserialize_file): a component mapped from the
                # file would fault (SIGBUS) if anyone truncated or rewrote the file
                # in place while it is alive. The copy costs milliseconds.
                component = wc.Component.deserialize(self.engine, path.read_bytes())
                self.deserialized += 1
                return component, True
            except (OSError, wasmtime.WasmtimeError) as e:
                # Corrupt, truncated, or written by another wasmtime/config: rebuild it.
                log.warning("compiled cache %s is unusable (%s); recompiling", path, _first_line(str(e)))
        try:
            component = wc.Component(self.engine, wasm)
        except wasmtime.WasmtimeError as e:
            raise InvalidArtifact(f"not a valid WebAssembly component: {_cause(str(e))}") from None
        self.compiled += 1
        if path is not None:
            self._write_cache(path, component)
        return component, False

    def _write_cache(self, path: Path, component: wc.Component) -> None:
        # tmp file + rename in the same directory: a concurrent reader (or a node
        # that crashed mid-write) never sees half a file under the final name.
        try:
            data = component.serialize()
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, wasmtime.WasmtimeError) as e:
            # The cache only saves time; a node with a full disk still runs.
            log.warning("could not write compiled cache %s: %s", path, e)

    def close(self) -> None:
        """Stop the epoch ticker. Close the processors first: after this, calls
        can no longer be interrupted."""
        self._stop.set()
        if self._ticker.is_alive() and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=1.0)

    def __enter__(self) -> WasmEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Sink:
    """Where the host collector puts what the guest emits.

    The host closures capture this small object rather than the processor: the
    linker keeps its closures in a global table until the linker is freed, and a
    closure holding the processor would keep the processor alive via a cycle.
    """

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = Emitted()


class WasmProcessor:
    """One instance of a component, owned by one partition worker."""

    def __init__(
        self,
        engine: WasmEngine,
        component: LoadedComponent,
        init_config: dict[str, str],
        *,
        function_name: str,
        call_timeout_s: float = 5.0,
    ) -> None:
        if call_timeout_s <= 0:
            raise ValueError(f"call_timeout_s must be > 0, got {call_timeout_s}")
        self.function_name = function_name
        self.call_timeout_s = call_timeout_s
        self._component = component
        self._ticks = engine.deadline_ticks(call_timeout_s)
        self._broken = False
        self._closed = False
        self._sink = sink = _Sink()

        self._store: wasmtime.Store | None = wasmtime.Store(engine.engine)
        store = self._store
        linker = wc.Linker(engine.engine)
        if component.needs_wasi:
            # Guests built with componentize-py or the WASI adapter import
            # wasi:cli & co. even if they never use them; print() reaches our stdio.
            linker.add_wasip2()
            wasi = wasmtime.WasiConfig()
            wasi.inherit_stdout()
            wasi.inherit_stderr()
            store.set_wasi(wasi)
        with linker.root() as root:
            if COLLECTOR in component.imports:

                def emit(_store: Any, target_id: int, data: bytes) -> None:
                    sink.out.records.append((target_id, data))

                def emit_watermark(_store: Any, target_id: int, watermark: int) -> None:
                    sink.out.watermarks.append((target_id, watermark))

                with root.add_instance(COLLECTOR) as collector:
                    collector.add_func("emit", emit)
                    collector.add_func("emit-watermark", emit_watermark)
            # Anything else the component imports that we do not provide (kv, for
            # now) traps only if called. Not `define_unknown_imports_as_traps`:
            # it defines `wasi:x@0.2.0` stubs that shadow add_wasip2's newer,
            # semver-compatible 0.2.x definitions, breaking WASI guests.
            for name, ext in component.component.type.imports(engine.engine).items():
                if name != COLLECTOR and not name.startswith("wasi:"):
                    _stub(root, name, ext.ty, engine.engine, name)
        self._linker: wc.Linker | None = linker

        store.set_epoch_deadline(self._ticks)  # instantiation may run start functions
        try:
            instance = linker.instantiate(store, component.component)
        except wasmtime.WasmtimeError as e:
            self._drop()
            msg = _cause(str(e))
            if _INTERRUPT in str(e):
                raise GuestTimeout(f"function {function_name!r} ran past its {call_timeout_s} s budget while instantiating") from None
            if "trap" in str(e):
                raise GuestError(f"function {function_name!r} trapped while instantiating: {msg}") from None
            raise InvalidArtifact(f"function {function_name!r}: component cannot be linked: {msg}") from None

        def get(name: str) -> wc.Func | None:
            return instance.get_func(store, name) if name in component.exports else None

        fs_process = get("fs-process")
        assert fs_process is not None  # _describe() refused components without it
        self._fs_process: wc.Func = fs_process
        self._fs_close = get("fs-close")
        fs_init = get("fs-init")
        if fs_init is not None:
            config = [(str(k), str(v)) for k, v in init_config.items()]
            try:
                self._call("fs-init", fs_init, config)
            except GuestError:
                self._drop()
                raise
        # Whatever fs-init emitted stays in the sink and goes out with the first
        # process() result: dropping it silently would lose records.

    @property
    def broken(self) -> bool:
        """True after a trap or a timeout: wasmtime refuses further calls."""
        return self._broken

    def process(self, source_id: int, data: bytes | bytearray | memoryview) -> Emitted:
        # wasmtime-py accepts only `bytes` for list<u8>, not bytearray/memoryview.
        if type(data) is not bytes:
            data = bytes(data)
        self._call("fs-process", self._fs_process, source_id, data)
        out = self._sink.out
        self._sink.out = Emitted()
        return out

    def _call(self, export: str, func: wc.Func, *args: Any) -> Any:
        if self._closed:
            raise GuestError(f"function {self.function_name!r}: instance is closed")
        if self._broken:
            raise GuestError(f"function {self.function_name!r}: instance is broken after a previous trap; restart it")
        store = self._store
        assert store is not None
        store.set_epoch_deadline(self._ticks)
        try:
            return func(store, *args)
        except Exception as e:
            # Any failure once wasm was entered leaves the instance poisoned
            # (wasmtime refuses to re-enter it), so never call it again.
            self._broken = True
            text = str(e)
            if isinstance(e, wasmtime.WasmtimeError) and _INTERRUPT in text:
                raise GuestTimeout(
                    f"function {self.function_name!r} ran past its {self.call_timeout_s} s budget in {export}"
                ) from None
            if isinstance(e, wasmtime.WasmtimeError):
                raise GuestError(f"function {self.function_name!r} trapped in {export}: {_cause(text)}\n{text}") from None
            raise GuestError(f"function {self.function_name!r} failed in {export}: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        """Call fs-close if exported (a failure there is logged, not raised), then free the instance."""
        if self._closed:
            return
        try:
            if self._fs_close is not None and not self._broken:
                try:
                    self._call("fs-close", self._fs_close)
                except GuestError as e:
                    log.warning("%s", e)
                if self._sink.out.records or self._sink.out.watermarks:
                    # close() has nowhere to hand them: the worker is going away.
                    log.debug("function %r: dropping output emitted in fs-close", self.function_name)
        finally:
            self._drop()

    def _drop(self) -> None:
        self._closed = True
        # Free the guest's memory now rather than whenever the GC gets to it.
        if self._store is not None:
            self._store.close()
            self._store = None
        self._linker = None

    def __enter__(self) -> WasmProcessor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- helpers ------------------------------------------------------------------


class _NotProvided(Exception):
    """Raised by a stub for an import this host does not implement (yet)."""


def _stub(parent: wc.LinkerInstance, name: str, item: Any, engine: wasmtime.Engine, where: str) -> None:
    """Define import ``name`` so that instantiation succeeds and only a call fails."""
    if isinstance(item, wc.FuncType):

        def trap(_store: Any, *_args: Any) -> None:
            raise _NotProvided(f"{where} is not provided by this host")

        parent.add_func(name, trap)
    elif isinstance(item, wc.ResourceType):
        # A distinct host type per resource, so the guest's distinct types stay distinct.
        parent.add_resource(name, wc.ResourceType.host(next(_stub_resource_ids)), lambda _store, _rep: None)
    elif isinstance(item, wc.ComponentInstanceType):
        with parent.add_instance(name) as instance:
            for export, ext in item.exports(engine).items():
                _stub(instance, export, ext.ty, engine, f"{where}#{export}")
    # Value types need no definition; a module or component import cannot be
    # stubbed and makes instantiation fail with a message naming it.


_stub_resource_ids = itertools.count(1 << 32)


def _check_header(wasm: bytes) -> None:
    if wasm[:4] != _WASM_MAGIC or len(wasm) < 8:
        raise InvalidArtifact("not a WebAssembly binary (it does not start with \\0asm)")
    if wasm[4:8] == _CORE_MODULE_VERSION:
        raise InvalidArtifact(
            "this is a core WebAssembly module, not a component; "
            "make a component of it (e.g. `wasm-tools component new`) for the functionstream:core processor world"
        )


def _describe(engine: wasmtime.Engine, sha256: str, component: wc.Component, from_cache: bool) -> LoadedComponent:
    ty = component.type
    import_types = ty.imports(engine)
    imports = frozenset(import_types)
    if COLLECTOR in import_types:
        collector = import_types[COLLECTOR].ty
        if not isinstance(collector, wc.ComponentInstanceType):
            raise InvalidArtifact(f"import {COLLECTOR} is a {type(collector).__name__}, not an interface instance")
        for name, ext in collector.exports(engine).items():
            expected = COLLECTOR_FUNCS.get(name)
            if expected is None:
                raise InvalidArtifact(f"import {COLLECTOR} asks for {name!r}, which the interface does not have")
            item = ext.ty
            got = _wit_func(item) if isinstance(item, wc.FuncType) else type(item).__name__
            if got != expected:
                raise InvalidArtifact(f"import {COLLECTOR}#{name} has type {got}, but the interface says {expected}")
    exports: set[str] = set()
    for name, ext in ty.exports(engine).items():
        expected = PROCESSOR_EXPORTS.get(name)
        if expected is None:
            continue  # extra exports are none of our business
        item = ext.ty
        got = _wit_func(item) if isinstance(item, wc.FuncType) else type(item).__name__
        if got != expected:
            raise InvalidArtifact(f"export {name} has type {got}, but the processor world says {expected}")
        exports.add(name)
    if "fs-process" not in exports:
        raise InvalidArtifact(
            "component does not export fs-process: func(source-id: u32, data: list<u8>); "
            f"its exports are: {', '.join(sorted(ty.exports(engine))) or 'none'}"
        )
    return LoadedComponent(sha256, component, frozenset(exports), imports, from_cache)


_PRIMITIVES: dict[type, str] = {
    wc.Bool: "bool", wc.U8: "u8", wc.U16: "u16", wc.U32: "u32", wc.U64: "u64",
    wc.S8: "s8", wc.S16: "s16", wc.S32: "s32", wc.S64: "s64",
    wc.F32: "f32", wc.F64: "f64", wc.Char: "char", wc.String: "string",
}  # fmt: skip


def _wit(ty: Any) -> str:
    """Render a component value type the way WIT writes it (enough for the processor world)."""
    name = _PRIMITIVES.get(type(ty))
    if name is not None:
        return name
    if isinstance(ty, wc.ListType):
        return f"list<{_wit(ty.element)}>"
    if isinstance(ty, wc.TupleType):
        return f"tuple<{', '.join(_wit(t) for t in ty.elements)}>"
    if isinstance(ty, wc.OptionType):
        return f"option<{_wit(ty.payload)}>"
    if isinstance(ty, wc.ResultType):
        ok = _wit(ty.ok) if ty.ok is not None else "_"
        return f"result<{ok}, {_wit(ty.err)}>" if ty.err is not None else f"result<{ok}>"
    return type(ty).__name__.removesuffix("Type").lower()


def _wit_func(fty: wc.FuncType) -> str:
    params = ", ".join(_wit(t) for _name, t in fty.params)
    result = fty.result
    return f"func({params})" + (f" -> {_wit(result)}" if result is not None else "")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _cause(text: str) -> str:
    """wasmtime errors read "error while executing at wasm backtrace: ... Caused by: X";
    X is what a user wants to see first."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if "Caused by:" in lines:
        rest = [line for line in lines[lines.index("Caused by:") + 1 :] if line]
        if rest:
            # Nested causes are numbered "0: ...", "1: ..."; keep them on one line.
            return "; ".join(r.split(": ", 1)[1] if r[:1].isdigit() and ": " in r else r for r in rest)
    return _first_line(text)

