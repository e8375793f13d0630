"""What a WASI guest may reach: :class:`WasiGrants`, nothing unless granted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import wasmtime


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
