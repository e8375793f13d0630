"""The engine: :class:`WasmEngine`, one per node, and which host it runs
(:func:`wasm_host`): the native one (``fs_bus._native``, built from ``native/``)
where it is built, else wasmtime-py. It compiles components, keeps their compiled
form in a sealed on-disk cache, and checks them (:mod:`.checks`) before any runs.

A fact about wasmtime-py 50 this relies on (probed, see DESIGN.md):

- ``Component.deserialize_file`` mmaps the file: truncating it in place later
  crashes the process, so the cache is read into memory instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component as wc

from fs_bus.errors import ArtifactError, InvalidArtifact
from fs_bus.runtime.wasm.checks import LoadedComponent, _check_header, _describe, _view
from fs_bus.runtime.wasm.messages import _cause, _first_line
from fs_bus.runtime.wasm.py_host import _patch_wasmtime_py

try:
    from fs_bus import _native  # type: ignore[attr-defined]
    _NATIVE_MISSING = ""
except ImportError as exc:  # not built on this machine: the wasmtime-py host runs instead
    _native = None
    _NATIVE_MISSING = str(exc)

log = logging.getLogger(__package__)

HOSTS = ("native", "python")

WASMTIME_VERSION = importlib.metadata.version("wasmtime")


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


# The compiled cache is native code that wasmtime maps and runs without checking it
# beyond its header: a flipped bit on disk would run as corrupt machine code. Each
# file therefore ends with the sha256 of what precedes it, checked before use.
_SEAL = b"fs-bus-sha256:"


def _sealed(data: bytes) -> bytes:
    return data + _SEAL + hashlib.sha256(data).digest()


def _verified(sealed: bytes) -> bytes:
    data, seal, digest = sealed[:-46], sealed[-46:-32], sealed[-32:]
    if seal != _SEAL or hashlib.sha256(data).digest() != digest:
        raise ValueError("its sha256 does not match its content (corrupt or from an older fs-bus)")
    return data
