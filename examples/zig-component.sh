# Sourced by examples/c-processor/build.sh and examples/zig-processor/build.sh,
# which compile with zig (from the PyPI package `ziglang`, which bundles clang and
# wasi-libc; or $ZIG) to build/core.wasm, a WASI preview 1 module, and make a
# component of it. Expects HERE (the example's directory), WIT and WORLD from the
# caller, which runs under set -euo pipefail; gives it what build-common.sh gives
# (say, run, die, BUILD, OUT, core_to_component) and:
#
#   zig_prerequisites [RELEASE SOURCE]
#       sets ZIG_CMD, the zig to run: $ZIG if set (a command line, e.g. ZIG=zig),
#       else python3 -m ziglang. With RELEASE (e.g. 0.17) it refuses any other zig
#       release, SOURCE being written for that one. Then checks for wasm-tools, says
#       which tools it uses, and puts the WASI reactor adapter in $ADAPTER
#       (wasi-adapter.sh: fetched once with npm, then cached).
#   zig_compile SUBCOMMAND ARG...
#       runs zig SUBCOMMAND ARG... in $HERE, which is to write $BUILD/core.wasm.

source "$HERE/../build-common.sh"

zig_prerequisites() {
    local release="${1:-}" src="${2:-}" pip="ziglang" which="a zig binary" version="" py
    if [ -n "$release" ]; then pip="ziglang==$release.0"; which="a zig $release binary"; fi
    if [ -n "${ZIG:-}" ]; then
        read -r -a ZIG_CMD <<<"$ZIG"
    else
        py="$(command -v python3 || true)"
        [ -n "$py" ] && "$py" -c 'import ziglang' 2>/dev/null \
            || die "zig not found: pip install $pip   (or set ZIG to $which)"
        ZIG_CMD=("$py" -m ziglang)
    fi
    if [ -n "$release" ]; then
        version="$("${ZIG_CMD[@]}" version)"
        case "$version" in
            ("$release".*) ;;
            (*) die "zig is $version; $src is written for $release (pip install $pip)";;
        esac
    fi
    require_wasm_tools
    say "using zig ${version:-$("${ZIG_CMD[@]}" version)}, $(wasm-tools --version)"
    source "$HERE/../wasi-adapter.sh"
}

zig_compile() {
    mkdir -p "$BUILD"
    say "zig $1 -> build/core.wasm"
    (cd "$HERE" && run "${ZIG_CMD[@]}" "$@")
}
