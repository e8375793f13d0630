"""The commands about records on topics: ``fs-bus produce``, ``consume`` and ``decode``."""

from __future__ import annotations

import signal
import sys
import threading

import click

from fs_bus.cli.common import EXIT_FAILED, EXIT_USAGE, err_console, exit_code, kafka_options, output_option
from fs_bus.errors import FsBusError


@click.command()
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
    from fs_bus.inspect.topic_io import produce as write, split_key
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


@click.command()
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

    from fs_bus.inspect.topic_io import StartOffset, as_json, consume as read
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


@click.command()
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
