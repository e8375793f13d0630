"""Throughput cases: each moves the same data set from the input topic to its own
output topic, upper-casing every value, and reports records/s and MB/s.

- ``limit``: bench.limit's plain loop, in this process.
- ``wasm-reference-world`` and ``python``: an ``fs-bus node`` process running
  examples/upper/upper.wasm, or a ``type: python`` function doing ``data.upper()``.
  The clock starts when the client sees the function RUNNING and stops when the
  output topic's end offsets add up to N (polled every 0.1 s, nothing consumed).
- ``peer``: quixstreams ``app.dataframe(topic).apply(lambda v: v.upper())`` in a
  subprocess; the clock starts at its first output record.
- ``streams``: Kafka Streams ``mapValues(upper)`` (bench/streams/BenchStreams.java,
  1 stream thread, library defaults) in a JVM of its own; timed as ``peer``.

A case that was already moving records when its clock started counts only the
records that came out after it (``records_before_start`` in the JSON).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from bench import limit, streams
from bench.common import (
    UPPER_WASM, CaseSkipped, upper_fast_wasm, Children, Deadline, EndOffsets, Params, PartialTimeout, create_topics, log,
    tail, wait_for_count,
)
from bench.node import BenchNode

PYTHON_UPPER_MODULE = "bench_upper"
PYTHON_UPPER_CLASS = "UpperProcessor"
PYTHON_UPPER_SOURCE = '''\
from fs_api import Context, FSProcessorDriver


class UpperProcessor(FSProcessorDriver):
    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        ctx.emit(data.upper(), 0)
'''


def function_config(bootstrap: str, name: str, source: str, sink: str, group: str, kind: str,
                    guarantee: str = "at_least_once", init_config: dict[str, str] | None = None) -> str:
    # Every node case consumes 1 000 records per poll and flushes and commits every
    # 100 000 records (the node's default) or every checkpoint_interval_seconds (1 s):
    # a flush-and-commit is a broker round trip with nothing moving meanwhile. At 1 000
    # records one came every millisecond or so and took a third of a fast function's
    # time; at 10 000 they still came several times a second and set the p99 latency.
    config = f"""\
name: {name}
type: {kind}
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {source}
        group_id: {group}
        auto.offset.reset: earliest
        runtime:
          batch-consume-size: 1000
