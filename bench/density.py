"""``python -m bench.density``: what idle functions cost a node, and how fast a fresh node replays.

- **density**: for each N of ``--functions``, N reference-world functions (``examples/upper``,
  each its own 1-partition input topic and group, one shared output) are written to the
  control topic of a fresh namespace; one ``fs-bus node`` process starts on it and runs them
  all. Once every one is RUNNING and the node's thread count has settled (idle functions
  parked, when ``idle-park-ms`` lets them), its RSS and threads are read from ``/proc`` and
  its threads counted by name. Per-function figures are (figure(N) - figure(0)) / N.
  Then: the wake latency (a record into a parked function's input until its output shows
  it) and CREATE -> RUNNING of ``--creates`` more functions next to the N running.
- **replay**: ``--replay`` functions' records written to a control topic; what a fresh node
  does with them, timed in this process on the node's own code: read the log to its end and
  fold it (``ControlState``), parse every config, and the reconcile diff.

It measures; it asserts nothing. Results print as JSON and go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import UPPER_WASM, Children, Deadline, EndOffsets, log, percentile
from bench.node import BenchNode

STEADY_SAMPLES = 4  # /proc samples, 1 s apart, with the same thread count: settled


def function_config(bootstrap: str, name: str, source: str, sink: str, park_ms: int | None) -> str:
    park = "" if park_ms is None else f"processor-runtime:\n  idle-park-ms: {park_ms}\n"
    return (f"name: {name}\ntype: processor\ninput-groups:\n  - inputs:\n      - input-type: kafka\n"
            f"        bootstrap_servers: \"{bootstrap}\"\n        topic: {source}\n        group_id: {name}-g\n"
            f"outputs:\n  - output-type: kafka\n    bootstrap_servers: \"{bootstrap}\"\n    topic: {sink}\n"
            f"{park}")


def proc_figures(pid: int) -> dict[str, Any]:
    """RSS (MB) and threads of a process, its threads counted by name (librdkafka names its own)."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    names: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
        except OSError:
            continue
        names[comm.rstrip("0123456789") or comm] += 1
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1), "threads": int(fields["Threads"]),
            "by_name": dict(names.most_common(12))}


def settled(pid: int, deadline: Deadline, at_least_s: float = 0.0) -> dict[str, Any]:
    """The process's figures once its thread count held still for STEADY_SAMPLES seconds,
    ``at_least_s`` from now at the earliest (idle functions park after idle-park-ms)."""
    seen: list[int] = []
    earliest = time.monotonic() + at_least_s
    while True:
        figures = proc_figures(pid)
        seen.append(figures["threads"])
        if len(seen) >= STEADY_SAMPLES and len(set(seen[-STEADY_SAMPLES:])) == 1 and time.monotonic() >= earliest:
            return figures
        if deadline.expired():
            figures["unsettled"] = seen[-STEADY_SAMPLES:]
            return figures
        time.sleep(1.0)


class ControlWriter:
    """Writes function records straight to a namespace's control topic (as many as a bench needs, fast)."""

    def __init__(self, bootstrap: str, namespace: str):
        from fs_bus.artifacts import store
        from fs_bus.control.records import ArtifactKind
        from fs_bus.kafka import clients
        from fs_bus.kafka.settings import KafkaSettings
        from fs_bus.kafka.topics import Topics, ensure_topics

        self.settings = KafkaSettings.resolve(bootstrap)
        self.topics = Topics(namespace)
        ensure_topics(clients.admin(self.settings), self.topics)
        self.producer = clients.control_writer(self.settings)
        self.manifest = store.upload(self.producer, self.topics.artifacts, UPPER_WASM.read_bytes(),
                                     ArtifactKind.WASM_COMPONENT)

    def write(self, configs: dict[str, str], running: bool = True) -> None:
        from fs_bus.control.records import DesiredState, FunctionRecord, encode_function

        state = DesiredState.RUNNING if running else DesiredState.STOPPED
        now = int(time.time() * 1000)
        for name, config in configs.items():
            rec = FunctionRecord(name, "processor", config, self.manifest, state, 1, now, "bench")
            while True:
                try:
                    self.producer.produce(self.topics.control, key=name.encode(), value=encode_function(rec))
                    break
                except BufferError:
                    self.producer.poll(0.1)
        if self.producer.flush(60) > 0:
            raise RuntimeError("control records not acknowledged within 60 s")


