"""The public face of an instance: :class:`WasmProcessor`, one per partition worker,
which owns a Store and an instance, so state never leaks between partitions and no
Store is ever shared between threads. Making one gives the instance of the host
that compiled the component (:mod:`.py_host` or :mod:`.native`).

The ``fs-exec: func(payload: list<u8>)`` form of the reference world gets the class
name and modules as UTF-8 JSON: ``{"class-name": str, "modules": [[name,
base64(bytes)], ...]}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fs_bus.runtime.wasm.checks import LoadedComponent
    from fs_bus.runtime.wasm.engine import WasmEngine


class WasmProcessor:
    """One instance of a component, owned by one partition worker.

    ``WasmProcessor(engine, component, ...)`` gives the instance of the host that
    compiled ``component`` (like ``pathlib.Path`` giving a ``PosixPath``): a
    :class:`~fs_bus.runtime.wasm.native.NativeWasmProcessor` or a
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
                from fs_bus.runtime.wasm.native import NativeWasmProcessor

                cls = NativeWasmProcessor
            else:
                from fs_bus.runtime.wasm.py_host import PyWasmProcessor

                cls = PyWasmProcessor
        return object.__new__(cls)

    def _set_up(self, component: Any, function_name: str, call_timeout_s: float, memory_limit_mb: int) -> None:
        """What both hosts' instances start from: the checked limits, not broken, not closed."""
        if call_timeout_s <= 0:
            raise ValueError(f"call_timeout_s must be > 0, got {call_timeout_s}")
        if memory_limit_mb < 0:
            raise ValueError(f"memory_limit_mb must be >= 0 (0: no limit), got {memory_limit_mb}")
        self.memory_limit_mb = memory_limit_mb
        self.function_name = function_name
        self.call_timeout_s = call_timeout_s
        self._component = component
        self._broken = False
        self._closed = False
        self._last_checkpoint: int | None = None

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
