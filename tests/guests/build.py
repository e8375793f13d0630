"""Guests the tests build from source, cached by what they are built from.

The kv probe (tests/guests/kv_probe) is built with componentize-py; the examples
with their own build.sh, as a user builds them. Results are cached under
~/.cache/fs-bus/test-guests/ keyed by a hash of the sources, the WIT and the
toolchain version, so only the first run pays for the build.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WIT_DIR = REPO / "wit"
GUEST_DIR = REPO / "tests" / "guests" / "kv_probe"
CACHE = Path.home() / ".cache" / "fs-bus" / "test-guests"


class GuestBuildError(Exception):
    pass


def _hash(paths: list[Path], *extra: str) -> str:
    h = hashlib.sha256()
    for e in extra:
        h.update(e.encode() + b"\0")
    for path in sorted(paths):
        if "__pycache__" in path.parts or "build" in path.relative_to(REPO).parts:
            continue
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _componentize_py_version() -> str:
    try:
        return importlib.metadata.version("componentize-py")
    except importlib.metadata.PackageNotFoundError:
        raise GuestBuildError(
            "componentize-py is not installed, and the tests build Python guests with it: "
            "pip install -e '.[test]' (or pip install componentize-py==0.25.1)") from None


def _cached(name: str, key: str, build) -> bytes:
    cached = CACHE / f"{name}-{key}.wasm"
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        build(tmp)
        os.replace(tmp, cached)  # never a half-written file under the final name
    return cached.read_bytes()


def kv_probe(work: Path) -> bytes:
    version = _componentize_py_version()
    key = _hash([*GUEST_DIR.rglob("*.py"), *WIT_DIR.rglob("*.wit")], version)

    def build(out: Path) -> None:
        # A copy of the guest, so the build writes no __pycache__ into the repo.
        src = work / "kv_probe"
        shutil.copytree(GUEST_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
        # The console script's entry point, run by this interpreter: no PATH lookup.
        runner = ("import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; "
                  "sys.exit(script())")
        args = ["-d", str(WIT_DIR), "-w", "processor-runtime", "componentize", "app", "-p", str(src), "-o", str(out)]
        done = subprocess.run([sys.executable, "-c", runner, *args], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise GuestBuildError(f"componentize-py could not build {GUEST_DIR}:\n{done.stdout}\n{done.stderr}")
    return _cached("kv_probe", key, build)


def fast_probe(work: Path) -> bytes:
    """tests/guests/fast_probe: a fast-path guest (world fs-bus:batch/fast-processor)
    written with the Python SDK, sdk/python/fs_bus_guest.py."""
    version = _componentize_py_version()
    sdk = REPO / "sdk" / "python"
    source = REPO / "tests" / "guests" / "fast_probe"
    key = _hash([*source.rglob("*.py"), *sdk.rglob("*.py"), *WIT_DIR.rglob("*.wit")], version)

    def build(out: Path) -> None:
        src = work / "fast_probe"
        shutil.copytree(source, src, ignore=shutil.ignore_patterns("__pycache__"))
        runner = ("import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; "
                  "sys.exit(script())")
        args = ["-d", str(WIT_DIR / "fs-bus"), "-w", "fast-processor", "componentize", "app", "-p", str(src),
                "-p", str(sdk), "-o", str(out)]
        done = subprocess.run([sys.executable, "-c", runner, *args], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise GuestBuildError(f"componentize-py could not build {source}:\n{done.stdout}\n{done.stderr}")
    return _cached("fast_probe", key, build)


def example(name: str) -> bytes:
    """Run examples/<name>/build.sh as a user would and return build/processor.wasm.

    A build.sh that cannot find or fetch its toolchain fails with its own message
    (what to install): the test fails with it, it is never skipped.
    """
    directory = REPO / "examples" / name
    shared = [p for p in (REPO / "examples").glob("*.sh")]  # sourced by several build.sh
    sources = [p for p in directory.rglob("*") if p.is_file()] + shared + list(WIT_DIR.rglob("*.wit"))
    if (directory / "go.mod").exists() and "../../sdk/" in (directory / "go.mod").read_text():
        sources += [p for p in (REPO / "sdk" / "go").rglob("*") if p.is_file()]  # the Go SDK it builds with
    key = _hash(sources)

    def build(out: Path) -> None:
        done = subprocess.run(["bash", str(directory / "build.sh")], cwd=directory, capture_output=True, text=True,
                              timeout=900)
        if done.returncode != 0:
            raise GuestBuildError(f"examples/{name}/build.sh failed:\n{done.stdout}\n{done.stderr}")
        shutil.copyfile(directory / "build" / "processor.wasm", out)
    return _cached(name, key, build)
