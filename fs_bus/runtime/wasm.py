"""The wasmtime host for WebAssembly components of the ``functionstream:core@0.1.0``
``processor`` world (see ``wit/processor.wit``) and of fs-bus's own
``fs-bus:batch@0.1.0`` ``fast-processor`` world (``wit/fs-bus/batch.wit``).

One :class:`WasmEngine` per node compiles components (and caches the compiled form
on disk); one :class:`WasmProcessor` per partition worker owns a Store and an
instance, so state never leaks between partitions and no Store is ever shared
between threads. The guest's ``functionstream:core/kv`` calls are served from the
processor's :class:`~fs_bus.state.backend.StateBackend` (the partition's state)
through :mod:`fs_bus.state.kv`; WASI guests get ``wasi:cli`` & co. with nothing
granted unless :class:`WasiGrants` says so, their stdout and stderr going to a log.

Facts about wasmtime-py 50 this module relies on (probed, see DESIGN.md):

- ``list<u8>`` parameters must be ``bytes`` exactly (``bytearray`` and
  ``memoryview`` raise ``TypeError``); ``list<u8>`` values reaching a host
  function arrive as ``bytes``. Stock wasmtime-py converts them one element at a
  time (~1.5 µs a byte); :mod:`fs_bus.runtime.wasm_bytes` makes that bulk copies.
- A component exporting ``fs-bus:batch/batch@0.1.0`` (``wit/fs-bus/batch.wit``)
  gets its records a batch per call, as bytes in a file of a preopened tmpfs
  directory (framing: :mod:`fs_bus.runtime.framing`): no component values at all.
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
- Resources: ``add_resource(name, ResourceType.host(id), dtor)``; a constructor
  returns ``ResourceHost.own(rep, id)``; a method gets its ``self`` as a borrowed
  ``ResourceAny`` and must call ``.to_host(store)`` on it (which gives ``.rep``):
  a borrow left untouched fails the guest's call with "borrow handles still
  remain at the end of the call". ``dtor(store, rep)`` runs when the guest drops
  its handle.
- A ``record`` reaches a host function as a ``wasmtime.component.Record`` whose
  attributes carry the WIT field names, dashes included (``getattr(r, "user-key")``).
- ``result``/``option`` cross as plain values (None, the payload), a variant with
  payloads as ``Variant(tag, payload)``. But an error cannot be returned from a
  function whose result is ``result<option<T>, E>``: wasmtime-py tries the ``ok``
  case first, and an ``option``'s ``none`` case claims every Python object, so
  lowering fails ("value not valid for this variant") and the guest traps.
  :class:`_Err` and :func:`_lower_result` make the err case explicit.
- WASI output: ``WasiConfig.stdout_custom``/``stderr_custom`` callbacks run on a
  wasmtime worker thread (before the guest's blocking write returns), cost about
  0.5 ms per write, and make that thread panic at interpreter exit if a Store
  holding one is still alive; ``stdout_file`` opens its file at once. See
  :class:`_GuestOutput` for what we do instead.

The ``fs-exec: func(payload: list<u8>)`` form of the reference world gets the class
name and modules as UTF-8 JSON: ``{"class-name": str, "modules": [[name,
base64(bytes)], ...]}``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import itertools
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component as wc

from fs_bus.errors import ArtifactError, GuestError, GuestTimeout, InvalidArtifact
from fs_bus.errors import BatchFailed
from fs_bus.runtime.base import Emitted, process_one_by_one
from fs_bus.runtime.framing import InputRecord, Record, decode_output, encode_input
from fs_bus.state.backend import MemoryBackend, StateBackend, StateError
from fs_bus.state.kv import ComplexKey, KvIterator, KvStore

try:
    from fs_bus import _native  # type: ignore[attr-defined]
    _NATIVE_MISSING = ""
except ImportError as exc:  # not built on this machine: the wasmtime-py host runs instead
    _native = None
    _NATIVE_MISSING = str(exc)

log = logging.getLogger(__name__)

HOSTS = ("native", "python")

COLLECTOR = "functionstream:core/collector@0.1.0"
KV = "functionstream:core/kv@0.1.0"
# fs-bus's extension world (wit/fs-bus/batch.wit): batches of records as bytes
# through two files in a directory preopened for the guest as BATCH_DIR.
BATCH = "fs-bus:batch/batch@0.1.0"
BATCH_FUNCS: dict[str, str] = {"process-batch": "func(u32, u64) -> u64"}
BATCH_DIR = "/fs-bus"

# The processor world's exports, as WIT parameter/result types (names left out:
# we call positionally, and toolchains are free to rename parameters).
# The reference world was published in two versions that differ in two exports;
# both are accepted (the first form is the one in wit/processor.wit).
PROCESSOR_EXPORTS: dict[str, tuple[str, ...]] = {
    "fs-init": ("func(list<tuple<string, string>>)",),
    "fs-process": ("func(u32, list<u8>)",),
    "fs-process-watermark": ("func(u32, u64)",),
    "fs-take-checkpoint": ("func(u64)", "func(u64) -> list<u8>"),
    "fs-check-heartbeat": ("func() -> bool",),
    "fs-close": ("func()",),
    "fs-exec": ("func(string, list<tuple<string, list<u8>>>)", "func(list<u8>)"),
    "fs-custom": ("func(list<u8>) -> list<u8>",),
}

# The host functions we define are untyped (wasmtime-py's add_func): wasmtime
# would link a guest whose `emit` takes a string and hand us a str. So the
# collector import is checked against the WIT at load time.
COLLECTOR_FUNCS: dict[str, str] = {
    "emit": "func(u32, list<u8>)",
    "emit-watermark": "func(u32, u64)",
}

# The same check for kv. Resources render as own/borrow (their names are not
# visible through wasmtime-py's types), records and variants structurally.
_KV_ERROR = "variant{not-found, io-error(string), other(string)}"
_KV_KEY = "record{key-group: list<u8>, key: list<u8>, namespace: list<u8>, user-key: list<u8>}"
KV_FUNCS: dict[str, str] = {
    "[constructor]store": "func(string) -> own",
    "[method]store.put-state": f"func(borrow, list<u8>, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.get-state": f"func(borrow, list<u8>) -> result<option<list<u8>>, {_KV_ERROR}>",
    "[method]store.delete-state": f"func(borrow, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.list-states": f"func(borrow, list<u8>, list<u8>) -> result<list<list<u8>>, {_KV_ERROR}>",
    "[method]store.put": f"func(borrow, {_KV_KEY}, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.get": f"func(borrow, {_KV_KEY}) -> result<option<list<u8>>, {_KV_ERROR}>",
    "[method]store.delete": f"func(borrow, {_KV_KEY}) -> result<_, {_KV_ERROR}>",
    "[method]store.merge": f"func(borrow, {_KV_KEY}, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.delete-prefix": f"func(borrow, {_KV_KEY}) -> result<_, {_KV_ERROR}>",
    "[method]store.list-complex": (
        f"func(borrow, list<u8>, list<u8>, list<u8>, list<u8>, list<u8>) -> result<list<list<u8>>, {_KV_ERROR}>"
    ),
    "[method]store.scan-complex": f"func(borrow, list<u8>, list<u8>, list<u8>) -> result<own, {_KV_ERROR}>",
    "[method]iterator.has-next": f"func(borrow) -> result<bool, {_KV_ERROR}>",
    "[method]iterator.next": f"func(borrow) -> result<option<tuple<list<u8>, list<u8>>>, {_KV_ERROR}>",
}
KV_TYPES = frozenset({"store", "iterator", "error", "complex-key"})

# Host resource type ids, distinct from the ids _stub() hands out.
_STORE_TYPE = 0x6B76_0001
_ITERATOR_TYPE = 0x6B76_0002
_STUB_TYPE_BASE = 0x7300_0000

WASMTIME_VERSION = importlib.metadata.version("wasmtime")

_WASM_MAGIC = b"\0asm"
_CORE_MODULE_VERSION = b"\x01\x00\x00\x00"  # a component's layer/version differs
_INTERRUPT = "wasm trap: interrupt"  # wasmtime's message for an epoch deadline


@dataclass(frozen=True, slots=True)
class LoadedComponent:
    """A compiled component plus what the host needs to know before instantiating it."""

    sha256: str
    component: wc.Component
    exports: frozenset[str]  # the processor-world exports it has (fs-process, or BATCH, always)
    imports: frozenset[str]  # every import name, e.g. "functionstream:core/collector@0.1.0"
    from_cache: bool  # deserialized from the on-disk compiled cache, not compiled
    # export name -> its WIT signature, for exports that have two published forms
    export_types: Mapping[str, str] = field(default_factory=dict)
    native: bool = False  # compiled by the native host (``component`` is a NativeComponent)

    @property
    def needs_wasi(self) -> bool:
        return any(name.startswith("wasi:") for name in self.imports)

    @property
    def fast(self) -> bool:
        """It exports fs-bus's batch interface: records cross as bytes, a batch per call."""
        return BATCH in self.exports


