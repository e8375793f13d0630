"""Messages reach pipes and files whole (issue 17, point 11): rich wrapped them at 80
columns when the stream was not a terminal, cutting 'did you mean' in two."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_an_error_longer_than_80_columns_stays_on_one_line_when_captured():
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run([sys.executable, "-m", "fs_bus", "sql", "-b", "127.0.0.1:1", "-e",
                           "CREATE FUNCTION WITH ('functon_path'='x.wasm', 'config_path'='config.yaml')"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env={**env, "PYTHONPATH": ROOT})
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines == ["error: CREATE FUNCTION: unknown property 'functon_path'; did you mean 'function_path'?"]
