"""The WebAssembly hosts for components of the ``functionstream:core@0.1.0``
``processor`` world (see ``wit/processor.wit``) and of fs-bus's own
``fs-bus:batch@0.1.0`` ``fast-processor`` world (``wit/fs-bus/batch.wit``).

One :class:`WasmEngine` per node compiles components (and caches the compiled form
on disk); one :class:`WasmProcessor` per partition worker owns a Store and an
instance, so state never leaks between partitions and no Store is ever shared
between threads. The guest's ``functionstream:core/kv`` calls are served from the
processor's :class:`~fs_bus.state.backend.StateBackend` (the partition's state)
through :mod:`fs_bus.state.kv`; WASI guests get ``wasi:cli`` & co. with nothing
granted unless :class:`WasiGrants` says so, their stdout and stderr going to a log.

The modules, one concept each (the facts about wasmtime-py each relies on are in
its docstring):

- :mod:`.engine`: :class:`WasmEngine`, the host choice (:func:`wasm_host`), the
  sealed compiled cache;
- :mod:`.checks`: :class:`LoadedComponent`, the worlds' imports and exports and
  the checks of a component against them;
- :mod:`.processor`: :class:`WasmProcessor`, which gives the instance of the host
  that compiled the component: :mod:`.py_host` (wasmtime-py, with :mod:`.kv_host`
  and ``list<u8>`` by bulk copies in :mod:`fs_bus.runtime.wasm_bytes`) or
  :mod:`.native` (``fs_bus._native``, imported only when a native component runs);
- :mod:`.wasi` (:class:`WasiGrants`), :mod:`.output` (the guest's stdout and
  stderr), :mod:`.batch_files` (the fast path's files), :mod:`.messages`
  (wasmtime's errors, readable).
"""

from __future__ import annotations

from fs_bus.runtime.wasm.checks import (
    BATCH, BATCH_DIR, BATCH_FUNCS, COLLECTOR, COLLECTOR_FUNCS, KV, KV_FUNCS, KV_TYPES, PROCESSOR_EXPORTS,
    LoadedComponent,
)
from fs_bus.runtime.wasm.engine import _NATIVE_MISSING, HOSTS, WASMTIME_VERSION, WasmEngine, _native, wasm_host
from fs_bus.runtime.wasm.processor import WasmProcessor
from fs_bus.runtime.wasm.py_host import PyWasmProcessor
from fs_bus.runtime.wasm.wasi import WasiGrants

__all__ = [
    "BATCH", "BATCH_DIR", "BATCH_FUNCS", "COLLECTOR", "COLLECTOR_FUNCS", "HOSTS", "KV", "KV_FUNCS", "KV_TYPES",
    "PROCESSOR_EXPORTS", "WASMTIME_VERSION", "LoadedComponent", "PyWasmProcessor", "WasiGrants", "WasmEngine",
    "WasmProcessor", "wasm_host", "_NATIVE_MISSING", "_native",
]
