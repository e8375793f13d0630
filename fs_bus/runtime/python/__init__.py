"""The engine of ``type: python`` functions: the user's driver class in a process of its own.

- ``processor``  :class:`PythonProcessor`, the parent side, one per partition worker
- ``process``    spawning, talking to and reaping one child process
- ``protocol``   the frames on the pipes between them (pure)
- ``child``      the child's main program: imports the bundle, runs the driver, owns the state
- ``importer``   imports the bundle's modules from memory

The child imports this package too, so ``PythonProcessor`` is loaded lazily:
the child never pays for the parent's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fs_bus.runtime.python.processor import PythonProcessor

__all__ = ["PythonProcessor"]


def __getattr__(name: str) -> object:
    if name == "PythonProcessor":
        from fs_bus.runtime.python.processor import PythonProcessor

        return PythonProcessor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
