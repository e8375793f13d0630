"""The commands about one function: ``fs-bus call``, ``describe``, ``logs`` and ``fetch``."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from fs_bus.cli.common import complete_function_names, err_console, exit_code, kafka_options, make_console, output_option
from fs_bus.errors import FsBusError


@click.command()
@kafka_options
@click.argument("name", shell_complete=complete_function_names)
@click.argument("payload", required=False)
@click.option("--payload-file", type=click.File("rb"), default=None, help="Read the payload from a file ('-': stdin).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the answer.")
@click.option("--raw", is_flag=True, help="Write the answer's bytes exactly, without the newline a text answer gets.")
def call(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], name: str, payload: str | None,
         payload_file, timeout: float, raw: bool) -> None:
    """Call function NAME's fs-custom export with PAYLOAD and print its answer.

    The instance owning the function's first input partition answers, with that
    partition's state. A text answer is printed as a line; a binary one (or any,
    with --raw) as its bytes.
    """
    from fs_bus.client import FsClient

    if (payload is None) == (payload_file is None):
        raise click.UsageError("give the payload as an argument or with --payload-file, not both")
    data = payload.encode() if payload is not None else payload_file.read()
    try:
        with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace, timeout=timeout,
                      kafka_config=kafka_config) as client:
            answer = client.call_function(name, data, timeout=timeout)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))
    sys.stdout.buffer.write(answer if raw else as_line(answer))
    sys.stdout.flush()


def as_line(answer: bytes) -> bytes:
    """A text answer ends with a newline, as every line a shell prints should; bytes that
    are not UTF-8 text are binary and are left exactly as they are."""
    try:
        answer.decode("utf-8")
    except UnicodeDecodeError:
        return answer
    return answer if answer.endswith(b"\n") else answer + b"\n"


@click.command()
@kafka_options
@click.argument("name", shell_complete=complete_function_names)
@output_option
def describe(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], name: str, output: str) -> None:
    """Show function NAME: its record and config, each node's state and partitions, and the lag per partition."""
    import dataclasses
    import json

    from fs_bus.client import FsClient
    from fs_bus.sql.runner import render_description

    try:
        with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace, kafka_config=kafka_config) as client:
            description = client.describe_function(name)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))
    if output == "json":
        click.echo(json.dumps(dataclasses.asdict(description), indent=2))
        return
    console = make_console()
    for part in render_description(description):
        console.print(part, highlight=False)


@click.command()
@kafka_options
@click.argument("name", shell_complete=complete_function_names)
@click.option("-f", "--follow", is_flag=True, help="After the recent lines, print new ones as they come (Ctrl-C stops).")
@click.option("--since", default="1h", show_default=True,
              help="From how far back: a duration (30s, 10m, 2h, 1d) or a time (2026-11-30T05:00:00Z).")
@click.option("-n", "--lines", "last", type=click.IntRange(0), default=100, show_default=True,
              help="Print at most the last N lines of that window (0: all of them).")
@output_option
def logs(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], name: str, follow: bool, since: str,
         last: int, output: str) -> None:
    """Print function NAME's log lines: what its instances wrote to stdout and stderr
    (a Python function's print and logging too), with the node and partition of each.

    \b
      fs-bus logs counter                 # the last 100 lines of the last hour, then exit
      fs-bus logs counter -f --since 10m  # the last 10 minutes, then follow
      fs-bus logs counter -o json | jq -r 'select(.stream == "stderr") | .line'
    """
    import dataclasses
    import json

    from fs_bus.clock import now_ms
    from fs_bus.kafka import clients
    from fs_bus.kafka.settings import KafkaSettings
    from fs_bus.kafka.topics import Topics
    from fs_bus.observability.tail import LogTail, format_line, parse_since

    def emit(line) -> None:
        if output == "json":
            click.echo(json.dumps({**dataclasses.asdict(line), "time": line.time}, ensure_ascii=False))
        else:
            click.echo(format_line(line))

    try:
        since_ms = parse_since(since, now_ms())
    except FsBusError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    settings = KafkaSettings.resolve(bootstrap_servers, kafka_config)
    try:
        clients.check_reachable(clients.admin(settings), settings.bootstrap_servers)
        consumer = clients.end_reader(settings, "logs")
        try:
            tail = LogTail(consumer, Topics(namespace).logs, name)  # first: a namespace without logs says so
            _require_function(settings, namespace, name)
            for line in tail.recent(since_ms, last or None):
                emit(line)
            sys.stdout.flush()
            if follow:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                try:
                    tail.follow(lambda ln: (emit(ln), sys.stdout.flush()), stop.is_set)
                except KeyboardInterrupt:
                    pass
        finally:
            consumer.close()
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))


def _require_function(settings, namespace: str, name: str) -> None:
    """Raise FunctionNotFound unless the control topic has ``name``: a typo in a name
    must not look like a function that logged nothing."""
    from fs_bus.control.store import read_control
    from fs_bus.errors import FunctionNotFound
    from fs_bus.kafka import clients
    from fs_bus.kafka.log import TopicReader
    from fs_bus.kafka.topics import Topics

    reader = TopicReader(clients.consumer(settings, "logs"), Topics(namespace).control)
    try:
        state = read_control(reader)
    finally:
        reader.close()
    if name not in state.table:
        raise FunctionNotFound(name)


@click.command()
@kafka_options
@click.argument("name", shell_complete=complete_function_names)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Where to write it ('-': stdout) [default: NAME.wasm, or NAME.fsb for Python modules].")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the chunks.")
def fetch(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], name: str, out: str | None,
          timeout: float) -> None:
    """Download function NAME's artifact from Kafka, as a node does (sha256-checked).

    A WebAssembly function gives its .wasm component; a type: python function the
    bundle of its modules. Shows a progress bar for large artifacts on a terminal.
    """
    from fs_bus.cli.progress import TransferBar
    from fs_bus.client import FsClient
    from fs_bus.control.records import ArtifactKind

    bar = TransferBar(f"downloading {name}", err_console)
    try:
        with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace, timeout=timeout,
                      kafka_config=kafka_config, progress=bar) as client:
            manifest, data = client.download_artifact(name, timeout=timeout)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))
    finally:
        bar.close()
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(out or f"{name}{'.wasm' if manifest.kind is ArtifactKind.WASM_COMPONENT else '.fsb'}")
    path.write_bytes(data)
    err_console.print(f"{path}: {len(data)} bytes, sha256 {manifest.sha256}", highlight=False)
