"""The ``fs-bus`` command: the ``cli`` group, ``fs-bus node``, ``sql``, ``console`` and
``completion``; the other commands live by subject in ``functions.py`` (call, describe,
logs, fetch), ``records.py`` (produce, consume, decode), ``local.py`` (``fs-bus local``)
and ``author.py`` (init, test), with what they share in ``common.py``.

Exit codes (scripts may rely on them; ``fs-bus --help`` lists them): see EXIT_CODES_HELP.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import threading
from pathlib import Path

import click

from fs_bus import __version__
from fs_bus.cli.author import init_command, test_command  # the author's loop
from fs_bus.cli.common import (
    EXIT_FAILED, EXIT_USAGE, err_console, exit_code, kafka_options, make_console, output_option, parse_labels,
)
from fs_bus.cli.functions import call, describe, fetch, logs
from fs_bus.cli.local import local
from fs_bus.cli.records import consume, decode, produce
from fs_bus.errors import FsBusError, SqlSyntaxError

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  a statement or operation failed (function not found, invalid config, FAILED;
     fs-bus decode: a record could not be decoded; fs-bus local status: not running)
  2  usage error or SQL syntax error (the message points at the position)
  3  Kafka cannot be reached
  4  the change is durable but the nodes did not confirm it in time (or none is alive)
  5  Kafka refused access: bad credentials, or an ACL missing (the message names the
     topic or group and the operation)"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="fs-bus")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def cli(log_level: str) -> None:
    """fs-bus: run stream-processing functions over Kafka, controlled through Kafka."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
@kafka_options
@click.option("--node-id", default=None, help="Stable name of this node (default: the host name). "
              "Give each node on one host its own.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Artifact and compiled-component cache [default: $FS_BUS_CACHE_DIR or ~/.cache/fs-bus].")
@click.option("--heartbeat-interval", type=float, default=2.0, show_default=True, help="Seconds between heartbeats.")
@click.option("--trusted-key", "trusted_keys", multiple=True, envvar="FS_BUS_TRUSTED_KEYS",
              type=click.Path(path_type=Path),
              help="An ed25519 public key (PEM) whose signatures this node accepts; repeatable. With any, the "
                   "node runs only functions signed by one of them [env FS_BUS_TRUSTED_KEYS, space-separated].")
@click.option("--metrics-port", type=click.IntRange(0, 65535), envvar="FS_BUS_METRICS_PORT", default=None,
              help="Serve Prometheus metrics on http://ADDRESS:PORT/metrics (0: any free port) "
                   "[env FS_BUS_METRICS_PORT; default: off].")
@click.option("--metrics-address", envvar="FS_BUS_METRICS_ADDRESS", default="0.0.0.0", show_default=True,
              help="Address the metrics server listens on [env FS_BUS_METRICS_ADDRESS].")
@click.option("--label", "labels", multiple=True, callback=parse_labels, metavar="KEY[=VALUE]",
              help="A label of this node, e.g. zone=a or gpu; repeatable. A function's placement.labels "
                   "runs it only on nodes that have them.")
@click.option("--max-kafka-clients", type=click.IntRange(1), envvar="FS_BUS_MAX_KAFKA_CLIENTS", default=None,
              help="The most Kafka clients the node holds at once (a busy function holds a consumer and a "
                   "producer); beyond it functions wait, and idle ones park to make room "
                   "[env FS_BUS_MAX_KAFKA_CLIENTS; default and upper bound: the process's thread-local keys "
                   "less 64, 960 on Linux].")
def node(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], node_id: str | None,
         cache_dir: Path | None, heartbeat_interval: float, trusted_keys: tuple[Path, ...],
         metrics_port: int | None, metrics_address: str, labels: dict[str, str],
         max_kafka_clients: int | None) -> None:
    """Run a node: follow the control topic and run the functions it describes.

    Its functions' log lines go to the logs topic (read them with fs-bus logs NAME).
    """
    from fs_bus.kafka.settings import KafkaSettings
    from fs_bus.node.node import Node, NodeOptions

    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: every thread's stack to stderr
    try:
        n = Node(KafkaSettings.resolve(bootstrap_servers, kafka_config),
                 NodeOptions(node_id=node_id or "", namespace=namespace, cache_dir=cache_dir,
                             heartbeat_interval_s=heartbeat_interval, trusted_keys=trusted_keys,
                             metrics_port=metrics_port, metrics_address=metrics_address, labels=labels,
                             max_kafka_clients=max_kafka_clients))
        n.run(stop)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        sys.exit(exit_code(exc))


@cli.command()
@kafka_options
@click.option("-e", "--execute", "text", default=None, help="Run these statements and exit.")
@click.option("-f", "--file", "file", type=click.File("r"), default=None, help="Run the statements in FILE and exit.")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the nodes to confirm each change.")
@click.option("--no-wait", is_flag=True, help="Return once each change is durable, without waiting for nodes.")
@output_option
@click.option("--signing-key", type=click.Path(path_type=Path), envvar="FS_BUS_SIGNING_KEY", default=None,
              help="An ed25519 private key (PEM) that signs the functions CREATE FUNCTION uploads "
                   "[env FS_BUS_SIGNING_KEY].")
