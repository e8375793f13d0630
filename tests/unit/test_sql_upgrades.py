"""The upgrade statements as `fs-bus sql` runs and prints them: the history table, the diff,
and CREATE OR REPLACE's properties. The client is a stand-in: what crosses Kafka is tested
in tests/integration/test_upgrades.py."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from fs_bus.client.models import RevisionInfo
from fs_bus.control.shadow import ShadowDiff
from fs_bus.sql.parser import parse
from fs_bus.sql.runner import SqlRunner, StatementError

HISTORY = [
    RevisionInfo(1, 1, 1_796_000_000_000, "me@host", "a" * 64, "c" * 64, "created", "create"),
    RevisionInfo(2, 4, 1_796_000_060_000, "me@host", "b" * 64, "d" * 64, "artifact aaaaaaaa -> bbbbbbbb", None),
    RevisionInfo(3, 5, 1_796_000_060_000, "fs-bus (auto-rollback)", "a" * 64, "c" * 64,
                 "artifact bbbbbbbb -> aaaaaaaa", "auto-rollback to 1: revision 2 failed: trap", current=True),
]


class Client:
    def __init__(self):
        self.calls: list = []

    def function_history(self, name):
        self.calls.append(("history", name))
        return HISTORY

    def function_diff(self, name):
        return ShadowDiff(name, 1, 2, identical=60, different=20, only_live=20, only_shadow=0,
                          examples=[{"source": "in/0/3", "offset": 3, "old": ["k:1"], "new": ["k:10"]}])

    def rollback_function(self, name, revision, **kw):
        self.calls.append(("rollback", name, revision))

    def create_function(self, function_path, config_path, **kw):
        self.calls.append(("create", kw["replace"], kw["shadow"]))
        return "f"


def run(text: str, output: str = "table") -> tuple[str, Client]:
    client = Client()
    console = Console(file=io.StringIO(), width=220)
    runner = SqlRunner(client, console, output=output)
    for stmt in parse(text):
        runner.run(stmt)
    return console.file.getvalue(), client


def test_show_function_history_is_a_table_oldest_first_with_the_current_one_marked():
    out, _ = run("SHOW FUNCTION HISTORY f")
    lines = out.splitlines()
    assert "history of f" in lines[0]
    header = next(line for line in lines if "revision" in line)
    for column in ("revision", "when (UTC)", "by", "artifact sha256", "config digest", "what changed", "reason"):
        assert column in header
    rows = [line for line in lines if "me@host" in line or "auto-rollback)" in line]
    assert [r.split("│")[1].strip() for r in rows] == ["1", "2", "3 *"]
    assert "2026-11-30 00:53:20" in rows[0] and "aaaaaaaaaaaaaaaa" in rows[0]
    assert "auto-rollback to 1" in out and "3 revision(s); * the current one" in out


def test_show_function_history_as_json():
    out, _ = run("SHOW FUNCTION HISTORY f", "json")
    doc = json.loads(out)
    assert doc["statement"] == "SHOW FUNCTION HISTORY" and [r["rev"] for r in doc["revisions"]] == [1, 2, 3]
    assert doc["revisions"][2]["current"] is True


def test_show_function_diff_counts_then_examples():
    out, _ = run("SHOW FUNCTION DIFF f")
    assert "live revision 1 vs shadow revision 2" in out
    assert "60" in out and "first differences" in out and "k:10" in out
    doc = json.loads(run("SHOW FUNCTION DIFF f", "json")[0])
    assert (doc["identical"], doc["different"], doc["only_live"], doc["only_shadow"]) == (60, 20, 20, 0)


def test_rollback_says_where_to():
    out, client = run("ROLLBACK FUNCTION f TO REVISION 1; ROLLBACK FUNCTION f")
    assert client.calls == [("rollback", "f", 1), ("rollback", "f", None)]
    assert "rolled back f to revision 1" in out


@pytest.mark.parametrize("text, flags", [
    ("CREATE OR REPLACE FUNCTION WITH ('function_path'='f.wasm', 'config_path'='c.yaml')", (True, False)),
    ("CREATE OR REPLACE FUNCTION WITH ('function_path'='f.wasm', 'config_path'='c.yaml', 'mode'='shadow')",
     (False, True)),
    ("CREATE FUNCTION WITH ('function_path'='f.wasm', 'config_path'='c.yaml')", (False, False)),
])
def test_create_or_replace_and_shadow_mode(text, flags):
    _, client = run(text)
    assert client.calls == [("create", *flags)]


@pytest.mark.parametrize("text, message", [
    ("CREATE FUNCTION WITH ('function_path'='f.wasm', 'config_path'='c.yaml', 'mode'='shadow')",
     "it needs CREATE OR REPLACE FUNCTION"),
    ("CREATE OR REPLACE FUNCTION WITH ('function_path'='f.wasm', 'config_path'='c.yaml', 'mode'='canary')",
     "use 'replace' (the default) or 'shadow'"),
])
def test_create_properties_refused(text, message):
    with pytest.raises(StatementError, match=re.escape(message)):
        run(text)
