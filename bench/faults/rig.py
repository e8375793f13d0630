"""What a fault scenario runs on: its own broker, node processes, a writer and a reader of results."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, Producer

from fs_bus.client import FsClient
from fs_bus.local.broker import BrokerSpec, LocalBroker, free_port, resolve_kafka_classpath

from bench.common import ROOT, Children, create_topics, tail

UPPER_WASM = ROOT / "examples" / "upper" / "upper.wasm"
WRITE_RATE = 300.0  # records/s the writer offers: steady, well below what one node handles

# Counts records per key in its state and emits ``key:seq:count``: the outputs show gaps
# (a seq never answered), replays (a seq answered twice) and lost state (a count below the truth).
KEY_COUNTER = b'''
from fs_api import Context, FSProcessorDriver


class KeyCounter(FSProcessorDriver):
    def init(self, ctx: Context, config: dict) -> None:
        self.store = ctx.getOrCreateKVStore("counts")

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        key, seq = data.split(b":")
        n = int(self.store.get_state(key) or b"0") + 1
        self.store.put_state(key, b"%d" % n)
        ctx.emit(b"%s:%s:%d" % (key, seq, n), 0)
'''


def function_config(bootstrap: str, name: str, src: str, dst: str, guarantee: str, kind: str = "processor") -> str:
    return f"""\