processor-runtime:
  max-batch-size: 100000
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {sink}
processing.guarantee: {guarantee}
"""
    if init_config:
        config += "init_config:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in init_config.items())
    return config


def rates(records: int, seconds: float, size: float) -> dict[str, Any]:
    seconds = max(seconds, 1e-9)
    return {"records": records, "seconds": round(seconds, 3), "records_per_s": round(records / seconds, 1),
            "mb_per_s": round(records * size / seconds / 1e6, 3)}


def sink_topic(p: Params, case: str) -> str:
    return f"{p.run_id}-out-{case}"


def run_limit(p: Params, deadline: Deadline) -> dict[str, Any]:
    sink = sink_topic(p, "limit")
    create_topics(p.bootstrap, [sink], p.partitions)
    try:
        got = limit.run_throughput(p.bootstrap, p.input_topic, sink, p.records, deadline)
    except PartialTimeout as e:
        e.partial = rates(e.have, deadline.seconds, p.size)  # type: ignore[attr-defined]
        raise
    out = rates(got["records"], got["seconds"], p.size)
    out["consume_batch"] = limit.BATCH
    return out


def deploy(node: BenchNode, p: Params, kind: str, name: str, source: str, sink: str, group: str,
           timeout: float) -> None:
    """Create the function and return once the node reports it RUNNING."""
    config = function_config(p.bootstrap, name, source, sink, group, "python" if kind == "python" else "processor",
                             p.guarantee)
    with node.client(timeout=timeout) as client:
        if kind == "wasm":
            client.create_function_from_bytes(UPPER_WASM.read_bytes(), config, wait=True, timeout=timeout)
        elif kind == "wasm-fast":
            client.create_function_from_bytes(upper_fast_wasm(), config, wait=True, timeout=timeout)
        else:
            client.create_python_function(PYTHON_UPPER_CLASS, [(PYTHON_UPPER_MODULE, PYTHON_UPPER_SOURCE)], config,
                                          wait=True, timeout=timeout)


def drop(node: BenchNode, name: str, timeout: float = 60.0) -> None:
    try:
        with node.client(timeout=timeout) as client:
            client.drop_function(name, wait=True, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - the node is stopped next anyway
        log(f"drop {name} on {node.node_id}: {e}")


def run_node_case(p: Params, deadline: Deadline, children: Children, kind: str, case: str) -> dict[str, Any]:
    """wasm-reference-world (kind "wasm"), wasm-fast (kind "wasm-fast") or python (kind "python"),
    on a node of its own."""
    sink = sink_topic(p, case)
    create_topics(p.bootstrap, [sink], p.partitions)
    name = f"upper-{kind}"

    def create(node: BenchNode, timeout: float) -> None:
        deploy(node, p, kind, name, p.input_topic, sink, f"{p.run_id}-{case}-group", timeout=timeout)

    return time_node_function(p, deadline, children, case, create, sink, p.records, p.partitions, p.size)


def time_node_function(p: Params, deadline: Deadline, children: Children, case: str,
                       create: Callable[[BenchNode, float], None], sink: str, records: int, partitions: int,
                       size: float) -> dict[str, Any]:
    """Start a node of its own, ``create`` the function on it (returning once it is RUNNING),
    and time it from then until ``sink`` holds ``records`` records."""
    node = BenchNode(children, p.bootstrap, f"{p.run_id}-{case}", f"bench-{case}", p.workdir)
    try:
        node.start(deadline.sub(120, f"{case}: node start"))
        with EndOffsets(p.bootstrap, sink, partitions) as offsets:
            create(node, max(10.0, min(120.0, deadline.remaining())))
            started = time.monotonic()
            before = offsets.count()
            try:
                ended = wait_for_count(offsets, records, deadline, on_poll=node.check)
            except PartialTimeout as e:
                e.partial = rates(e.have - before, e.at - started, size)  # type: ignore[attr-defined]
                raise
    except Exception as e:
        raise node.explain(e) from e
    finally:
        node.stop()
    out = rates(records - before, ended - started, size)
    out["records_before_start"] = before
    return out


def time_process(deadline: Deadline, children: Children, what: str, argv: list[str], log_path: Path, cwd: Path,
                 bootstrap: str, sink: str, records: int, partitions: int, size: float) -> dict[str, Any]:
    """Start a stream processor's process (a peer: it has no RUNNING to wait for) and time
    it from its first output record until ``sink`` holds ``records`` records."""
    proc = children.start(argv, log_path, cwd=cwd)

    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited (code {proc.returncode}):\n{tail(log_path)}")

    try:
        with EndOffsets(bootstrap, sink, partitions) as offsets:
            first = wait_for_count(offsets, 1, deadline, interval=0.05, on_poll=alive)
            before = offsets.count()
            try:
                ended = wait_for_count(offsets, records, deadline, on_poll=alive)
            except PartialTimeout as e:
                e.partial = rates(e.have - before, e.at - first, size)  # type: ignore[attr-defined]
                raise
    finally:
        Children.stop(proc, grace=20.0)
    out = rates(records - before, ended - first, size)
    out["records_before_start"] = before
    return out


# --- peer: quixstreams ---------------------------------------------------------------

PEER_SCRIPT = Path(__file__).resolve().parent / "peer_quix.py"


def peer_version(python: str) -> str | None:
    """quixstreams' version under ``python``, or None if it is not importable there."""
    try:
        done = subprocess.run([python, "-c", "import quixstreams; print(quixstreams.__version__)"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_peer(p: Params, deadline: Deadline, children: Children) -> dict[str, Any]:
    version = peer_version(p.peer_python)
    if version is None:
        raise CaseSkipped("skipped: pip install quixstreams" +
                          ("" if p.peer_python == sys.executable else f" (into {p.peer_python})"))
    sink = sink_topic(p, "peer")
    create_topics(p.bootstrap, [sink], p.partitions)
    argv = [p.peer_python, str(PEER_SCRIPT), "--bootstrap", p.bootstrap, "--source", p.input_topic,
            "--sink", sink, "--group", f"{p.run_id}-peer-{uuid.uuid4().hex[:6]}",
            "--state-dir", str(p.workdir / "peer-state")]
    out = time_process(deadline, children, "quixstreams", argv, p.workdir / "peer-quixstreams.log", p.workdir,
                       p.bootstrap, sink, p.records, p.partitions, p.size)
    out.update(quixstreams=version, python=p.peer_python)
    return out


# --- streams: Kafka Streams --------------------------------------------------------------


def run_streams(p: Params, deadline: Deadline, children: Children) -> dict[str, Any]:
    peer = streams.prepare()
    sink = sink_topic(p, "streams")
    create_topics(p.bootstrap, [sink], p.partitions)
    argv = peer.argv("upper", bootstrap=p.bootstrap, source=p.input_topic, sink=sink,
                     application_id=f"{p.run_id}-streams-{uuid.uuid4().hex[:6]}",
                     state_dir=p.workdir / "streams-state", guarantee=p.guarantee)
    out = time_process(deadline, children, "Kafka Streams", argv, p.workdir / "streams.log", p.workdir,
                       p.bootstrap, sink, p.records, p.partitions, p.size)
    out.update(kafka_streams=peer.version, stream_threads=1)
    return out
