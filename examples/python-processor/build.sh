#!/usr/bin/env bash
# "Build" the python-processor example: a type: python function has no build
# step (the node runs counter.py as it is), so this checks what a build would:
# both modules compile, and the counter gives the expected output on a sample,
# run here in memory by main.py --check. Needs python3 >= 3.11 with fs-bus
# installed (pip install fs-bus, or pip install -e . in a checkout).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "$PY not found: install Python >= 3.11"
"$PY" -c 'import fs_api, fs_client' 2>/dev/null \
    || die "fs-bus is not importable by $PY: pip install -e . from the repository root"

say "compile counter.py main.py"
"$PY" - "$HERE" <<'PY'
import sys, pathlib
for name in ("counter.py", "main.py"):
    path = pathlib.Path(sys.argv[1]) / name
    compile(path.read_text(), str(path), "exec")
PY
say "run the counter on a sample"
GOT="$("$PY" "$HERE/main.py" --check)"
WANT='{"total_processed": 1, "counter_map": {"hello": 2, "world": 1}}
{"total_processed": 2, "counter_map": {"hello": 3}}'
[ "$GOT" = "$WANT" ] || die "the counter printed
$GOT
expected
$WANT"
printf '%s\n' "$GOT"
say "ok: register it with: python3 $HERE/main.py"
