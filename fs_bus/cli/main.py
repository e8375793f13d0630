"""The ``fs-bus`` command.

Exit codes (scripts may rely on them; ``fs-bus --help`` lists them): see EXIT_CODES_HELP.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click
from rich.console import Console

from fs_bus import __version__
from fs_bus.errors import AccessDenied, FsBusError, KafkaUnavailable, SqlSyntaxError, WaitTimeout
from fs_bus.kafka.settings import ENV_BOOTSTRAP, ENV_NAMESPACE

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_TIMEOUT, EXIT_DENIED = 1, 2, 3, 4, 5



def make_console(stderr: bool = False) -> Console:
    """A terminal gets rich's wrapping at its width; a pipe or a file gets every message
    whole on its own line (a script or a log must not see 'did you mean' cut in two),
    and tables up to 200 columns wide."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=200, soft_wrap=True)


err_console = make_console(stderr=True)


def exit_code(exc: FsBusError) -> int:
    if isinstance(exc, SqlSyntaxError):
        return EXIT_USAGE
    if isinstance(exc, AccessDenied):
        return EXIT_DENIED
    if isinstance(exc, KafkaUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(exc, WaitTimeout):
        return EXIT_TIMEOUT
    return EXIT_FAILED


def complete_function_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Function names for shell completion, read from the control topic; nothing if Kafka is slow or away."""
    import os
    import threading

    names: list[str] = []

    def read() -> None:
        from fs_bus.client import FsClient

        try:
            with FsClient(bootstrap_servers=ctx.params.get("bootstrap_servers") or os.environ.get(ENV_BOOTSTRAP),
                          namespace=ctx.params.get("namespace")) as client:
                names.extend(f.name for f in client.show_functions().functions)
        except Exception:  # completion must never print a traceback into the user's prompt
            pass

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(2.0)
    return [n for n in list(names) if n.startswith(incomplete)]


def kafka_options(f):
    f = click.option("--namespace", envvar=ENV_NAMESPACE, default="fs-bus", show_default=True,
                     help=f"Topic prefix of this fs-bus cluster [env {ENV_NAMESPACE}].")(f)
    f = click.option("--bootstrap-servers", "-b", envvar=ENV_BOOTSTRAP, default="127.0.0.1:9092",
                     show_default=True, help=f"Kafka bootstrap servers [env {ENV_BOOTSTRAP}].")(f)
    f = click.option("--kafka-config", "-X", "kafka_config", multiple=True, callback=_properties, metavar="KEY=VALUE",
                     help="A librdkafka property for every Kafka client (security.protocol=SASL_SSL, ...); "
                          "repeatable; FS_BUS_KAFKA_<KEY> variables do the same and keep secrets off the "
                          "command line.")(f)
    return f


def _properties(_ctx, _param, values: tuple[str, ...]) -> dict[str, str]:
    props = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        props[key.strip()] = value
    return props


def output_option(f):
    return click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
                        help="table: for people; json: one JSON object per result on its own line, for scripts.")(f)


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
def node(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], node_id: str | None,
         cache_dir: Path | None, heartbeat_interval: float, trusted_keys: tuple[Path, ...],
         metrics_port: int | None, metrics_address: str) -> None:
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
    try:
        n = Node(KafkaSettings.resolve(bootstrap_servers, kafka_config),
                 NodeOptions(node_id=node_id or "", namespace=namespace, cache_dir=cache_dir,
                             heartbeat_interval_s=heartbeat_interval, trusted_keys=trusted_keys,
                             metrics_port=metrics_port, metrics_address=metrics_address))
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


@cli.command()
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


@cli.command()
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


@cli.command()
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


@cli.command()
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


@cli.command()
@kafka_options
@click.argument("topic")
@click.argument("values", nargs=-1)
@click.option("-k", "--key", default=None, help="The key of every record [default: none].")
@click.option("-K", "--key-separator", default=None, metavar="SEP",
              help="Each line is KEY<SEP>VALUE (as kcat -K); a line without SEP is all value.")
@click.option("-p", "--partition", type=click.IntRange(0), default=None,
              help="Write to this partition [default: by key, as Kafka's partitioner does].")
def produce(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], topic: str,
            values: tuple[str, ...], key: str | None, key_separator: str | None, partition: int | None) -> None:
    """Write records to TOPIC: each VALUE, or else each line of standard input.

    \b
      fs-bus produce upper-input hello world        # two records
      echo "hello world hello" | fs-bus produce python-processor-input
      printf 'k1:a\\nk2:b\\n' | fs-bus produce -K : some-topic

    Returns once the broker acknowledged every record (acks=all); says how many on stderr.
    """
    from fs_bus.inspect.console import produce as write, split_key
    from fs_bus.kafka import clients
    from fs_bus.kafka.settings import KafkaSettings

    if values and key_separator:
        raise click.UsageError("--key-separator splits lines of standard input; give VALUES or -K, not both")
    lines = [v.encode() for v in values] if values else sys.stdin.buffer.read().splitlines()
    sep = key_separator.encode() if key_separator else None
    fixed = key.encode() if key is not None else None
    settings = KafkaSettings.resolve(bootstrap_servers, kafka_config)
    try:
        clients.check_reachable(clients.admin(settings), settings.bootstrap_servers)
        n = write(settings, topic, (split_key(line, sep, fixed) for line in lines), partition)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))
    err_console.print(f"produced {n} record(s) to {topic}", highlight=False)


@cli.command()
@kafka_options
@click.argument("topic")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing records as they arrive (Ctrl-C stops); starts at the end unless --from-beginning "
                   "or --offset says otherwise.")
@click.option("--from-beginning", is_flag=True, help="Start at each partition's first record (--offset beginning).")
@click.option("--offset", "offset", default=None, metavar="WHERE",
              help="Where to start on every partition: beginning, end, an offset (42) or the last N records (-10) "
                   "[default: beginning; with --follow: end].")
@click.option("-n", "--count", type=click.IntRange(1), default=None,
              help="Stop after N records (waiting for them with --follow).")
@click.option("--print-key", is_flag=True, help="Print KEY<TAB>VALUE instead of the value alone.")
@output_option
def consume(bootstrap_servers: str, namespace: str, kafka_config: dict[str, str], topic: str, follow: bool,
            from_beginning: bool, offset: str | None, count: int | None, print_key: bool, output: str) -> None:
    """Print the records of TOPIC, one per line, from every partition.

    Without --follow it prints what is there and exits (as kcat -C -e).

    \b
      fs-bus consume upper-output                       # everything so far, then exit
      fs-bus consume upper-output -f                     # new records as they come
      fs-bus consume python-processor-output -n 1 -f --from-beginning
      fs-bus consume upper-output -o json | jq -r .value
    """
    import json

    from fs_bus.inspect.console import StartOffset, as_json, consume as read
    from fs_bus.kafka import clients
    from fs_bus.kafka.settings import KafkaSettings

    if from_beginning and offset is not None:
        raise click.UsageError("give --from-beginning or --offset, not both")
    try:
        start = StartOffset.parse(offset) if offset else StartOffset("beginning" if from_beginning or not follow
                                                                     else "end")
    except FsBusError as exc:
        raise click.BadParameter(str(exc), param_hint="--offset") from None
    settings = KafkaSettings.resolve(bootstrap_servers, kafka_config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = sys.stdout.buffer
    try:
        clients.check_reachable(clients.admin(settings), settings.bootstrap_servers)
        for msg in read(settings, topic, start, follow, count, stop.is_set):
            if output == "json":
                out.write(json.dumps(as_json(msg), ensure_ascii=False).encode() + b"\n")
            else:
                if print_key:
                    out.write((msg.key() or b"") + b"\t")
                out.write((msg.value() or b"") + b"\n")
            out.flush()
    except KeyboardInterrupt:
        pass
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))


@cli.command()
@click.argument("file", type=click.File("rb"), default="-")
@click.option("-f", "--format", "fmt", default=None, metavar="FORMAT",
              help="The -f format kcat printed with, e.g. '%t %p %o %k\\t%s\\n' [default: kcat's own "
                   "(a value per line), or '%k\\t%s\\n' when lines start with a key].")
@click.option("--value-only", is_flag=True,
              help="Print only each value, as one line of Avro JSON: what `kcat -P` can write back.")
@click.option("--pretty", is_flag=True, help="Indent the JSON.")
def decode(file, fmt: str | None, value_only: bool, pretty: bool) -> None:
    """Turn kcat's output of an fs-bus topic (control, status) into JSON, one record per line.

    \b
      kcat -C -b HOST:PORT -t fs-bus.control -e -q -f '%k\\t%s\\n' | fs-bus decode
      kcat -C -b HOST:PORT -t fs-bus.control -e -q -f '%t %p %o %k\\t%s\\n' \\
        | fs-bus decode -f '%t %p %o %k\\t%s\\n'

    Values may be Avro binary (as fs-bus writes them) or Avro JSON (as a person may
    produce them). A record that cannot be decoded is reported on stderr with its
    topic, partition and offset when the format has %t %p %o, and the rest are still
    printed; the exit code is then 1.
    """
    import json

    from fs_bus.inspect.decode import BadRecord, decode_stream
    from fs_bus.inspect.kcat import DEFAULT_FORMAT, FormatError

    data = file.read()
    if fmt is None:
        starts_with_value = data[:2] == b"\xc3\x01" or data.lstrip()[:1] == b"{" or not data
        fmt = DEFAULT_FORMAT if starts_with_value else "%k\\t%s\\n"
    bad = 0
    try:
        for item in decode_stream(data, fmt):
            if isinstance(item, BadRecord):
                bad += 1
                err_console.print(f"[red]error:[/] {item}", highlight=False, soft_wrap=True)
                continue
            doc = item["value"] if value_only else item
            click.echo(json.dumps(doc, indent=2 if pretty else None, ensure_ascii=False))
    except FormatError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FAILED if bad else 0)


@cli.group()
def local() -> None:
    """A local Kafka broker (KRaft) and one node, for development."""


@local.command("up")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help="Where logs and data live [default: $FS_BUS_LOCAL_DIR or ~/.fs-bus/local].")
@click.option("--port", type=int, default=9092, show_default=True, help="The broker's port on 127.0.0.1.")
@click.option("--namespace", default="fs-bus", show_default=True)
@click.option("--no-node", is_flag=True, help="Start only the broker.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), envvar="FS_BUS_METRICS_PORT", default=None,
              help="The node serves Prometheus metrics on http://127.0.0.1:PORT/metrics (0: any free port) "
                   "[env FS_BUS_METRICS_PORT; default: off].")
@click.option("--console-port", type=click.IntRange(0, 65535), default=8089, show_default=True,
              help="Port of the read-only console on 127.0.0.1 (0: any free port).")
@click.option("--no-console", is_flag=True, help="Do not start the console.")
def local_up(directory: Path | None, port: int, namespace: str, no_node: bool, metrics_port: int | None,
             console_port: int, no_console: bool) -> None:
    """Start a local broker, a node and the console (read-only) in the background (idempotent),
    and say where the console, their logs and the node's metrics are."""
    from fs_bus.local import cluster

    try:
        cluster.up(cluster.local_dir(directory), port=port, namespace=namespace, with_node=not no_node,
                   console_port=None if no_console else console_port,
                   say=lambda m: err_console.print(m, highlight=False), metrics_port=metrics_port)
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_FAILED)


