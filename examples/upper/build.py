"""Assemble upper.wat into upper.wasm (a WebAssembly component).

Usage: python examples/upper/build.py  -> prints the path of upper.wasm

Idempotent: the output is rewritten only when its bytes would change, so the
checked-in upper.wasm stays untouched when nothing changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import wasmtime

HERE = Path(__file__).resolve().parent


def build(src: Path = HERE / "upper.wat", out: Path = HERE / "upper.wasm") -> Path:
    wasm = bytes(wasmtime.wat2wasm(src.read_text(encoding="utf-8")))
    if not out.exists() or out.read_bytes() != wasm:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(wasm)
        os.replace(tmp, out)  # atomic: a reader never sees half a file
    return out


if __name__ == "__main__":
    print(build())
