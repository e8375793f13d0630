"""What the ``fs-bus`` commands share: exit codes, consoles, the Kafka and output options."""

from __future__ import annotations

import sys

import click
from rich.console import Console

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


def parse_labels(_ctx, _param, values: tuple[str, ...]) -> dict[str, str]:
    """``--label zone=a --label gpu``: a node's labels (``gpu`` alone has an empty value)."""
    import re

    labels = {}
    for item in values:
        key, _, value = item.partition("=")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}", key):
            raise click.BadParameter(f"{item!r}: a label is KEY or KEY=VALUE, the key of letters, digits, "
                                     "'.', '_', '/' and '-'")
        labels[key] = value
    return labels


def output_option(f):
    return click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
                        help="table: for people; json: one JSON object per result on its own line, for scripts.")(f)