@dataclass(slots=True)
class WasiGrants:
    """What a WASI guest may reach beyond clocks, random numbers and the stdout
    and stderr that the host captures into the function's log. Nothing by default:
    no arguments, no stdin, no environment, no filesystem, no network.

    ``env``: environment variables the guest sees.
    ``preopens``: ``(host_path, guest_path)`` directories the guest may read and write.

    There is no network grant: wasmtime-py 50's ``WasiConfig`` has no switch
    for wasi:sockets, and the C API's ``wasi_config_inherit_network`` does not
    reach a component's wasip2 context (a guest's connect to a loopback
    listener still gets ``access-denied`` with it), so sockets stay refused.
    """

    env: dict[str, str] = field(default_factory=dict)
    preopens: list[tuple[str, str]] = field(default_factory=list)
    # Guest paths among ``preopens`` that the guest may read but not change.
    read_only: frozenset[str] = frozenset()

    def config(self) -> wasmtime.WasiConfig:
        """A WasiConfig granting exactly this."""
        wasi = wasmtime.WasiConfig()
        if self.env:
            wasi.env = [(str(k), str(v)) for k, v in self.env.items()]
        for host_path, guest_path in self.preopens:
            if not Path(host_path).is_dir():
                raise ValueError(f"WASI preopen {str(host_path)!r} is not a directory")
            wasi.preopen_dir(str(host_path), str(guest_path), fs_mutable=guest_path not in self.read_only)
        return wasi


def wasm_host(requested: str | None = None) -> str:
    """Which host runs components: ``native`` (the ``fs_bus._native`` extension,
    built from ``native/`` at install) or ``python`` (wasmtime-py). ``requested``,
    else ``$FS_BUS_WASM_HOST``, else ``auto``: native when the extension is there."""
    choice = (requested or os.environ.get("FS_BUS_WASM_HOST") or "auto").strip().lower()
    if choice not in HOSTS and choice != "auto":
        raise ValueError(f"FS_BUS_WASM_HOST={choice!r}: expected one of auto, {', '.join(HOSTS)}")
    if choice == "python":
        return "python"
    if _native is not None:
        return "native"
    if choice == "native":
        raise RuntimeError(
            f"the native WebAssembly host (fs_bus._native) is not built: {_NATIVE_MISSING}; "
            "reinstall with a Rust toolchain on PATH (`pip install -e .`), or set FS_BUS_WASM_HOST=python"
        )
    return "python"


