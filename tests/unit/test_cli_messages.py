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


def test_a_text_answer_of_call_is_a_line_and_a_binary_one_is_left_alone():
    from fs_bus.cli.functions import as_line

    assert as_line(b"2") == b"2\n"
    assert as_line(b"2\n") == b"2\n"
    assert as_line(b"\xff\x00") == b"\xff\x00"


def test_local_down_says_so_when_nothing_runs(tmp_path):
    from click.testing import CliRunner

    from fs_bus.cli.main import cli

    r = CliRunner().invoke(cli, ["local", "down", "--dir", str(tmp_path / "nothing")])
    assert r.exit_code == 0
    assert "nothing was running" in r.output
