"""What a node grants one instance of user code, read from its function's config.

One place, so that a node (``fs_bus.node.loader``) and the author's harness
(``fs_bus.testing``) give user code the same time budget, memory and WASI grants:
a function that passes its tests does not meet other limits once deployed.
"""

from __future__ import annotations

from dataclasses import dataclass

from fs_bus.config.model import FunctionConfig
from fs_bus.runtime.wasm import WasiGrants

@dataclass(frozen=True, slots=True)
class Limits:
    """``call_budget_s``: each call into user code (``processor-runtime.control-timeout-ms``);
    ``memory_limit_mb``: a WebAssembly instance's linear memory, a Python function's
    address space (0: no cap); ``cpu_limit_s``: a Python function's process CPU time (0: no cap)."""

    call_budget_s: float
    memory_limit_mb: int
    cpu_limit_s: int


def limits(config: FunctionConfig) -> Limits:
    runtime = config.processor_runtime
    return Limits(runtime.call_budget_s, runtime.memory_limit_mb, runtime.cpu_limit_seconds)


def wasi_grants(config: FunctionConfig) -> WasiGrants:
    """Exactly what the config's ``wasi`` key grants a component; nothing else."""
    return WasiGrants(env=dict(config.wasi.env), preopens=[(d.host, d.guest) for d in config.wasi.dirs],
                      read_only=frozenset(d.guest for d in config.wasi.dirs if d.read_only))