def warm_group_coordinator(bootstrap: str, topic: str, deadline: Deadline) -> None:
    """Commit one offset in a throwaway group, so ``__consumer_offsets`` exists and has loaded.

    Until then a group offsets request may answer NOT_COORDINATOR, and librdkafka's
    ListConsumerGroupOffsets dereferences a null group on that answer (a segfault in the
    client's SHOW FUNCTIONS, confluentinc/librdkafka#5040)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-warm-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    try:
        while True:
            try:
                consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
                return
            except KafkaException:
                deadline.check("waiting for the group coordinator")
                time.sleep(0.5)
    finally:
        consumer.close()


def create_topics_batched(bootstrap: str, names: list[str]) -> None:
    from bench.common import create_topics

    for i in range(0, len(names), 200):
        create_topics(bootstrap, names[i:i + 200], 1, timeout=120.0)


def running_count(reader, seen: dict[str, str], node_id: str) -> int:
    """Follow the status topic; how many functions the node reports RUNNING (or FAILED)."""
    from fs_bus.control import codec

    for msg in reader.poll(0.5, 5000):
        key = (msg.key() or b"").decode()
        if not key.startswith("function/") or not key.endswith(f"/{node_id}"):
            continue
        fn = key[len("function/"):-len(node_id) - 1]
        if msg.value() is None:
            seen.pop(fn, None)
        else:
            seen[fn] = codec.decode(msg.value())[1]["state"]
    return sum(1 for s in seen.values() if s in ("RUNNING", "FAILED"))  # FAILED: counted, reported apart


def wake_latency(bootstrap: str, sources: list[str], sink: str, deadline: Deadline) -> list[float]:
    """Seconds from a record produced into each source until the sink holds one more record."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    out = []
    with EndOffsets(bootstrap, sink, 1) as ends:
        for source in sources:
            before = ends.count()
            started = time.monotonic()
            producer.produce(source, b"wake up")
            producer.flush(10)
            while ends.count() <= before:
                deadline.check(f"waiting for {source}'s record in {sink}")
                time.sleep(0.05)
            out.append(round(time.monotonic() - started, 3))
    return out


def density(args: argparse.Namespace, bootstrap: str, n: int, workdir: Path, children: Children) -> dict[str, Any]:
    from fs_bus.kafka import clients
    from fs_bus.kafka.log import TopicReader

    run = f"d{uuid.uuid4().hex[:6]}-{n}"
    deadline = Deadline(args.timeout, f"density with {n} functions")
    sources = [f"{run}-in-{i}" for i in range(n)]
    sink = f"{run}-out"
    create_topics_batched(bootstrap, sources + [sink])
    writer = ControlWriter(bootstrap, run)
    writer.write({f"fn-{i}": function_config(bootstrap, f"fn-{i}", sources[i], sink, args.idle_park_ms)
                  for i in range(n)})
    node = BenchNode(children, bootstrap, run, f"node-{run}", workdir)
    out: dict[str, Any] = {"functions": n}
    try:
        started = time.monotonic()
        node.start(deadline, wait=False)  # the status topic says when its functions run
        assert node.proc is not None
        reader = TopicReader(clients.reader(writer.settings, "bench-status"), writer.topics.status)
        seen: dict[str, str] = {}
        while running_count(reader, seen, node.node_id) < n:
            node.check()
            deadline.check(f"waiting for {n} functions RUNNING ({running_count(reader, seen, node.node_id)} are)")
        out["all_running_s"] = round(time.monotonic() - started, 1)
        # A function whose first open failed (a timeout on a loaded machine) stays FAILED until
        # a record gets through, though it runs: reported, not waited on.
        out["failed"] = sorted(fn for fn, state in seen.items() if state == "FAILED")
        park_s = (60_000 if args.idle_park_ms is None else args.idle_park_ms) / 1000
        out["settled"] = settled(node.proc.pid, deadline.sub(args.settle + park_s, "settling"), park_s + 2)
        out["settled_after_s"] = round(time.monotonic() - started, 1)
        if n:
            out["wake_s"] = wake_latency(bootstrap, sources[:3], sink, deadline)
            out["after_wake"] = proc_figures(node.proc.pid)
        if args.creates:
            out["create_to_running"] = creates(args, bootstrap, run, sink, writer, node, deadline)
        reader.close()
    except Exception as e:
        raise node.explain(e) from e
    finally:
        node.stop()
    return out


def creates(args: argparse.Namespace, bootstrap: str, run: str, sink: str, writer: ControlWriter,
            node: BenchNode, deadline: Deadline) -> dict[str, Any]:
    """CREATE -> RUNNING through the client (wait=True), one after another, next to what runs."""
    names = [f"extra-{i}" for i in range(args.creates)]
    create_topics_batched(bootstrap, [f"{run}-{name}-in" for name in names])
    wasm = UPPER_WASM.read_bytes()
    took = []
    with node.client(timeout=120) as client:
        for name in names:
            deadline.check(f"creating {name}")
            t = time.perf_counter()
            client.create_function_from_bytes(wasm, function_config(bootstrap, name, f"{run}-{name}-in", sink,
                                                                    args.idle_park_ms), wait=True, timeout=120)
            took.append((time.perf_counter() - t) * 1000)
    return {"n": len(took), "p50_ms": round(percentile(took, 50), 1), "max_ms": round(max(took), 1)}


