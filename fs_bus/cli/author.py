"""The function author's commands: ``fs-bus init`` (a new project) and ``fs-bus test``
(run a function on records, in process, without Kafka)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console

from fs_bus.errors import FsBusError, InvalidConfig, RecordError

err_console = Console(stderr=True)

EXIT_FAILED, EXIT_USAGE = 1, 2


@click.command("test")
@click.argument("function_path", type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The function's config.yaml.")
@click.option("--input", "input_file", type=click.File("r", encoding="utf-8"), default="-", show_default=True,
              help="Records, one per line ('-': stdin).")
@click.option("--input-format", type=click.Choice(["lines", "json"]), default="lines", show_default=True,
              help='lines: each line is a value; json: each line is {"value": ..., "key": ..., "headers": ..., '
                   '"timestamp": ..., "source_id": ..., "partition": ...}.')
@click.option("--state", "state_path", default=None, metavar="FILE",
              help="A JSON state file {store: {key: value}}: the state the function starts with (if FILE "
                   "exists), and where the state after a successful run is written ('-': printed on stdout).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: for people; json: one JSON object per emitted record, for scripts.")
def test_command(function_path: Path, config_path: Path, input_file: TextIO, input_format: str,
                 state_path: str | None, output: str) -> None:
    """Run FUNCTION_PATH (a .wasm component, or a type: python driver's .py file) on
    records, in this process, without Kafka, and print what it emits.

    \b
      echo "to be or not to be" | fs-bus test build/processor.wasm --config config.yaml
      fs-bus test processor.py --config config.yaml --input words.txt --state state.json

    The function runs as on a node: the same runtime, time budget
    (processor-runtime.control-timeout-ms) and memory limit. Each emitted record is
    printed as it would be produced: output index and topic, key, value. After the
    last record a checkpoint is taken (fs-take-checkpoint), as at a node's commit
    point. Exit code 1 when the function fails, naming the record (input line,
    topic[partition]@offset); the state file is then left as it was.
    """
    from fs_bus.testing import FunctionHarness
    from fs_bus.testing.lines import output_json, output_text, parse_record, state_from_json, state_to_json

    _show_guest_output()
    try:
        preset = None
        if state_path not in (None, "-") and Path(state_path).exists():
            try:
                doc = json.loads(Path(state_path).read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise InvalidConfig(f"state file {state_path}: not JSON ({exc.msg}, line {exc.lineno})") from None
            preset = state_from_json(doc, f"state file {state_path}")
        with FunctionHarness(function_path, config_path, state=preset) as fn:
            def show(outputs) -> None:
                for out in outputs:
                    click.echo(json.dumps(output_json(out), ensure_ascii=False) if output == "json" else output_text(out))
                sys.stdout.flush()  # one line per record as it comes, also into a pipe

            line_no = 0
            for line_no, line in enumerate(input_file, start=1):
                line = line.rstrip("\n").removesuffix("\r")
                if input_format == "json" and not line.strip():
                    continue
                where = f"input line {line_no}"
                record = parse_record(line, input_format, where)
                try:
                    show(fn.send_all([record]))
                except RecordError as exc:
                    raise RecordError(f"{where}: {exc}", exc.record) from None
            show(fn.checkpoint())
            if state_path is not None:
                state = json.dumps(state_to_json(fn.state()), ensure_ascii=False, indent=2)
                if state_path == "-":
                    click.echo(state)
                else:
                    Path(state_path).write_text(state + "\n", encoding="utf-8")
                    err_console.print(f"state after {line_no} line(s) written to {state_path}", highlight=False)
    except (FsBusError, FileNotFoundError, ValueError) as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_FAILED)


@click.command("init")
@click.argument("name")
@click.option("--lang", required=True, type=click.Choice(["python", "go", "rust", "c", "js", "python-component"]),
              help="python: a type: python driver class; the others: a WebAssembly component of the processor world.")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where to write the project [default: ./NAME]; it must not exist or be empty.")
def init_command(name: str, lang: str, directory: Path | None) -> None:
    """Write a ready project for a new function NAME: its source, config.yaml, a build.sh
    (components), a test against fs_bus.testing and a README saying how to build, test
    and deploy it.

    \b
      fs-bus init wordcount --lang go && cd wordcount
      ./build.sh && python3 -m pytest -q
    """
    from fs_bus.scaffold import init_project

    try:
        target = init_project(name, lang, directory)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_FAILED)
    build = "./build.sh && " if lang != "python" else ""
    err_console.print(f"created {target}/ ({lang}); next:\n  cd {target} && {build}python3 -m pytest -q",
                      highlight=False)


def _show_guest_output() -> None:
    """The function's stdout and stderr lines, on our stderr as they come, without log decoration."""
    guest = logging.getLogger("fs_bus.guest")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    guest.addHandler(handler)
    guest.setLevel(logging.INFO)
    guest.propagate = False
