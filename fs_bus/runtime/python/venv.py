"""Per-function virtual environments for the pip requirements a Python function declares.

One environment per distinct requirement set (and Python version), shared by every
function that declares the same set, created once and reused. It sees the node's
own packages (``--system-site-packages``), so fs-bus itself needs no reinstall.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from fs_bus.errors import InvalidArtifact

log = logging.getLogger(__name__)
INSTALL_TIMEOUT_S = 600


def environment_key(requirements: tuple[str, ...]) -> str:
    h = hashlib.sha256(f"{sys.version_info[:2]}\0".encode())
    for r in sorted(requirements):
        h.update(r.encode() + b"\0")
    return h.hexdigest()[:16]


def ensure(root: Path, requirements: tuple[str, ...], function: str) -> str:
    """Return the Python executable of an environment holding ``requirements``.

    Raise ``InvalidArtifact`` with pip's own words when they cannot be installed:
    retrying will not help, a new config will.
    """
    directory = root / environment_key(requirements)
    python = directory / "bin" / "python"
    done = directory / ".complete"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer per set, across functions and nodes
        if done.exists():
            return str(python)
        shutil.rmtree(directory, ignore_errors=True)  # a half-built one from a crash
        log.info("function %s: creating an environment for %s in %s", function, list(requirements), directory)
        _run([sys.executable, "-m", "venv", "--system-site-packages", str(directory)], function, requirements)
        _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
              *requirements], function, requirements)
        done.write_text("\n".join(requirements) + "\n")
    return str(python)


def _run(cmd: list[str], function: str, requirements: tuple[str, ...]) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InvalidArtifact(f"function {function!r}: installing requirements {list(requirements)} took more "
                              f"than {INSTALL_TIMEOUT_S} s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise InvalidArtifact(f"function {function!r}: installing requirements {list(requirements)} failed: {tail}")