@local.command("demo")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None)
@click.option("--port", type=int, default=9092, show_default=True)
def local_demo(directory: Path | None, port: int) -> None:
    """Run the main job end to end: broker, node, the upper example, records in and out."""
    from fs_bus.local import cluster, demo

    try:
        demo.run(cluster.local_dir(directory), port=port, say=lambda m: make_console().print(m, highlight=False))
    except FsBusError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code(exc))


@local.command("down")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None)
@click.option("--purge", is_flag=True, help="Also delete the broker's data and logs.")
def local_down(directory: Path | None, purge: bool) -> None:
    """Stop the local node and broker."""
    from fs_bus.local import cluster

    cluster.down(cluster.local_dir(directory), purge=purge, say=lambda m: err_console.print(m, highlight=False))


@local.command("status")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None)
@output_option
def local_status(directory: Path | None, output: str) -> None:
    """Show whether the local broker and node run. Exit 0 if both run, 1 otherwise."""
    import dataclasses
    import json

    from fs_bus.local import cluster

    if output == "json":
        st = cluster.observe(cluster.local_dir(directory))
        click.echo(json.dumps({**dataclasses.asdict(st), "ok": st.ok}))
        sys.exit(0 if st.ok else 1)
    ok = cluster.status(cluster.local_dir(directory), say=lambda m: make_console().print(m, highlight=False))
    sys.exit(0 if ok else 1)


from fs_bus.cli.author import init_command, test_command  # noqa: E402  (the author's loop)

cli.add_command(init_command)
cli.add_command(test_command)


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