name: {name}
type: {kind}
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {src}
        group_id: {src}-{name}
        auto.offset.reset: earliest
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {dst}
processing.guarantee: {guarantee}
"""


class Writer:
    """Writes ``kNN:SEQ`` at a steady rate until stopped; keeps what the broker acknowledged.

    librdkafka buffers while the broker is away (message.timeout.ms outlasts any fault
    here) and delivers once it is back, as a real upstream producer would."""

    def __init__(self, bootstrap: str, topic: str, rate: float = WRITE_RATE, keys: int = 20):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "message.timeout.ms": 300_000, "linger.ms": 5})
        self.topic, self.rate, self.keys = topic, rate, keys
        self.sent = 0
        self.acked: set[int] = set()
        self.key_of: dict[int, bytes] = {}
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            ahead = started + self.sent / self.rate - time.monotonic()
            if ahead > 0:
                self.producer.poll(ahead)
                continue
            seq = self.sent
            key = b"k%02d" % (seq % self.keys)
            self.key_of[seq] = key
            self.producer.produce(self.topic, key=key, value=b"%s:%d" % (key, seq),
                                  on_delivery=lambda err, msg, s=seq: self._delivered(err, s))
            self.sent += 1
            self.producer.poll(0)

    def _delivered(self, err, seq: int) -> None:
        if err is None:
            self.acked.add(seq)
        else:
            self.failed.append(err.str())

    def burst(self, n: int) -> None:
        """Write ``n`` records at once and wait for their acknowledgements (not with ``start``)."""
        for _ in range(n):
            seq = self.sent
            key = b"k%02d" % (seq % self.keys)
            self.key_of[seq] = key
            self.producer.produce(self.topic, key=key, value=b"%s:%d" % (key, seq),
                                  on_delivery=lambda err, msg, s=seq: self._delivered(err, s))
            self.sent += 1
            self.producer.poll(0)
        self.producer.flush(60)

    def start(self) -> Writer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        left = self.producer.flush(120)
        if left:
            self.failed.append(f"{left} record(s) not acknowledged within 120 s")

    def truth(self, seqs: set[int]) -> dict[bytes, int]:
        """How many of ``seqs`` each key has."""
        return Counter(self.key_of[s] for s in seqs)


class Results:
    """Reads the output topic (read_committed) from the beginning: which seqs were answered, how often."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"faults-{uuid.uuid4().hex}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "isolation.level": "read_committed", "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.subscribe([topic])
        self.count = 0
        self.answers: Counter[int] = Counter()
        self.highest: dict[bytes, int] = defaultdict(int)  # key -> highest count seen (the counter)
        self.by_key: dict[bytes, list[int]] = defaultdict(list)  # key -> counts in the order they came out

    def read(self) -> None:
        for m in self.consumer.consume(5000, 0.2):
            if m.error() is not None or m.value() is None:
                continue
            fields = m.value().split(b":")
            self.count += 1
            self.answers[int(fields[1])] += 1
            if len(fields) > 2:
                key = fields[0].lower()
                self.highest[key] = max(self.highest[key], int(fields[2]))
                self.by_key[key].append(int(fields[2]))

    def has_all(self, seqs: set[int] | range) -> bool:
        self.read()
        return all(s in self.answers for s in seqs)

    @property
    def duplicates(self) -> int:
        return self.count - len(self.answers)

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Rig:
    """A broker of the run's own, its nodes, and the topics of one function."""

    workdir: Path
    broker: LocalBroker
    children: Children = field(default_factory=Children)
    nodes: dict[str, object] = field(default_factory=dict)  # node id -> Popen
    namespace: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:8]}")
    owns_broker: bool = True

    @classmethod
    def start(cls, workdir: Path, broker: LocalBroker | None = None) -> Rig:
        """A rig in ``workdir``: on ``broker`` (started if it is not running), or on a broker of its own."""
        workdir.mkdir(parents=True, exist_ok=True)
        owns = broker is None
        if broker is None:
            broker = new_broker(workdir / "kafka")
        if not broker.is_running():
            broker.start(wait_timeout=120.0)
        return cls(workdir, broker, owns_broker=owns)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    def client(self) -> FsClient:
        return FsClient(bootstrap_servers=self.bootstrap, namespace=self.namespace, timeout=120)

    def topics(self, partitions: int) -> tuple[str, str]:
        src, dst = f"{self.namespace}-in", f"{self.namespace}-out"
        create_topics(self.bootstrap, [src, dst], partitions)
        return src, dst

    def start_node(self, node_id: str) -> None:
        log = self.workdir / f"node-{node_id}.log"
        self.nodes[node_id] = self.children.start(
            [sys.executable, "-m", "fs_bus", "node", "--bootstrap-servers", self.bootstrap,
             "--namespace", self.namespace, "--node-id", node_id, "--cache-dir", str(self.workdir / f"cache-{node_id}"),
             "--heartbeat-interval", "0.5"], log, env={**os.environ, "PYTHONPATH": str(ROOT)})
        with self.client() as client:
            wait(lambda: any(n.node_id == node_id and n.alive for n in client.show_functions().nodes), 60,
                 f"node {node_id} alive", lambda: self.node_log(node_id))

    def signal_node(self, node_id: str, sig: signal.Signals) -> None:
        os.kill(self.nodes[node_id].pid, sig)  # type: ignore[attr-defined]

    def node_log(self, node_id: str) -> str:
        return tail(self.workdir / f"node-{node_id}.log", 3000)

    def count_in_logs(self, text: str) -> int:
        return sum((self.workdir / f"node-{n}.log").read_text(errors="replace").count(text) for n in self.nodes)

    def holdings(self, function: str) -> dict[str, int]:
        """node id -> how many partitions of ``function`` it reports holding."""
        with self.client() as client:
            for f in client.show_functions().functions:
                if f.name == function:
                    return {node: len(parts) for node, parts in f.partitions.items() if parts}
        return {}

    def close(self) -> None:
        for proc in self.nodes.values():
            try:
                os.kill(proc.pid, signal.SIGCONT)  # type: ignore[attr-defined]
            except ProcessLookupError:
                pass
        self.children.stop_all()
        try:
            self.broker.resume()
        except Exception:  # noqa: BLE001 - not frozen, or not running
            pass
        if self.owns_broker:
            self.broker.stop(timeout=20)


def new_broker(data_dir: Path) -> LocalBroker:
    """A broker on free ports (kept across restarts on the same data directory); not started yet."""
    spec = BrokerSpec(data_dir=data_dir, port=free_port(), controller_port=free_port())
    return LocalBroker(spec, classpath=resolve_kafka_classpath(quiet=True))


def wait(condition, timeout: float, what: str, explain=None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}" + (f"\n{explain()}" if explain else ""))
