"""``fs-bus local``: a local Kafka broker (KRaft) and one node, for development."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fs_bus.cli.common import EXIT_FAILED, err_console, exit_code, make_console, output_option
from fs_bus.errors import FsBusError


@click.group()
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