def replay(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """A fresh node's replay of ``args.replay`` functions' records, on the node's own code, timed by step."""
    from fs_bus.control.store import ControlState
    from fs_bus.kafka import clients
    from fs_bus.kafka.log import TopicReader
    from fs_bus.node.reconcile import reconcile

    n = args.replay
    run = f"r{uuid.uuid4().hex[:6]}"
    writer = ControlWriter(bootstrap, run)
    configs = {f"fn-{i}": function_config(bootstrap, f"fn-{i}", f"{run}-in-{i}", f"{run}-out", args.idle_park_ms)
               for i in range(n)}
    t = time.perf_counter()
    writer.write(configs)
    written = time.perf_counter() - t
    c0, t0 = time.process_time(), time.perf_counter()
    reader = TopicReader(clients.reader(writer.settings, "node-control"), writer.topics.control)
    state = ControlState()
    reader.read_to_end(state.fold, timeout=120)
    t1 = time.perf_counter()
    invalid = sum(1 for name in state.table.functions if state.spec(name).config is None)
    t2 = time.perf_counter()
    actions = reconcile(state.table.functions, {})
    t3 = time.perf_counter()
    cpu = time.process_time() - c0  # this process's CPU: what the replay costs whatever else runs on the machine
    reader.close()
    return {"functions": n, "records": len(state.table), "invalid": invalid, "write_s": round(written, 2),
            "read_and_fold_s": round(t1 - t0, 3), "parse_configs_s": round(t2 - t1, 3),
            "reconcile_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3), "cpu_s": round(cpu, 3),
            "actions": len(actions)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    base = next((r for r in runs if r["functions"] == 0), None)
    out = {}
    for r in runs:
        if base is None or not r["functions"]:
            continue
        s, b = r["settled"], base["settled"]
        out[str(r["functions"])] = {
            "mb_per_function": round((s["rss_mb"] - b["rss_mb"]) / r["functions"], 3),
            "threads_per_function": round((s["threads"] - b["threads"]) / r["functions"], 2),
            "rss_mb": s["rss_mb"], "threads": s["threads"],
            "wake_s_median": statistics.median(r["wake_s"]) if r.get("wake_s") else None,
            "create_p50_ms": r.get("create_to_running", {}).get("p50_ms")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.density", description=__doc__.split("\n\n")[0])
    ap.add_argument("--functions", default="0,10,100", help="comma-separated function counts (default 0,10,100)")
    ap.add_argument("--replay", type=int, default=10_000, help="functions in the replay case (0: skip)")
    ap.add_argument("--creates", type=int, default=10, help="CREATEs timed next to the running functions")
    ap.add_argument("--idle-park-ms", type=int, default=None,
                    help="processor-runtime: idle-park-ms of every function (default: the node's default)")
    ap.add_argument("--settle", type=float, default=120.0, help="longest wait for the thread count to settle, s")
    ap.add_argument("--timeout", type=float, default=1800.0, help="budget of each density run, s")
    ap.add_argument("--bootstrap-servers", default=None, help="use a running broker instead of starting one")
    ap.add_argument("--out", default=None, help="JSON file (default bench/results/density-<timestamp>.json)")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="fs-bus-density-"))
    children = Children()
    broker = None
    results: dict[str, Any] = {"command": ["python", "-m", "bench.density", *(argv or sys.argv[1:])], "runs": []}
    out_path = Path(args.out or Path(__file__).parent / "results" / f"density-{time.strftime('%Y%m%dT%H%M%SZ')}.json")
    try:
        bootstrap = args.bootstrap_servers
        if not bootstrap:
            from fs_bus.local.broker import BrokerSpec, LocalBroker, free_port

            broker = LocalBroker(BrokerSpec(data_dir=workdir / "kafka", port=free_port(), heap="1g"))
            log("starting a Kafka broker")
            broker.start(wait_timeout=120.0)
            bootstrap = broker.bootstrap_servers
        warm = f"warm-{uuid.uuid4().hex[:6]}"
        create_topics_batched(bootstrap, [warm])
        warm_group_coordinator(bootstrap, warm, Deadline(120, "warming the broker"))
        if args.replay:
            log(f"replay: {args.replay} functions")
            results["replay"] = replay(args, bootstrap)
            log(json.dumps(results["replay"]))
        for n in [int(x) for x in args.functions.split(",") if x.strip()]:
            log(f"density: {n} functions")
            results["runs"].append(density(args, bootstrap, n, workdir, children))
            log(json.dumps(results["runs"][-1]))
        results["per_function"] = summarise(results["runs"])
    finally:
        children.stop_all()
        if broker is not None:
            broker.stop()
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
