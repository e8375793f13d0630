"""The ``latency`` case: end-to-end latency at a fixed offered rate.

For each of limit / wasm-reference-world / wasm-fast / python / peer / streams: a fresh
input and output topic, the processor started on them (bench.limit --serve, quixstreams
or Kafka Streams in a subprocess, or a function on a node of its own), a warm-up record
per partition waited for, then records
produced at ``rate`` per second for ``--latency-seconds``. Each value starts with
the wall-clock time it was produced at (20 decimal digits of ns, which upper-casing
leaves alone); a consumer of the output topic in this process takes its own wall
clock when a record arrives. The output topic's timestamps cannot be used: they are
CreateTime stamped by the processor's producer (LogAppendTime is not set).

The rate is half of the case's max measured in the same run, ``--rate``, or with
``--rate common`` half of the lowest max among the targets, the same for all.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from bench import streams
from bench.common import (
    LATENCY_TARGETS, ROOT, CaseSkipped, Children, Deadline, EndOffsets, Params, create_topics, log, percentile, tail, wait_for_count,
)
from bench.node import BenchNode
from bench.throughput import PEER_SCRIPT, deploy, drop, peer_version

STAMP = 20  # digits of the produce time (ns) at the start of each value
WARMUP_S = 3.0  # produced at the rate but not measured: new topics, a cold broker JIT, the group forming


def _value(size: int, ns: int, pad: bytes) -> bytes:
    head = b"%020d" % ns
    return head + pad[: max(0, size - STAMP)]


def _produce_paced(bootstrap: str, topic: str, partitions: int, size: int, rate: float, warmup: float,
                   seconds: float, out: dict[str, Any], stop: threading.Event) -> None:
    """Produce at ``rate`` for ``warmup`` + ``seconds``; only the records of the last
    ``seconds`` are measured (``out["measure_from_ns"]``, ``out["sent"]``)."""
    # librdkafka's default linger (5 ms): a shorter one floods a small broker with tiny
    # requests and the queue behind them, not the processor, dominates the latency.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    pad = b"x" * size
    produced = 0
    measured = 0
    started = time.monotonic()
    measure_from = started + warmup
    measure_from_ns = out["measure_from_ns"] = time.time_ns() + int(warmup * 1e9)
    try:
        while not stop.is_set():
            now = time.monotonic()
            elapsed = now - started
            if elapsed >= warmup + seconds:
                break
            due = int(elapsed * rate) + 1
            while produced < due:
                ns = time.time_ns()
                try:
                    p.produce(topic, _value(size, ns, pad), partition=produced % partitions)
                    produced += 1
                    if ns >= measure_from_ns:
                        measured += 1
                except BufferError:
                    p.poll(0.005)
            p.poll(0)
            # sleep until the next record is due (at most 1 ms, so pacing stays smooth)
            wait = (produced / rate) - (time.monotonic() - started)
            if wait > 0:
                time.sleep(min(wait, 0.001))
        out["produce_seconds"] = max(1e-9, time.monotonic() - max(started, measure_from))
        p.flush(30)
    finally:
        out["sent"] = measured
        out["sent_with_warmup"] = produced
        out["done"] = True


def measure(bootstrap: str, source: str, sink: str, partitions: int, size: int, rate: float, seconds: float,
            deadline: Deadline, check_alive, warmup: float = WARMUP_S) -> dict[str, Any]:
    # Warm-up: one record per partition through the processor, so the group has
    # formed and every partition's worker exists before the clock runs.
    warm = Producer({"bootstrap.servers": bootstrap})
    for part in range(partitions):
        warm.produce(source, _value(size, 0, b"w" * size), partition=part)
    warm.flush(30)
    with EndOffsets(bootstrap, sink, partitions) as offsets:
        wait_for_count(offsets, partitions, deadline.sub(180, "latency warm-up"), on_poll=check_alive)
        time.sleep(0.5)  # let the processor commit and settle
        start_offsets = [offsets.consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                         for tp in offsets.tps]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-lat-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    consumer.assign([TopicPartition(sink, part, off if off >= 0 else OFFSET_END)
                     for part, off in enumerate(start_offsets)])
    stats: dict[str, Any] = {}
    stop = threading.Event()
    producer = threading.Thread(target=_produce_paced, name="bench-latency-producer", daemon=True,
                                args=(bootstrap, source, partitions, size, rate, warmup, seconds, stats, stop))
    latencies: list[float] = []
    received = 0
    try:
        producer.start()
        drain_until = None
        while True:
            msgs = consumer.consume(1000, 0.02)
            now_ns = time.time_ns()
            for m in msgs:
                if m.error() is not None:
                    continue
                v = m.value()
                try:
                    ns = int(v[:STAMP])
                except ValueError:
                    continue
                if ns < stats.get("measure_from_ns", 1 << 62):
                    continue  # a warm-up record
                received += 1
                latencies.append((now_ns - ns) / 1e6)
            if stats.get("done"):
                if received >= stats["sent"]:
                    break
                if drain_until is None:
                    drain_until = time.monotonic() + max(10.0, seconds)
                elif time.monotonic() > drain_until:
                    break
            if deadline.expired():
                break
            if not msgs:
                check_alive()
    finally:
        stop.set()
        producer.join(30)
        consumer.close()
    sent = stats.get("sent", 0)
    if not latencies:
        raise RuntimeError(f"no record came back out of {sent} produced")
    produced_for = stats.get("produce_seconds", seconds)
    return {
        "offered_rate": round(rate, 1),
        "achieved_produce_rate": round(sent / produced_for, 1) if produced_for else None,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "sent": sent,
        "received": received,
        "missing": max(0, sent - received),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(sum(latencies) / len(latencies), 2),
    }


def run_target(p: Params, deadline: Deadline, children: Children, target: str, rate: float) -> dict[str, Any]:
    source, sink = f"{p.run_id}-lat-in-{target}", f"{p.run_id}-lat-out-{target}"
    create_topics(p.bootstrap, [source, sink], p.partitions)
    if target in ("limit", "peer", "streams"):
        if target == "limit":
            log_path = p.workdir / "limit-serve.log"
            argv = [sys.executable, "-m", "bench.limit", "--serve", "--bootstrap", p.bootstrap,
                    "--source", source, "--sink", sink, "--group", f"{p.run_id}-lat-limit"]
        elif target == "streams":
            log_path = p.workdir / "streams-latency.log"
            argv = streams.prepare().argv("upper", bootstrap=p.bootstrap, source=source, sink=sink,
                                          application_id=f"{p.run_id}-lat-streams",
                                          state_dir=p.workdir / "streams-latency-state", guarantee=p.guarantee)
        else:
            if peer_version(p.peer_python) is None:
                raise CaseSkipped("skipped: pip install quixstreams" +
                                  ("" if p.peer_python == sys.executable else f" (into {p.peer_python})"))
            log_path = p.workdir / "peer-latency-quixstreams.log"
            argv = [p.peer_python, str(PEER_SCRIPT), "--bootstrap", p.bootstrap, "--source", source, "--sink", sink,
                    "--group", f"{p.run_id}-lat-peer", "--state-dir", str(p.workdir / "peer-latency-state")]
        proc = children.start(argv, log_path, cwd=ROOT if target == "limit" else p.workdir)

        def alive() -> None:
            if proc.poll() is not None:
                raise RuntimeError(f"the {target} process exited (code {proc.returncode}):\n{tail(log_path)}")
        try:
            return measure(p.bootstrap, source, sink, p.partitions, p.size, rate, p.latency_seconds, deadline, alive)
        finally:
            Children.stop(proc)
    kind = {"wasm-reference-world": "wasm", "wasm-fast": "wasm-fast"}.get(target, "python")
    node = BenchNode(children, p.bootstrap, f"{p.run_id}-lat-{target}", f"bench-lat-{target}", p.workdir)
    try:
        node.start(deadline.sub(120, f"latency {target}: node start"))
        name = f"upper-{kind}-lat"
        deploy(node, p, kind, name, source, sink, f"{p.run_id}-lat-{target}-group",
               timeout=max(10.0, min(120.0, deadline.remaining())))
        out = measure(p.bootstrap, source, sink, p.partitions, p.size, rate, p.latency_seconds, deadline, node.check)
        drop(node, name)
        return out
    except Exception as e:
        raise node.explain(e) from e
    finally:
        node.stop()


def run_latency(p: Params, deadline: Deadline, children: Children,
                max_rates: dict[str, float]) -> dict[str, Any]:
    """Every target; one that cannot run is reported in its own entry, not raised."""
    results: dict[str, Any] = {}
    common = None
    if p.rate == "common":
        measured = [max_rates[t] for t in p.latency_targets if max_rates.get(t)]
        if not measured:
            raise RuntimeError("--rate common needs the max rate of at least one target: add it to --cases")
        common = min(measured) / 2
    for target in p.latency_targets:
        if common is not None:
            rate = common
        elif p.rate:
            rate = float(p.rate)
        elif max_rates.get(target):
            rate = max_rates[target] / 2
        else:
            results[target] = {"status": "skipped",
                               "error": f"no max rate: add {target} to --cases, or give --rate"}
            continue
        log(f"latency {target}: {rate:.0f} records/s for {p.latency_seconds:g} s")
        started = time.monotonic()
        try:
            results[target] = {"status": "ok", **run_target(p, deadline, children, target, rate)}
        except CaseSkipped as e:
            results[target] = {"status": "skipped", "error": str(e)}
        except Exception as e:  # noqa: BLE001 - reported in the table
            results[target] = {"status": "timeout" if deadline.expired() else "failed",
                               "error": f"{type(e).__name__}: {e}"[:2000]}
        results[target]["case_wall_seconds"] = round(time.monotonic() - started, 3)
    return results
