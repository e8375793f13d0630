"""The interactive SQL shell: history across sessions, keyword completion, multi-line statements."""

from __future__ import annotations

from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import WordCompleter
from prompt_toolkit.history import FileHistory

from fs_bus.errors import FsBusError
from fs_bus.sql.parser import parse

WORDS = ["CREATE", "FUNCTION", "FUNCTIONS", "WITH", "START", "STOP", "DROP", "SHOW", "IF", "EXISTS",
         "'function_path'", "'config_path'"]


def repl(runner) -> None:
    history = Path.home() / ".fs_bus_history"
    session: PromptSession = PromptSession(history=FileHistory(str(history)),
                                           completer=WordCompleter(WORDS, ignore_case=True))
    runner.console.print("fs-bus SQL. End statements with ';'. Ctrl-D to leave.")
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
        if not buffer.rstrip().endswith(";") and buffer.strip().lower() not in ("quit", "exit"):
            continue
        text, buffer = buffer, ""
        if text.strip().lower() in ("quit", "exit"):
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
