"""Import the standard library while componentize-py builds the component.

componentize-py pre-initializes the component (it imports ``app`` and snapshots
the interpreter's memory) and does not ship the standard library's files: a
module that was not imported at build time cannot be imported at run time. So
every standard-library module that imports in the sandbox is imported here,
submodules included (``json.decoder``, every ``encodings.*`` codec, ...), and
the user's modules find them in ``sys.modules``.

Left out: modules with side effects on import (``this``, ``antigravity``...),
tooling that a stream function has no use for (tests, IDLE, GUIs, packaging),
and what cannot work without threads, processes or sockets.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

# Not imported, nor anything under them.
SKIP = frozenset({
    # side effects on import
    "this", "antigravity", "__hello__", "__phello__", "idlelib",
    # tooling, GUIs, tests
    "test", "tkinter", "turtle", "turtledemo", "lib2to3", "ensurepip", "venv", "pydoc", "pydoc_data",
    "distutils", "unittest", "doctest", "pdb", "bdb", "cProfile", "profile", "pstats", "trace", "tabnanny",
    "py_compile", "compileall", "zipapp", "msilib", "_pyrepl", "_pydecimal", "_pydatetime_test",
    # no processes, threads or sockets in the sandbox
    "multiprocessing", "concurrent", "subprocess", "asyncio", "socketserver", "http", "urllib.request",
    "xmlrpc", "ftplib", "imaplib", "poplib", "smtplib", "telnetlib", "nntplib", "webbrowser", "wsgiref",
    "ssl", "selectors", "socket", "mailbox", "sqlite3", "dbm", "curses", "readline", "ctypes",
    # platform modules of other systems
    "nt", "ntpath", "winreg", "winsound", "msvcrt", "_winapi", "_overlapped", "_msi", "_wmi",
    "nturl2path", "_osx_support", "_aix_support", "_android_support", "_ios_support", "_apple_support",
})

loaded: list[str] = []
failed: dict[str, str] = {}


def _skipped(name: str) -> bool:
    parts = name.split(".")
    return any(".".join(parts[: i + 1]) in SKIP for i in range(len(parts))) or any(
        p in ("tests", "test", "idle_test", "__main__") for p in parts[1:]
    )


def _try(name: str) -> object | None:
    if _skipped(name):
        return None
    try:
        module = importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - anything that does not import here is not offered
        failed[name] = f"{type(exc).__name__}: {exc}"
        return None
    loaded.append(name)
    return module


def _walk(name: str) -> None:
    module = _try(name)
    path = getattr(module, "__path__", None)
    if path is None:
        return
    for info in pkgutil.iter_modules(path, prefix=name + "."):
        _walk(info.name)


def preload() -> None:
    for name in sorted(sys.stdlib_module_names):
        _walk(name)


preload()
