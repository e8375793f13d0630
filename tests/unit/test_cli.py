"""The command line's habits, without a broker: completion, exit codes in --help,
progress bars only where a person watches, decode's exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from rich.console import Console

from fs_bus.cli.main import cli
from fs_bus.cli.progress import TransferBar
from fs_bus.control.records import encode_function
from tests.unit.test_codec import SAMPLE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def complete(words: str, shell: str = "bash") -> list[str]:
    """What the shell would be offered: the completion protocol, run as the script runs it."""
    env = {**os.environ, "_FS_BUS_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)), "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-m", "fs_bus"], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout.splitlines()


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"), ("zsh", "compdef"),
                                           ("fish", "complete --no-files --command fs-bus")])
def test_completion_prints_a_script_for_each_shell(shell, marker):
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0 and marker in result.output and "_FS_BUS_COMPLETE" in result.output


def test_completion_offers_commands_and_option_choices():
    assert "plain,local" in complete("fs-bus lo")
    assert {"plain,decode", "plain,fetch"} <= set(complete("fs-bus "))
    assert "plain,json" in complete("fs-bus sql -o ")


def test_function_names_complete_to_nothing_when_kafka_is_away_and_quickly():
    # Port 9 (discard) has no broker: the prompt must come back, empty, soon after the 2 s budget.
    started = time.monotonic()
    assert [w for w in complete("fs-bus call -b 127.0.0.1:9 up") if w] == []
    assert time.monotonic() - started < 15


def test_help_documents_the_exit_codes():
    out = CliRunner().invoke(cli, ["--help"]).output
    for code in ("0  success", "2  usage error", "3  Kafka cannot be reached", "4  the change is durable"):
        assert code in out


def test_the_progress_bar_draws_for_a_large_artifact_on_a_terminal_and_clears_itself():
    buf = io.StringIO()
    bar = TransferBar("uploading artifact", Console(file=buf, force_terminal=True, width=100), threshold=10)
    for done in (5, 10, 20):
        bar(done, 20)
    assert "uploading artifact" in buf.getvalue()
    assert bar._progress is None  # stopped at 100 %


@pytest.mark.parametrize("terminal, total", [(False, 1 << 30), (True, 100)])
def test_no_progress_bar_for_scripts_or_small_artifacts(terminal, total):
    buf = io.StringIO()
    bar = TransferBar("x", Console(file=buf, force_terminal=terminal, width=100))
    bar(total // 2, total)
    bar(total, total)
    assert buf.getvalue() == ""


def test_decode_prints_json_and_exits_1_when_a_record_is_bad():
    data = b"upper\t" + encode_function(SAMPLE) + b"\n" + b"junk\tnope\n"
    result = CliRunner().invoke(cli, ["decode", "-f", r"%k\t%s\n"], input=data)
    assert result.exit_code == 1
    first = json.loads(result.stdout.splitlines()[0])
    assert first["key"] == "upper" and first["value"]["revision"] == SAMPLE.revision
    assert "record #2 of the input key='junk'" in result.stderr


def test_decode_without_a_format_reads_kcats_default_output_and_value_only_gives_the_avro_json():
    result = CliRunner().invoke(cli, ["decode", "--value-only"], input=encode_function(SAMPLE) + b"\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["name"] == "upper"


def test_decode_exits_2_on_a_format_it_cannot_read():
    result = CliRunner().invoke(cli, ["decode", "-f", "%k%s"], input=b"x")
    assert result.exit_code == 2 and "need something between" in result.stderr


def test_local_status_as_json_says_what_runs_and_exits_1_when_nothing_does(tmp_path):
    result = CliRunner().invoke(cli, ["local", "status", "--dir", str(tmp_path), "-o", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) | {"directory": None} == {
        "directory": None, "broker_running": False, "bootstrap_servers": None, "broker_pid": None,
        "node_running": False, "node_pid": None, "console_url": None, "ok": False}