class WasmEngine:
    """One per node: the wasmtime Engine, its epoch ticker and the component cache.

    ``host`` (see :func:`wasm_host`) picks the native host or wasmtime-py; both run
    the same components with the same semantics, the native one about 10-100x
    faster per record and per kv call.

    ``cache_dir`` (optional) holds compiled components as
    ``<sha256>-wasmtime<version>.cwasm`` (``-native-wasmtime<version>`` for the
    native host): compiling a 20 MB component takes seconds, deserializing it a
    tenth of a second.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, *, tick_s: float = 0.05,
                 host: str | None = None) -> None:
        if tick_s <= 0:
            raise ValueError(f"tick_s must be > 0, got {tick_s}")
        self.host = wasm_host(host)
        self.native: Any = None
        if self.host == "native":
            # Its own engine and ticker thread; wasmtime-py stays untouched.
            self.native = _native.NativeEngine(tick_s)
            self.engine = None
        else:
            _patch_wasmtime_py()
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
        if self.engine is not None:  # the native engine ticks on a thread of its own
            self._ticker.start()

    def describe_host(self) -> str:
        """Which host runs components here, for the node's log and ``fs-bus --version``-like reports."""
        if self.native is not None:
            return f"native (the wasmtime {_native.WASMTIME_VERSION} crate, fs_bus._native)"
        why = f"; the native host is not built: {_NATIVE_MISSING}" if _NATIVE_MISSING else " (FS_BUS_WASM_HOST=python)"
        return f"python (wasmtime-py {WASMTIME_VERSION}){why}"

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
        if self.native is not None:
            return self.cache_dir / f"{sha256}-native-wasmtime{_native.WASMTIME_VERSION}.cwasm"
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
            if self.native is not None:
                loaded = _describe(sha256, component, component.describe(), from_cache, native=True)
            else:
                loaded = _describe(sha256, component, _view(self.engine, component), from_cache)
            self._loaded[sha256] = loaded
            return loaded

    def _compile_or_deserialize(self, sha256: str, wasm: bytes) -> tuple[wc.Component, bool]:
        path = self.cache_path(sha256)
        if path is not None and path.exists():
            try:
                # Read, don't mmap (deserialize_file): a component mapped from the
                # file would fault (SIGBUS) if anyone truncated or rewrote the file
                # in place while it is alive. The copy costs milliseconds.
                data = _verified(path.read_bytes())
                if self.native is not None:
                    component = self.native.deserialize(data)
                else:
                    component = wc.Component.deserialize(self.engine, data)
                self.deserialized += 1
                return component, True
            except (OSError, ValueError, wasmtime.WasmtimeError) as e:
                # Corrupt, truncated, or written by another wasmtime/config: rebuild it.
                log.warning("compiled cache %s is unusable (%s); recompiling", path, _first_line(str(e)))
        try:
            component = self.native.compile(wasm) if self.native is not None else wc.Component(self.engine, wasm)
        except (ValueError, wasmtime.WasmtimeError) as e:
            raise InvalidArtifact(f"not a valid WebAssembly component: {_cause(str(e))}") from None
        self.compiled += 1
        if path is not None:
            self._write_cache(path, component)
        return component, False

    def _write_cache(self, path: Path, component: wc.Component) -> None:
        # tmp file + rename in the same directory: a concurrent reader (or a node
        # that crashed mid-write) never sees half a file under the final name.
        try:
            data = _sealed(component.serialize())
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, ValueError, wasmtime.WasmtimeError) as e:
            # The cache only saves time; a node with a full disk still runs.
            log.warning("could not write compiled cache %s: %s", path, e)

    def close(self) -> None:
        """Stop the epoch ticker. Close the processors first: after this, calls
        can no longer be interrupted."""
        self._stop.set()
        if self.native is not None:
            self.native.close()
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


class _Err:
    """The err case of a ``result``, made explicit for :func:`_lower_result`."""

    __slots__ = ("payload",)

    def __init__(self, payload: Any) -> None:
        self.payload = payload


class _ErrCaseOnly:
    """Looks like a ``ResultType`` whose only case is ``err``, so that
    wasmtime-py's own ``ResultType.convert_to_c`` lowers an error without first
    trying (and wrongly taking) the ``ok`` case."""

    _lower = wc.ResultType._lower

    def __init__(self, err: Any) -> None:
        self._err = err

    def _cases(self) -> list[tuple[str, Any]]:
        return [("err", self._err)]

    def _tagged(self) -> bool:
        return False


_stock_result_to_c = wc.ResultType.convert_to_c


def _lower_result(self: wc.ResultType, store: Any, val: Any, ptr: Any) -> None:
    if isinstance(val, _Err):
        return _stock_result_to_c(_ErrCaseOnly(self.err), store, val.payload, ptr)  # type: ignore[arg-type]
    return _stock_result_to_c(self, store, val, ptr)


_patched = False
wasm_bytes: Any = None  # fs_bus.runtime.wasm_bytes, once the wasmtime-py host is used


def _patch_wasmtime_py() -> None:
    """What the wasmtime-py host needs of wasmtime-py, installed when the first
    engine of that host is made (never on the native host's road): lowering an
    explicit err case (values other than _Err lower exactly as before, so nothing
    else in the process notices; see the module docstring for the bug), and
    ``list<u8>`` by bulk copies rather than element by element (see wasm_bytes)."""
    global _patched, wasm_bytes
    if _patched:
        return
    # wasm_bytes reaches into wasmtime-py's private modules: loaded for this host only.
    from fs_bus.runtime import wasm_bytes

    wc.ResultType.convert_to_c = _lower_result  # type: ignore[method-assign]
    wasm_bytes.install()
    _patched = True


def _kv_error(e: Exception) -> wc.Variant:
    """The world's ``error`` variant for a failure of a kv call."""
    if isinstance(e, (StateError, OSError)):
        return wc.Variant("io-error", str(e))
    return wc.Variant("other", f"{type(e).__name__}: {e}")


def _complex_key(record: Any) -> ComplexKey:
    # wasmtime-py names a Record's attributes after the WIT fields, dashes and all.
    return ComplexKey(
        getattr(record, "key-group"), record.key, record.namespace, getattr(record, "user-key")
    )


