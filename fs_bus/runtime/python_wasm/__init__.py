"""The Python runtime component: ``type: python`` functions inside the WebAssembly sandbox.

:func:`runtime_component` builds (once, then from its cache) a component of world
``processor-runtime`` (``wit/processor.wit``) from the guest in ``guest/``, with
componentize-py. Run it as any component, then hand it the function's code::

    wasm = runtime_component(cache_dir)
    loaded = engine.load(hashlib.sha256(wasm).hexdigest(), wasm)
    p = WasmProcessor(engine, loaded, init_config, function_name=name, state=backend)
    p.exec(bundle.class_name, list(bundle.modules))   # fs-exec; the driver's init() runs here
    p.process(0, b"record")                            # fs-process -> driver.process(ctx, 0, data)

Inside, the user's modules import ``fs_api`` (``FSProcessorDriver``, ``Context``,
``ComplexKey``...) as with the native runtime; ``ctx.emit`` goes to the host's
collector and ``ctx.getOrCreateKVStore`` to the host's kv (the partition's state).
Only the standard library that componentize-py bundles is there: no pip
requirements, no filesystem, environment or network unless the host grants them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import fs_bus
from fs_bus.errors import InvalidArtifact

try:
    import fcntl
except ImportError:  # not POSIX: threads still exclude each other, processes do not
    fcntl = None  # type: ignore[assignment]

__all__ = ["COMPONENTIZE_PY_VERSION", "GUEST_DIR", "WORLD", "runtime_component", "runtime_key", "wit_dir"]

WORLD = "processor-runtime"
COMPONENTIZE_PY_VERSION = "0.25.1"  # the version the guest is written and tested against
GUEST_DIR = Path(__file__).resolve().parent / "guest"
_NEEDS = f"the Python runtime component needs componentize-py: pip install componentize-py=={COMPONENTIZE_PY_VERSION}"
_BUILD_TIMEOUT_S = 900

_thread_locks: dict[Path, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def wit_dir() -> Path:
    """The repo's ``wit/`` folder (at the repo root, next to the ``fs_bus`` package)."""
    path = Path(fs_bus.__file__).resolve().parent.parent / "wit"
    if not (path / "processor.wit").is_file():
        raise InvalidArtifact(
            f"the Python runtime component is built against the WIT of the processor world, "
            f"but {path / 'processor.wit'} does not exist (it ships with the fs-bus sources, "
            f"next to the fs_bus package: run from a checkout or an editable install)"
        )
    return path


def _componentize_py_version() -> str:
    try:
        version = importlib.metadata.version("componentize-py")
    except importlib.metadata.PackageNotFoundError:
        raise InvalidArtifact(_NEEDS) from None
    if importlib.util.find_spec("componentize_py") is None:
        raise InvalidArtifact(_NEEDS)
    return version


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.relative_to(root).parts)


def runtime_key() -> str:
    """The cache key of the runtime component: a hash of the guest sources, the
    WIT and the componentize-py version."""
    version = _componentize_py_version()
    wit = wit_dir()
    h = hashlib.sha256(f"fs-bus python runtime\0componentize-py {version}\0{WORLD}\0".encode())
    for label, root, paths in (
        ("guest", GUEST_DIR, [p for p in _sources(GUEST_DIR) if p.suffix == ".py"]),
        ("wit", wit, [p for p in _sources(wit) if p.suffix == ".wit"]),
    ):
        for path in paths:
            data = path.read_bytes()
            h.update(f"{label}/{path.relative_to(root).as_posix()}\0{len(data)}\0".encode() + data)
    return h.hexdigest()


def runtime_component(cache_dir: Path) -> bytes:
    """The bytes of the Python runtime component, built with componentize-py on
    first use and cached under ``cache_dir`` (as ``python-runtime-<key>.wasm``).

    Building takes a few seconds to a minute; two threads or processes asking at
    once build it once (a file lock), and a reader never sees half a file.
    Raises ``InvalidArtifact`` if componentize-py or the WIT is missing, or if
    the build fails.
    """
    key = runtime_key()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"python-runtime-{key}.wasm"
    cached = _read(out)
    if cached is not None:
        return cached
    with _locked(cache_dir / f".python-runtime-{key}.lock"):
        cached = _read(out)  # built by whoever held the lock before us
        if cached is not None:
            return cached
        wasm = _build()
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{out.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(wasm)
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache may be shared
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return wasm


def _read(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if data[:4] == b"\0asm" else None  # anything else: build again


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(path.resolve(), threading.Lock())
    with lock:
        if fcntl is None:
            yield
            return
        with open(path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _build() -> bytes:
    wit = wit_dir()
    with tempfile.TemporaryDirectory(prefix="fs-bus-python-runtime-") as work:
        # A copy of the guest, so the build writes nothing (e.g. __pycache__) into the package.
        src = Path(work) / "guest"
        shutil.copytree(GUEST_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
        out = Path(work) / "runtime.wasm"
        # The console script's entry point, run by this interpreter: no PATH lookup.
        runner = ("import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; "
                  "sys.exit(script())")
        args = ["-d", str(wit), "-w", WORLD, "componentize", "app", "-p", str(src), "-o", str(out)]
        try:
            done = subprocess.run([sys.executable, "-c", runner, *args], cwd=work, capture_output=True, text=True,
                                  timeout=_BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise InvalidArtifact(
                f"building the Python runtime component with componentize-py took over {_BUILD_TIMEOUT_S} s"
            ) from None
        if done.returncode != 0:
            detail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
            if "No module named 'componentize_py'" in detail:
                raise InvalidArtifact(_NEEDS)
            raise InvalidArtifact(f"componentize-py could not build the Python runtime component:\n{detail}")
        return out.read_bytes()
