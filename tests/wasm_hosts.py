"""The WebAssembly hosts the tests run components on: the native one (fs_bus._native)
where it is built, and wasmtime-py always (the road a machine without Rust takes).
Tests of the runtime run once per host, so both keep the same semantics."""

from __future__ import annotations

import shutil

from fs_bus.runtime.wasm import HOSTS, _native

AVAILABLE: list[str] = [h for h in HOSTS if h != "native" or _native is not None]

# Where a Rust toolchain is on PATH, `pip install -e .` builds the native host: a
# machine that has cargo and no native host has a broken install, not a choice.
EXPECT_NATIVE = shutil.which("cargo") is not None