class _KvHost:
    """The host side of ``functionstream:core/kv`` for one processor.

    Guest handles are small integers ("reps") into two tables; wasmtime runs
    the resource destructor when the guest drops a handle, and the table entry
    goes with it. One :class:`KvStore` per store name, shared by every handle
    opened with that name, so an open iterator sees the writes of any of them.
    """

    __slots__ = ("backend", "stores", "store_handles", "iterators", "_reps")

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend
        self.stores: dict[str, KvStore] = {}
        self.store_handles: dict[int, KvStore] = {}
        self.iterators: dict[int, KvIterator] = {}
        self._reps = itertools.count(1)

    def _new_rep(self, table: Mapping[int, Any]) -> int:
        while True:  # reps are u32: wrap around, skipping 0 and live handles
            rep = next(self._reps) & 0xFFFF_FFFF
            if rep and rep not in table:
                return rep

    def define(self, kv: wc.LinkerInstance) -> None:
        stores, iterators = self.store_handles, self.iterators

        # Destructors: wasmtime calls them when the guest drops its handle.
        def drop_store(_store: Any, rep: int) -> None:
            stores.pop(rep, None)

        def drop_iterator(_store: Any, rep: int) -> None:
            iterators.pop(rep, None)

        kv.add_resource("store", wc.ResourceType.host(_STORE_TYPE), drop_store)
        kv.add_resource("iterator", wc.ResourceType.host(_ITERATOR_TYPE), drop_iterator)

        def new_store(_store: Any, name: str) -> wc.ResourceHost:
            kv_store = self.stores.get(name)
            if kv_store is None:
                kv_store = self.stores[name] = KvStore(self.backend, name)
            rep = self._new_rep(stores)
            stores[rep] = kv_store
            return wc.ResourceHost.own(rep, _STORE_TYPE)

        kv.add_func("[constructor]store", new_store)

        def scan_complex(s: KvStore, key_group: bytes, key: bytes, namespace: bytes) -> wc.ResourceHost:
            rep = self._new_rep(iterators)
            iterators[rep] = s.scan_complex(key_group, key, namespace)
            return wc.ResourceHost.own(rep, _ITERATOR_TYPE)

        store_methods: dict[str, Callable[..., Any]] = {
            "put-state": KvStore.put_state,
            "get-state": KvStore.get_state,
            "delete-state": KvStore.delete_state,
            "list-states": KvStore.list_states,
            "put": lambda s, k, v: s.put(_complex_key(k), v),
            "get": lambda s, k: s.get(_complex_key(k)),
            "delete": lambda s, k: s.delete(_complex_key(k)),
            "merge": lambda s, k, v: s.merge(_complex_key(k), v),
            "delete-prefix": lambda s, k: s.delete_prefix(_complex_key(k)),
            "list-complex": KvStore.list_complex,
            "scan-complex": scan_complex,
        }
        for name, op in store_methods.items():
            kv.add_func(f"[method]store.{name}", _kv_method(stores, "store", op))
        kv.add_func("[method]iterator.has-next", _kv_method(iterators, "iterator", KvIterator.has_next))
        kv.add_func("[method]iterator.next", _kv_method(iterators, "iterator", KvIterator.next))


def _kv_method(table: Mapping[int, Any], kind: str, op: Callable[..., Any]) -> Callable[..., Any]:
    """A host function for a kv method: find ``self`` and run ``op`` on it; a
    failure becomes the world's ``error`` variant, never a trap."""

    def call(store: Any, this: wc.ResourceAny, *args: Any) -> Any:
        # to_host also ends the borrow; wasmtime fails the call if one is left.
        rep = this.to_host(store).rep
        obj = table.get(rep)
        if obj is None:
            return _Err(wc.Variant("other", f"{kind} handle {rep} is not open"))
        try:
            return op(obj, *args)
        except Exception as e:
            if not isinstance(e, StateError):
                log.warning("kv %s call failed: %s: %s", kind, type(e).__name__, e)
            return _Err(_kv_error(e))

    return call


def _output_dir() -> str | None:
    # tmpfs when there is one: guest output then never touches a disk.
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class _GuestOutput:
    """The guest's stdout and stderr, one log record per line.

    Each stream is a temporary file that wasmtime writes natively and that we
    read (from where we stopped) after every export call: an ``fstat`` per stream
    and call when the guest printed nothing. The files are unlinked as soon as
    both sides hold them open, so nothing is left behind, and once more than
    ``compact_at`` bytes were read the file is truncated: wasmtime goes on writing
    at its own offset, so the space before it becomes a hole that takes no room
    (the logical size grows, the space used does not).

    Why not ``WasiConfig.stdout_custom``: its callback runs on a wasmtime worker
    thread, costs about 0.5 ms per write (a thread hop and a fresh Python thread
    state each time; measured: a 60-byte print() went from ~0.1 ms to ~0.6 ms),
    and a Store still holding one when the interpreter exits makes that thread
    panic at shutdown.

    The lines of one call are logged when the call returns, stdout's before
    stderr's; a last line without its newline is logged then too. (wasi-libc,
    hence print(), uses blocking writes, which are in the file when the call
    returns; a non-blocking write still in flight then is read at the next call.)
    """

    LEVELS = {"stdout": logging.INFO, "stderr": logging.WARNING}

    def __init__(
        self, logger: logging.Logger, function_name: str, *, max_line: int = 64 * 1024, compact_at: int = 1 << 20
    ) -> None:
        self.logger = logger
        self.function_name = function_name
        self.max_line = max_line
        self.compact_at = compact_at
        self._fds: dict[str, int] = {}
        self._offsets: dict[str, int] = {}

    def attach(self, wasi: wasmtime.WasiConfig) -> None:
        """Send ``wasi``'s stdout and stderr to this object."""
        for stream in ("stdout", "stderr"):
            fd, path = tempfile.mkstemp(prefix=f"fs-bus-guest-{stream}-", dir=_output_dir())
            try:
                if stream == "stdout":
                    wasi.stdout_file = path  # wasmtime opens it right here
                else:
                    wasi.stderr_file = path
            except BaseException:
                os.close(fd)
                raise
            finally:
                os.unlink(path)
            self._fds[stream] = fd
            self._offsets[stream] = 0

    def flush(self) -> None:
        """Log whatever the guest wrote since the last flush."""
        for stream, fd in self._fds.items():
            offset = self._offsets[stream]
            size = os.fstat(fd).st_size
            if size <= offset:
                continue
            data = os.pread(fd, size - offset, offset)
            self._offsets[stream] = offset + len(data)
            if self._offsets[stream] >= self.compact_at:
                os.ftruncate(fd, 0)
            self.write(stream, data)

    def write(self, stream: str, data: bytes) -> None:
        """Log ``data`` that the guest wrote to ``stream``, a record per line."""
        if not data:
            return
        for line in data.removesuffix(b"\n").split(b"\n"):
            for i in range(0, max(len(line), 1), self.max_line):
                self._emit(stream, line[i : i + self.max_line])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def _emit(self, stream: str, line: bytes) -> None:
        text = line.decode("utf-8", "replace").removesuffix("\r")
        self.logger.log(
            self.LEVELS[stream],
            "%s: %s",
            stream,
            text,
            extra={"function_name": self.function_name, "guest_stream": stream},
        )


