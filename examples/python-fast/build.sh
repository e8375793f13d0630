#!/usr/bin/env bash
# Build build/processor.wasm, a WebAssembly component of fs-bus's world
# `fast-processor` (wit/fs-bus/batch.wit: records in batches, as bytes), from
# app.py and the Python SDK (sdk/python/fs_bus_guest.py) with componentize-py.
#
# componentize-py bundles a CPython interpreter with app.py (about 18 MB); a
# node compiles it once and keeps the compiled form in its cache.
#
# The steps are ../componentize-py.sh's, shared with ../python-component; this
# script says which WIT world to build and where app.py's modules are.
#
# Needs python3 >= 3.10 with venv/pip. componentize-py 0.25.1 is used from PATH
# if that is the installed version, otherwise it is installed once into a
# virtualenv in the cache directory ($FS_BUS_CACHE_DIR, default ~/.cache/fs-bus).
# Safe to run again: the output is rewritten.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WIT="$(cd "$HERE/../../wit/fs-bus" && pwd)"
WORLD="fast-processor"
PY_PATHS=("$HERE" "$(cd "$HERE/../../sdk/python" && pwd)")   # componentize-py -p: app.py, the SDK

source "$HERE/../componentize-py.sh"
