"""The interactive shell (issue 17, point 9): completion follows the grammar and knows
function names, `help` lists the statements, and no error ends the session."""

from __future__ import annotations

import io

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from fs_bus.cli.repl import repl, suggest
from fs_bus.errors import FunctionNotFound
from fs_bus.sql.parser import ShowFunctions, StopFunction, parse

NAMES = ["upper", "word-count"]


@pytest.mark.parametrize("typed, offered", [
    ("", ["CREATE", "START", "STOP", "DROP", "SHOW", "DESCRIBE", "ROLLBACK", "PROMOTE", "help", "quit"]),
    ("CREATE OR ", ["REPLACE"]),
    ("create or replace function ", ["WITH"]),
    ("ROLLBACK FUNCTION u", ["upper"]),
    ("ROLLBACK FUNCTION upper ", ["TO"]),
    ("ROLLBACK FUNCTION upper TO ", ["REVISION"]),
    ("SHOW FUNCTION ", ["HISTORY", "DIFF"]),
    ("SHOW FUNCTION HISTORY w", ["word-count"]),
    ("DROP SHADOW ", ["upper", "word-count"]),
    ("PROMOTE FUNCTION ", ["upper", "word-count"]),
    ("DESC", ["DESCRIBE"]),
    ("describe ", ["FUNCTION"]),
    ("STOP FUNCTION w", ["word-count"]),
    ("START FUNCTION upper ", ["FROM"]),
    ("START FUNCTION upper FROM ", ["EARLIEST", "LATEST", "OFFSET", "TIMESTAMP"]),
    ("START FUNCTION upper FROM e", ["EARLIEST"]),
    ("DROP FUNCTION ", ["IF", "upper", "word-count"]),
    ("DROP FUNCTION IF EXISTS u", ["upper"]),
    ("SHOW FUNCTIONS ", ["LIKE", "upper", "word-count"]),
    ("SHOW F", ["FUNCTIONS", "FUNCTION"]),
    ("SHOW FUNCTIONS; STOP FUNCTION ", ["upper", "word-count"]),
])
def test_completion_offers_what_the_grammar_allows_there(typed, offered):
    assert suggest(typed, lambda: NAMES) == offered


def test_function_names_are_not_read_where_no_name_goes():
    def boom():
        raise AssertionError("names read for a keyword position")
    assert suggest("CREATE FUNCTION ", boom) == ["WITH"]


@pytest.mark.parametrize("text, pattern", [
    ("SHOW FUNCTIONS", None), ("SHOW FUNCTIONS 'up*'", "up*"), ("show functions like 'up%'", "up*"),
    ("SHOW FUNCTIONS upper", "upper"),
])
def test_show_functions_takes_a_pattern(text, pattern):
    assert parse(text) == [ShowFunctions(pattern)]


class FakeRunner:
    """Stands in for SqlRunner: the shell's loop is what is tested here, not Kafka."""

    def __init__(self, fail_with: Exception):
        self.console = Console(file=io.StringIO(), width=200)
        self.fail_with = fail_with
        self.ran: list = []

        class Client:
            def function_names(self):
                return NAMES
        self.client = Client()

    def run(self, stmt):
        self.ran.append(stmt)
        if len(self.ran) == 1:
            raise self.fail_with


@pytest.mark.parametrize("error", [RuntimeError("a bug"), FunctionNotFound("x")])
def test_help_lists_the_statements_and_no_error_ends_the_session(error, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    runner = FakeRunner(error)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text("help\nSTOP FUNCTION x;\nSTOP FUNCTION upper;\nquit\n")
        repl(runner)
    shown = runner.console.file.getvalue()
    assert "START FUNCTION name FROM EARLIEST" in shown and "SHOW FUNCTIONS" in shown
    assert runner.ran == [StopFunction("x"), StopFunction("upper")]  # the second ran after the first failed
    assert str(error) in shown
