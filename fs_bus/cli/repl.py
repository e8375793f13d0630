"""The interactive SQL shell: history across sessions, completion that follows the
grammar (keywords where they fit, function names where a name goes), multi-line
statements, and ``help``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.history import FileHistory

from fs_bus.errors import FsBusError
from fs_bus.sql.parser import parse

HELP = """\
Statements (end each with ';'; keywords in any case):
  CREATE FUNCTION WITH ('function_path'='f.wasm', 'config_path'='config.yaml');
  START FUNCTION name;                STOP FUNCTION name;
  START FUNCTION name FROM EARLIEST | LATEST | OFFSET n | TIMESTAMP '2026-11-30T00:00:00Z';
  DROP FUNCTION [IF EXISTS] name;
  SHOW FUNCTIONS [[LIKE] 'pattern' | name];   DESCRIBE FUNCTION name;
  CREATE OR REPLACE FUNCTION WITH (..., ['mode'='shadow']);   ROLLBACK FUNCTION name [TO REVISION n];
  SHOW FUNCTION HISTORY name;   SHOW FUNCTION DIFF name;   PROMOTE FUNCTION name;   DROP SHADOW name;
help: this text; quit or exit (or Ctrl-D): leave. Tab completes keywords and function names."""

STATEMENTS = ["CREATE", "START", "STOP", "DROP", "SHOW", "DESCRIBE", "ROLLBACK", "PROMOTE", "help", "quit"]
NAME = object()  # where a function name goes

# What may follow a statement's words so far (upper-cased); NAME marks a function name.
_NEXT: dict[tuple[str, ...], list] = {
    (): STATEMENTS,
    ("CREATE",): ["OR", "FUNCTION"],
    ("CREATE", "OR"): ["REPLACE"],
    ("CREATE", "OR", "REPLACE"): ["FUNCTION"],
    ("ROLLBACK",): ["FUNCTION"],
    ("ROLLBACK", "FUNCTION"): [NAME],
    ("ROLLBACK", "FUNCTION", NAME): ["TO"],
    ("ROLLBACK", "FUNCTION", NAME, "TO"): ["REVISION"],
    ("PROMOTE",): ["FUNCTION"],
    ("PROMOTE", "FUNCTION"): [NAME],
    ("SHOW", "FUNCTION"): ["HISTORY", "DIFF"],
    ("SHOW", "FUNCTION", "HISTORY"): [NAME],
    ("SHOW", "FUNCTION", "DIFF"): [NAME],
    ("DROP", "SHADOW"): [NAME],
    ("CREATE", "FUNCTION"): ["WITH"],
    ("CREATE", "FUNCTION", "WITH"): ["('function_path'=", "'config_path'="],
    ("START",): ["FUNCTION"],
    ("STOP",): ["FUNCTION"],
    ("DESCRIBE",): ["FUNCTION"],
    ("DROP",): ["FUNCTION", "SHADOW"],
    ("SHOW",): ["FUNCTIONS", "FUNCTION"],
    ("START", "FUNCTION"): [NAME],
    ("STOP", "FUNCTION"): [NAME],
    ("DESCRIBE", "FUNCTION"): [NAME],
    ("DROP", "FUNCTION"): ["IF", NAME],
    ("DROP", "FUNCTION", "IF"): ["EXISTS"],
    ("DROP", "FUNCTION", "IF", "EXISTS"): [NAME],
    ("SHOW", "FUNCTIONS"): ["LIKE", NAME],
    ("START", "FUNCTION", NAME): ["FROM"],
    ("START", "FUNCTION", NAME, "FROM"): ["EARLIEST", "LATEST", "OFFSET", "TIMESTAMP"],
}


def suggest(before_cursor: str, names: Callable[[], Iterable[str]]) -> list[str]:
    """What may be typed next, given the text before the cursor: keywords the grammar allows
    there, or function names where a name goes (``names`` is asked only then). Pure."""
    statement = before_cursor.rsplit(";", 1)[-1]
    words = statement.split()
    partial = "" if not statement or statement[-1].isspace() else (words.pop() if words else "")
    if len(words) > 3 and [w.upper() for w in words[:3]] == ["CREATE", "OR", "REPLACE"]:
        words = words[:1] + words[3:]  # CREATE OR REPLACE FUNCTION goes on as CREATE FUNCTION
    if words and words[0].upper() == "CREATE" and len(words) > 3:
        words = words[:3]  # inside CREATE's properties: the two property names
    key: list = []
    for i, w in enumerate(words):
        up = w.upper()
        # The third word of START FUNCTION x (or ROLLBACK FUNCTION x) is a name, whatever it is.
        key.append(NAME if (i == 2 and key[:2] in (["START", "FUNCTION"], ["ROLLBACK", "FUNCTION"])) else up)
    options = _NEXT.get(tuple(key), [])
    out: list[str] = []
    for option in options:
        candidates = list(names()) if option is NAME else [option]
        out += [c for c in candidates if c.lower().startswith(partial.lower())]
    return out


class StatementCompleter(Completer):
    """``suggest`` for prompt_toolkit; function names are read at most every few seconds."""

    def __init__(self, list_names: Callable[[], list[str]], ttl_s: float = 5.0):
        self._list_names, self._ttl_s = list_names, ttl_s
        self._names: list[str] = []
        self._read_at = float("-inf")

    def names(self) -> list[str]:
        if time.monotonic() - self._read_at > self._ttl_s:
            try:
                self._names = self._list_names()
            except Exception:  # noqa: BLE001 - completion never breaks the prompt
                pass
            self._read_at = time.monotonic()
        return self._names

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        partial = "" if not text or text[-1].isspace() else text.split()[-1] if text.split() else ""
        for option in suggest(text, self.names):
            yield Completion(option, start_position=-len(partial))


def repl(runner) -> None:
    history = Path.home() / ".fs_bus_history"
    session: PromptSession = PromptSession(history=FileHistory(str(history)),
                                           completer=StatementCompleter(runner.client.function_names))
    runner.console.print("fs-bus SQL. End statements with ';'. 'help' lists them; Ctrl-D to leave.")
    buffer = ""
    while True:
        try:
            line = session.prompt("fs-bus> " if not buffer else "    ... ")
        except KeyboardInterrupt:
            buffer = ""
            continue
        except EOFError:
            return
        buffer += line + "\n"
        if not buffer.strip():
            buffer = ""
            continue
        word = buffer.strip().rstrip(";").strip().lower()
        if word in ("help", "\\h", "?"):
            runner.console.print(HELP, highlight=False, markup=False)
            buffer = ""
            continue
        if not buffer.rstrip().endswith(";") and word not in ("quit", "exit"):
            continue
        text, buffer = buffer, ""
        if word in ("quit", "exit"):
            return
        try:
            for stmt in parse(text):
                runner.run(stmt)
        except FsBusError as exc:
            runner.console.print(f"[red]{exc}[/]", highlight=False)
        except FileNotFoundError as exc:
            runner.console.print(f"[red]{exc}[/]", highlight=False)
        except Exception as exc:  # noqa: BLE001 - a bug below must not end the user's session
            runner.console.print(f"[red]unexpected error ({type(exc).__name__}): {exc}[/]", highlight=False)