class _BatchFiles:
    """The two files of the fast path, in a directory of their own that the guest
    sees as ``/fs-bus`` (wit/fs-bus/batch.wit): ``in`` (the host writes an input
    batch, the guest reads it) and ``out`` (the other way round).

    On tmpfs when there is one, so a batch never touches a disk. Both files stay
    open for the processor's life: a batch costs one ``pwrite`` and one ``pread``
    here, and the guest's reads and writes are served by wasmtime natively. Sizes
    travel with the call, so neither file is ever truncated.
    """

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="fs-bus-batch-", dir=_output_dir())
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self.in_fd = os.open(os.path.join(self.dir, "in"), flags, 0o600)
        self.out_fd = os.open(os.path.join(self.dir, "out"), flags, 0o600)

    def close(self) -> None:
        for fd in (self.in_fd, self.out_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        for name in ("in", "out"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError as e:
            log.debug("cannot remove %s: %s", self.dir, e)


class WasmProcessor:
    """One instance of a component, owned by one partition worker.

    ``WasmProcessor(engine, component, ...)`` gives the instance of the host that
    compiled ``component`` (like ``pathlib.Path`` giving a ``PosixPath``): a
    :class:`~fs_bus.runtime.wasm_native.NativeWasmProcessor` or a
    :class:`PyWasmProcessor`, with the same methods and the same semantics.

    ``state``: the partition's state back end, which the guest reaches through
    ``functionstream:core/kv`` (a fresh :class:`MemoryBackend` if None). The
    processor checkpoints it in :meth:`take_checkpoint`; it closes a backend it
    made itself, never one it was given (the partition worker owns that).
    ``log``: where the guest's stdout (INFO) and stderr (WARNING) lines go
    (default: logger ``fs_bus.guest.<function_name>``).
    ``wasi``: what a WASI guest may reach (default: nothing, see :class:`WasiGrants`).
    """

    _broken: bool
    _component: LoadedComponent

    def __new__(cls, engine: WasmEngine, component: LoadedComponent, *args: Any, **kwargs: Any) -> WasmProcessor:
        if cls is WasmProcessor:
            if component.native:
                from fs_bus.runtime.wasm_native import NativeWasmProcessor

                cls = NativeWasmProcessor
            else:
                cls = PyWasmProcessor
        return object.__new__(cls)

    @property
    def broken(self) -> bool:
        """True after a trap or a timeout: wasmtime refuses further calls."""
        return self._broken

    @property
    def parallel_batches(self) -> bool:
        """Whether batches of several instances gain from running on threads at once:
        a fast-world batch is one call that runs without the GIL; the reference world's
        per-record calls and emits would only trade the GIL back and forth."""
        return self.fast

    @property
    def fast(self) -> bool:
        """True if the guest takes batches of records as bytes (fs-bus:batch)."""
        return self._component.fast

    def flush_state(self) -> None:
        """Make every kv write the guest made visible in the state back end (for
        callers that read the back end while the instance runs). The wasmtime-py
        host writes through, so it has nothing to do."""

    def __enter__(self) -> WasmProcessor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


class PyWasmProcessor(WasmProcessor):
    """The wasmtime-py host's instance (see :class:`WasmProcessor`)."""

    def __init__(
        self,
        engine: WasmEngine,
        component: LoadedComponent,
        init_config: dict[str, str],
        *,
        function_name: str,
        call_timeout_s: float = 5.0,
        state: StateBackend | None = None,
        log: logging.Logger | None = None,
        wasi: WasiGrants | None = None,
        memory_limit_mb: int = 0,
    ) -> None:
        if call_timeout_s <= 0:
            raise ValueError(f"call_timeout_s must be > 0, got {call_timeout_s}")
        if memory_limit_mb < 0:
            raise ValueError(f"memory_limit_mb must be >= 0 (0: no limit), got {memory_limit_mb}")
        self.memory_limit_mb = memory_limit_mb
        self.function_name = function_name
        self.call_timeout_s = call_timeout_s
        self._component = component
        self._ticks = engine.deadline_ticks(call_timeout_s)
        self._broken = False
        self._closed = False
        self._last_checkpoint: int | None = None
        self._sink = sink = _Sink()
        self._owns_state = state is None
        self.state: StateBackend = MemoryBackend() if state is None else state
        self._kv = _KvHost(self.state)
        self._output = _GuestOutput(log or logging.getLogger(f"fs_bus.guest.{function_name}"), function_name)
        self._files: _BatchFiles | None = None
        self._process_batch: wasm_bytes.ExportCall | None = None

        self._store: wasmtime.Store | None = wasmtime.Store(engine.engine)
        store = self._store
        self._ctx = wasm_bytes.context(store)
        self._tick_s = engine.tick_s
        if memory_limit_mb:
            # Per linear memory of this instance alone: past it memory.grow returns -1,
            # and the guest's allocator fails (usually a trap) in this instance only.
            store.set_limits(memory_size=memory_limit_mb * 1024 * 1024)
        linker = wc.Linker(engine.engine)
        if component.needs_wasi:
            # Guests built with componentize-py or the WASI adapter import
            # wasi:cli & co. even if they never use them.
            linker.add_wasip2()
            try:
                grants = wasi or WasiGrants()
                if component.fast:
                    # The batch files' directory, and nothing else the caller did not grant.
                    self._files = _BatchFiles()
                    grants = WasiGrants(dict(grants.env), [*grants.preopens, (self._files.dir, BATCH_DIR)])
                wasi_config = grants.config()
            except (ValueError, OSError, wasmtime.WasmtimeError) as e:
                self._drop()
                raise GuestError(f"function {function_name!r}: bad WASI grants: {e}") from None
            self._output.attach(wasi_config)
            store.set_wasi(wasi_config)
        stub_ids = itertools.count(_STUB_TYPE_BASE)
        with linker.root() as root:
            if COLLECTOR in component.imports:

                def emit(target_id: int, data: bytes) -> None:
                    sink.out.records.append((target_id, data))

                def emit_watermark(_store: Any, target_id: int, watermark: int) -> None:
                    sink.out.watermarks.append((target_id, watermark))

                with root.add_instance(COLLECTOR) as collector:
                    wasm_bytes.add_emit(collector, "emit", emit)  # the hot one: no per-call type objects
                    collector.add_func("emit-watermark", emit_watermark)
            if KV in component.imports:
                with root.add_instance(KV) as kv:
                    self._kv.define(kv)
            # Anything else the component imports that we do not provide traps
            # only if called. Not `define_unknown_imports_as_traps`: it defines
            # `wasi:x@0.2.0` stubs that shadow add_wasip2's newer,
            # semver-compatible 0.2.x definitions, breaking WASI guests.
            for name, ext in component.component.type.imports(engine.engine).items():
                if name not in (COLLECTOR, KV) and not name.startswith("wasi:"):
                    _stub(root, name, ext.ty, engine.engine, name, stub_ids)
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

        def get(name: str) -> wasm_bytes.ExportCall | None:
            if name not in component.exports:
                return None
            func = instance.get_func(store, name)
            return None if func is None else wasm_bytes.ExportCall(store, func)

        if component.fast:
            batch = instance.get_export_index(store, BATCH)
            index = instance.get_export_index(store, "process-batch", batch) if batch is not None else None
            func = instance.get_func(store, index) if index is not None else None
            assert func is not None  # _describe() checked the export
            self._process_batch = wasm_bytes.ExportCall(store, func)
        self._fs_process = get("fs-process")
        self._fs_process_record: Callable[[int, bytes], None] | None = None  # made on first use
        assert self._fs_process is not None or self._process_batch is not None  # _describe() checked
        self._fs_close = get("fs-close")
        self._fs_process_watermark = get("fs-process-watermark")
        self._fs_take_checkpoint = get("fs-take-checkpoint")
        self._fs_check_heartbeat = get("fs-check-heartbeat")
        self._fs_custom = get("fs-custom")
        self._fs_exec = get("fs-exec")
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
    def open_kv_handles(self) -> dict[str, int]:
        """How many kv ``store`` and ``iterator`` handles the guest holds open."""
        return {"store": len(self._kv.store_handles), "iterator": len(self._kv.iterators)}

    def process(self, source_id: int, data: bytes | bytearray | memoryview) -> Emitted:
        if self._fs_process is None:  # a fast-path guest: a batch of one
            return self.process_records(source_id, [Record(bytes(data))])
        # wasmtime-py accepts only `bytes` for list<u8>, not bytearray/memoryview.
        if type(data) is not bytes:
            data = bytes(data)
        self._call("fs-process", self._fs_process, source_id, data)
        return self._take_output()

    def process_batch(self, source_id: int, records: list[bytes]) -> list[Emitted]:
        if self._process_batch is not None:
            emitted = self.process_records(source_id, [Record(r) for r in records])
            return [emitted, *(Emitted() for _ in records[1:])]
        if self._fs_process is None:
            return process_one_by_one(self, source_id, records)
        done: list[Emitted] = []
        sink = self._sink

        def after(_data: Any) -> None:
            done.append(sink.out)
            sink.out = Emitted()

        try:
            self._each(source_id, records, _as_bytes, after)
        except BatchFailed as exc:
            exc.done = done
            raise
        return done

    def process_records(self, source_id: int, records: Sequence[InputRecord]) -> Emitted:
        """Run a batch through the guest's fs-bus:batch export, records with their
        key, headers, timestamp, partition and offset (see fs_bus.runtime.framing).

        What the whole batch emitted comes back as one :class:`Emitted` whose
        records name their key and headers. If record ``i`` failed, raises
        ``BatchFailed(index=i, done=[what records 0..i-1 emitted])``. A guest
        without the export runs one record at a time, keeping the input keys.
        """
        if self._process_batch is None:
            return self._process_each(source_id, records)
        files = self._files
        assert files is not None
        data = encode_input(records)
        if os.pwrite(files.in_fd, data, 0) != len(data):
            raise GuestError(f"function {self.function_name!r}: short write of an input batch to {files.dir}")
        size = self._call("process-batch", self._process_batch, source_id, len(data))
        raw = os.pread(files.out_fd, size, 0)
        try:
            out, failed, error = decode_output(raw)
        except ValueError as e:
            raise GuestError(f"function {self.function_name!r}: process-batch returned a bad output batch: {e}") from None
        sink = self._sink.out
        if sink.records or sink.watermarks:  # what fs-init emitted goes out first
            self._sink.out = Emitted()
            out = [(t, d, None, None) for t, d in sink.records] + out
        if failed >= 0:
            raise BatchFailed(f"function {self.function_name!r} failed in process-batch: {error}", failed,
                              [Emitted(out)])
        return Emitted(out)

    def _process_each(self, source_id: int, records: Sequence[InputRecord]) -> Emitted:
        """The reference world's road for whole records: one fs-process call per record;
        what a record emitted keeps its key."""
        sink = self._sink.out
        out: list = []
        watermarks = sink.watermarks
        pending = sink.records  # what fs-init emitted goes out with the first record
        sink.records = emitted = []

        def after(r: InputRecord) -> None:
            nonlocal pending
            if pending or emitted:
                key = r.key()
                if pending:
                    out.extend([(t, d, key, None) for t, d in pending])
                    pending = []
                out.extend([(t, d, key, None) for t, d in emitted])
                emitted.clear()

        try:
            self._each(source_id, records, _value, after)
        except BatchFailed as exc:
            exc.done = [Emitted(out, watermarks)]
            raise
        finally:
            self._sink.out = Emitted()
        return Emitted(out, watermarks)

    def _each(self, source_id: int, records: Sequence[Any], value: Callable[[Any], bytes],
              after: Callable[[Any], None]) -> None:
        """Call fs-process with ``value(record)`` for each record, and ``after(record)``
        once it returned: the hot loop of the reference world. It calls the export
        directly rather than through :meth:`_call`: the instance is checked once per
        batch, and the call budget is re-armed only once an epoch tick may have passed
        (see :meth:`_arm`). If record ``i`` fails, raises ``BatchFailed(index=i)``
        (``done`` is the caller's to fill)."""
        assert self._fs_process is not None
        if self._fs_process_record is None:
            store = self._store
            self._fs_process_record = (self._fs_process.record_caller(store)
                                       or functools.partial(self._fs_process, store))
        fs_process = self._fs_process_record
        arm, tick = self._arm, self._tick_s
        armed = -tick
        now = time.monotonic
        i = 0
        try:
            self._check_open()
            for i, r in enumerate(records):
                clock = now()
                if clock - armed >= tick:
                    arm()
                    armed = clock
                fs_process(source_id, value(r))
                after(r)
        except Exception as e:  # noqa: BLE001 - _failed says what it was
            raise BatchFailed(str(self._failed("fs-process", e)), i, []) from e
        finally:
            self._output.flush()  # the guest's output lines, once per batch

    def process_watermark(self, source_id: int, watermark: int) -> Emitted:
        """fs-process-watermark, if exported; what the guest emitted."""
        if self._fs_process_watermark is not None:
            self._call("fs-process-watermark", self._fs_process_watermark, source_id, watermark)
        return self._take_output()

    def take_checkpoint(self, checkpoint_id: int) -> Emitted:
        """fs-take-checkpoint (if exported), then make the state durable.

        Called at each input offset commit, before the offsets are committed;
        ids must increase. If the guest fails (``GuestError``) the state is not
        checkpointed; if the backend cannot commit it raises ``StateError``.
        Either way the offsets must not be committed.
        The ``-> list<u8>`` form's returned bytes are not used (logged at DEBUG).
        """
        if self._last_checkpoint is not None and checkpoint_id <= self._last_checkpoint:
            raise ValueError(
                f"function {self.function_name!r}: checkpoint id {checkpoint_id} "
                f"does not follow {self._last_checkpoint}; ids must increase"
            )
        if self._fs_take_checkpoint is not None:
            returned = self._call("fs-take-checkpoint", self._fs_take_checkpoint, checkpoint_id)
            if returned is not None:
                log.debug("function %r: fs-take-checkpoint %d returned %d bytes (unused)",
                          self.function_name, checkpoint_id, len(returned))
        self._check_open()
        self.state.checkpoint()
        self._last_checkpoint = checkpoint_id
        return self._take_output()

    def check_heartbeat(self) -> bool:
        """fs-check-heartbeat if exported (True if not). False once the instance
        is broken: it must be replaced either way."""
        if self._broken:
            return False
        if self._fs_check_heartbeat is None:
            self._check_open()
            return True
        return bool(self._call("fs-check-heartbeat", self._fs_check_heartbeat))

    def custom(self, payload: bytes | bytearray | memoryview) -> bytes:
        """fs-custom: the function's own request/response entry point."""
        if self._fs_custom is None:
            self._check_open()
            raise GuestError(f"function {self.function_name!r} does not export fs-custom")
        result: bytes = self._call("fs-custom", self._fs_custom, bytes(payload))
        return result

    def exec(self, class_name: str, modules: list[tuple[str, bytes]]) -> None:
        """fs-exec: hand a Python runtime component the class to run and the
        modules of a ``type: python`` artifact. What it emits goes out with the
        next process() result, as for fs-init.

        The ``fs-exec: func(payload: list<u8>)`` form gets UTF-8 JSON
        ``{"class-name": class_name, "modules": [[name, base64(bytes)], ...]}``.
        """
        if self._fs_exec is None:
            self._check_open()
            raise GuestError(f"function {self.function_name!r} does not export fs-exec; it is not a Python runtime")
        mods = [(str(name), bytes(code)) for name, code in modules]
        if self._component.export_types.get("fs-exec") == "func(list<u8>)":
            payload = json.dumps(
                {"class-name": class_name, "modules": [[n, base64.b64encode(c).decode("ascii")] for n, c in mods]}
            ).encode()
            self._call("fs-exec", self._fs_exec, payload)
        else:
            self._call("fs-exec", self._fs_exec, class_name, mods)

    def _take_output(self) -> Emitted:
        out = self._sink.out
        self._sink.out = Emitted()
        return out

    def _check_open(self) -> None:
        if self._closed:
            raise GuestError(f"function {self.function_name!r}: instance is closed")
        if self._broken:
            raise GuestError(f"function {self.function_name!r}: instance is broken after a previous trap; restart it")

    def _call(self, export: str, func: wasm_bytes.ExportCall, *args: Any, flush: bool = True) -> Any:
        """Call an export within the call budget; ``flush=False`` leaves the guest's
        output lines for the caller to flush (once per batch rather than per record)."""
        self._check_open()
        store = self._store
        assert store is not None
        self._arm()
        try:
            return func(store, *args)
        except Exception as e:
            raise self._failed(export, e) from (e if not isinstance(e, wasmtime.WasmtimeError) else None)
        finally:
            # A line printed without its newline belongs to this call, not the next.
            if flush:
                self._output.flush()

    def _arm(self) -> None:
        """Give the next call its budget: the epoch deadline, ``_ticks`` ticks from now.

        A loop may re-arm only once per tick (``_process_each``): the ticker cannot
        advance twice within one tick, so one more tick than the budget's keeps the
        budget a floor for every call made within a tick of arming."""
        wasm_bytes.set_epoch_deadline(self._ctx, self._ticks + 1)

    def _failed(self, export: str, e: Exception) -> GuestError:
        """What a failed call of ``export`` means, as the error to raise. Any failure
        once wasm was entered leaves the instance poisoned (wasmtime refuses to
        re-enter it), so it is never called again."""
        self._broken = True
        if isinstance(e, GuestError):
            return e
        text = str(e)
        if isinstance(e, wasmtime.WasmtimeError) and _INTERRUPT in text:
            return GuestTimeout(f"function {self.function_name!r} ran past its {self.call_timeout_s} s budget in {export}")
        if isinstance(e, wasmtime.WasmtimeError):
            limit = f" (its memory is limited to {self.memory_limit_mb} MiB)" if self.memory_limit_mb else ""
            return GuestError(f"function {self.function_name!r} trapped in {export}{limit}: {_cause(text)}\n{text}")
        return GuestError(f"function {self.function_name!r} failed in {export}: {type(e).__name__}: {e}")

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
        self._output.close()
        if self._files is not None:
            self._files.close()
            self._files = None
        self._kv.store_handles.clear()
        self._kv.iterators.clear()
        if self._owns_state:
            self._owns_state = False
            self.state.close()



# --- helpers ------------------------------------------------------------------


# The compiled cache is native code that wasmtime maps and runs without checking it
# beyond its header: a flipped bit on disk would run as corrupt machine code. Each
# file therefore ends with the sha256 of what precedes it, checked before use.
_SEAL = b"fs-bus-sha256:"


def _value(record: InputRecord) -> bytes:
    return record.value() or b""


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


def _sealed(data: bytes) -> bytes:
    return data + _SEAL + hashlib.sha256(data).digest()


def _verified(sealed: bytes) -> bytes:
    data, seal, digest = sealed[:-46], sealed[-46:-32], sealed[-32:]
    if seal != _SEAL or hashlib.sha256(data).digest() != digest:
        raise ValueError("its sha256 does not match its content (corrupt or from an older fs-bus)")
    return data


class _NotProvided(Exception):
    """Raised by a stub for an import this host does not implement."""


def _stub(
    parent: wc.LinkerInstance, name: str, item: Any, engine: wasmtime.Engine, where: str, type_ids: Iterator[int]
) -> None:
    """Define import ``name`` so that instantiation succeeds and only a call fails."""
    if isinstance(item, wc.FuncType):

        def trap(_store: Any, *_args: Any) -> None:
            raise _NotProvided(f"{where} is not provided by this host")

        parent.add_func(name, trap)
    elif isinstance(item, wc.ResourceType):
        # A distinct host type per resource, so the guest's distinct types stay distinct.
        parent.add_resource(name, wc.ResourceType.host(next(type_ids)), lambda _store, _rep: None)
    elif isinstance(item, wc.ComponentInstanceType):
        with parent.add_instance(name) as instance:
            for export, ext in item.exports(engine).items():
                _stub(instance, export, ext.ty, engine, f"{where}#{export}", type_ids)
    # Value types need no definition; a module or component import cannot be
    # stubbed and makes instantiation fail with a message naming it.


def _check_header(wasm: bytes) -> None:
    if wasm[:4] != _WASM_MAGIC or len(wasm) < 8:
        raise InvalidArtifact("not a WebAssembly binary (it does not start with \\0asm)")
    if wasm[4:8] == _CORE_MODULE_VERSION:
        raise InvalidArtifact(
            "this is a core WebAssembly module, not a component; "
            "make a component of it (e.g. `wasm-tools component new`) for the functionstream:core processor world"
        )


# A component's imports and exports as both hosts render them (see
# ``native/src/describe.rs``): a function's WIT signature, a dict of an interface
# instance's members, or the kind of anything else. One set of checks serves both.
ItemView = "str | dict[str, ItemView]"


def _view(engine: wasmtime.Engine, component: wc.Component) -> dict[str, dict[str, Any]]:
    """wasmtime-py's view of ``component`` (the native host's is ``describe()``)."""

    def item(ty: Any) -> Any:
        if isinstance(ty, wc.ComponentInstanceType):
            return {name: item(ext.ty) for name, ext in ty.exports(engine).items()}
        return _wit_item(ty)

    ty = component.type
    return {
        "imports": {name: item(ext.ty) for name, ext in ty.imports(engine).items()},
        "exports": {name: item(ext.ty) for name, ext in ty.exports(engine).items()},
    }


def _kind(item: Any) -> str:
    return "ComponentInstanceType" if isinstance(item, dict) else str(item)


def _check_import(imports: Mapping[str, Any], iface: str, funcs: Mapping[str, str], types: frozenset[str]) -> None:
    """The host functions are defined for the WIT: refuse a component whose import
    of ``iface`` does not match it, with a message naming the difference."""
    if iface not in imports:
        return
    instance = imports[iface]
    if not isinstance(instance, dict):
        raise InvalidArtifact(f"import {iface} is a {_kind(instance)}, not an interface instance")
    for name, got in instance.items():
        is_func = isinstance(got, str) and got.startswith("func(")
        if name in types and not is_func:
            continue
        expected = funcs.get(name)
        if expected is None:
            raise InvalidArtifact(f"import {iface} asks for {name!r}, which the interface does not have")
        if _kind(got) != expected:
            raise InvalidArtifact(f"import {iface}#{name} has type {_kind(got)}, but the interface says {expected}")


def _describe(sha256: str, component: Any, view: Mapping[str, Mapping[str, Any]], from_cache: bool,
              *, native: bool = False) -> LoadedComponent:
    imports, exports = view["imports"], view["exports"]
    _check_import(imports, COLLECTOR, COLLECTOR_FUNCS, frozenset())
    _check_import(imports, KV, KV_FUNCS, KV_TYPES)
    export_types: dict[str, str] = {}
    for name, item in exports.items():
        if name == BATCH:
            _check_batch_export(item)
            export_types[name] = "instance"
            continue
        accepted = PROCESSOR_EXPORTS.get(name)
        if accepted is None:
            continue  # extra exports are none of our business
        got = _kind(item)
        if got not in accepted:
            raise InvalidArtifact(
                f"export {name} has type {got}, but the processor world says {' or '.join(accepted)}"
            )
        export_types[name] = got
    if "fs-process" not in export_types and BATCH not in export_types:
        raise InvalidArtifact(
            "component does not export fs-process: func(source-id: u32, data: list<u8>) "
            f"(the functionstream:core processor world) nor {BATCH} (fs-bus's fast-processor world); "
            f"its exports are: {', '.join(sorted(exports)) or 'none'}"
        )
    return LoadedComponent(sha256, component, frozenset(export_types), frozenset(imports), from_cache,
                           export_types, native)


def _check_batch_export(item: Any) -> None:
    if not isinstance(item, dict):
        raise InvalidArtifact(f"export {BATCH} is a {_kind(item)}, not an interface instance")
    for name, expected in BATCH_FUNCS.items():
        got = item.get(name)
        if got is None:
            raise InvalidArtifact(f"export {BATCH} lacks {name}: {expected} (see wit/fs-bus/batch.wit)")
        if _kind(got) != expected:
            raise InvalidArtifact(f"export {BATCH}#{name} has type {_kind(got)}, but wit/fs-bus/batch.wit says {expected}")


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
    if isinstance(ty, wc.RecordType):
        return "record{" + ", ".join(f"{name}: {_wit(t)}" for name, t in ty.fields) + "}"
    if isinstance(ty, wc.VariantType):
        return "variant{" + ", ".join(name if t is None else f"{name}({_wit(t)})" for name, t in ty.cases) + "}"
    # own, borrow (the resource's name is not visible), enum, flags, ...
    return type(ty).__name__.removesuffix("Type").lower()


def _wit_item(item: Any) -> str:
    """A function's WIT signature, or the kind of anything else (for messages and checks)."""
    return _wit_func(item) if isinstance(item, wc.FuncType) else type(item).__name__


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