def sql(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], text: str | None, file,
        timeout: float, no_wait: bool, output: str, signing_key: Path | None) -> None:
    """Manage functions with SQL: CREATE FUNCTION WITH (...), START/STOP/DROP FUNCTION name, SHOW FUNCTIONS,
    DESCRIBE FUNCTION name, START FUNCTION name FROM EARLIEST | LATEST | OFFSET n | TIMESTAMP '...'.

    Without -e or -f, reads statements from standard input when it is piped, else
    starts an interactive shell with history and keyword completion.
    """
    from fs_bus.cli.progress import TransferBar
    from fs_bus.client import FsClient
    from fs_bus.sql.runner import SqlRunner

    if text is not None and file is not None:
        raise click.UsageError("give either -e or -f, not both")
    # Piped output keeps one line per function, whatever the terminal's width.
    console = make_console()
    bar = TransferBar("uploading artifact", err_console)
    try:
        client = FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace, timeout=timeout,
                          kafka_config=kafka_config, signing_key=signing_key, progress=bar)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))
    with client:
        runner = SqlRunner(client, console, wait=not no_wait, timeout=timeout, output=output)
        if text is None and file is None:
            if not sys.stdin.isatty():  # piped statements run as a script, as psql does
                sys.exit(run_script(runner, sys.stdin.read()))
            from fs_bus.cli.repl import repl
            repl(runner)
            return
        script = text if text is not None else file.read()
        sys.exit(run_script(runner, script))


def run_script(runner, script: str) -> int:
    """Run every statement; stop at the first failure and return its exit code."""
    from fs_bus.sql.parser import parse

    try:
        statements = parse(script)
    except SqlSyntaxError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        return EXIT_USAGE
    for stmt in statements:
        try:
            runner.run(stmt)
        except FsBusError as exc:
            return _statement_failed(runner, exc, exit_code(exc))
        except FileNotFoundError as exc:
            return _statement_failed(runner, exc, EXIT_FAILED)
    return 0


def _statement_failed(runner, exc: Exception, code: int) -> int:
    if runner.output == "json":  # scripts get the failure as JSON on stderr too
        import json
        print(json.dumps({"error": str(exc), "type": type(exc).__name__, "exit_code": code}), file=sys.stderr)
    else:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
    return code


@cli.command("console")
@kafka_options
@click.option("--port", type=click.IntRange(0, 65535), default=8089, show_default=True,
              help="The port the console listens on (0: any free port; the address is printed).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address it listens on; 0.0.0.0 shows it to the network (it has no login of its own).")
@click.option("--allow-writes", is_flag=True,
              help="Show STOP / START / DROP / CREATE and accept them; without it the console and its API "
                   "only read. Writes use the console's Kafka principal, so ACLs decide.")
@click.option("--interval", type=click.FloatRange(0.2), default=2.0, show_default=True,
              help="Seconds between refreshes of lag and throughput.")
def console_command(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], port: int, host: str,
            allow_writes: bool, interval: float) -> None:
    """Serve the operator's console: a web page with functions, nodes, partitions, lag,
    throughput and logs, updated live, read from Kafka alone.

    \b
      fs-bus console                      # http://127.0.0.1:8089/, read-only
      fs-bus console --allow-writes       # with STOP / START / DROP / CREATE buttons
    """
    from fs_bus.console.server import ConsoleOptions, ConsoleServer
    from fs_bus.kafka import clients
    from fs_bus.kafka.settings import KafkaSettings

    settings = KafkaSettings.resolve(bootstrap_servers, kafka_config)
    try:
        clients.check_reachable(clients.admin(settings), settings.bootstrap_servers)
        server = ConsoleServer(settings, ConsoleOptions(namespace=namespace, host=host, port=port,
                                                        allow_writes=allow_writes, interval_s=interval))
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    mode = "writes allowed" if allow_writes else "read-only"
    click.echo(f"fs-bus console: {server.url} (namespace {namespace}, {mode}); Ctrl-C stops it", err=True)
    stop.wait()
    server.close()


for _command in (call, describe, logs, fetch, produce, consume, decode, local, init_command, test_command):
    cli.add_command(_command)


SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_FS_BUS_COMPLETE"


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
      bash:  echo 'eval "$(fs-bus completion bash)"' >> ~/.bashrc
      zsh:   echo 'eval "$(fs-bus completion zsh)"' >> ~/.zshrc
      fish:  fs-bus completion fish > ~/.config/fish/completions/fs-bus.fish

    Commands, options and choices complete; function names complete too (for call
    and fetch) when the cluster answers within two seconds.
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "fs-bus", COMPLETE_VAR).source())


def main() -> None:
    cli(prog_name="fs-bus")


if __name__ == "__main__":
    main()
