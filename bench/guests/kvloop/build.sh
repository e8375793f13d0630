#!/usr/bin/env bash
# Build build/kvloop.wasm, the bench's `boundary` guest (kvloop.c: a record of N bytes
# makes N kv get-state + put-state calls, then one emit), with examples/c-processor's
# toolchain (zig cc, wasm-tools, the WASI reactor adapter: examples/zig-component.sh).
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXAMPLES="$(cd "$SELF/../../../examples" && pwd)"
WIT="$(cd "$SELF/../../../wit" && pwd)"
WORLD="processor"
HERE="$EXAMPLES/c-processor"  # the shared scripts find build-common.sh beside it

source "$EXAMPLES/zig-component.sh"
BUILD="$SELF/build"            # ours, not c-processor's
OUT="$BUILD/kvloop.wasm"

zig_prerequisites
zig_compile cc -target wasm32-wasi -mexec-model=reactor -O2 -s -Wall -Werror \
    -o "$BUILD/core.wasm" "$SELF/kvloop.c"
core_to_component
