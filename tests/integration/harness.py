"""Real processes and real Kafka for integration tests: nodes, data in, data out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fs_bus.client import FsClient
from fs_bus.errors import KafkaUnavailable

ROOT = Path(__file__).resolve().parents[2]
UPPER_WASM = ROOT / "examples" / "upper" / "upper.wasm"
UPPER_WAT = ROOT / "examples" / "upper" / "upper.wat"
T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 30.0, what: str = "condition",
               interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except AssertionError as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f": {last_exc}" if last_exc else ""))


def upper_config(bootstrap: str, name: str, source: str, sink: str, group: str | None = None) -> str:
    # The group is named after the source topic, which tests namespace: a group that a
    # killed node left behind in another test would stall rebalances for a session timeout.
    group = group or f"{source}-{name}"
    return f"""\
name: {name}
type: processor
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {source}
        group_id: {group}
        auto.offset.reset: earliest
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {sink}
"""


def trapping_upper_wasm() -> bytes:
    """upper, but a record starting with '!' makes the guest trap (`unreachable`)."""
    import wasmtime

    wat = UPPER_WAT.read_text().replace(
        "      (local.set $p (local.get $ptr))\n",
        "      (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 33)) (then unreachable))\n"
        "      (local.set $p (local.get $ptr))\n", 1)
    assert "unreachable))\n      (local.set $p" in wat
    return bytes(wasmtime.wat2wasm(wat))


def misbehaving_upper_wasm() -> bytes:
    """upper, but a record starting with '+' grows memory 1 MiB at a time until a grow is
    refused (then traps, as an allocator aborts), and one starting with '~' loops forever."""
    import wasmtime

    wat = UPPER_WAT.read_text().replace(
        "      (local.set $p (local.get $ptr))\n",
        "      (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 43)) (then (loop $grow\n"
        "        (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))\n"
        "        (br $grow))))\n"
        "      (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 126)) (then (loop $spin (br $spin))))\n"
        "      (local.set $p (local.get $ptr))\n", 1)
    assert "(br $spin)" in wat
    return bytes(wasmtime.wat2wasm(wat))


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result()


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]], partition: int | None = None) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value in records:
        if partition is None:
            p.produce(topic, key=key, value=value)
        else:
            p.produce(topic, key=key, value=value, partition=partition)
    assert p.flush(30) == 0


def read_topic(bootstrap: str, topic: str, n: int, timeout: float = 30.0) -> list:
    """The first ``n`` messages of ``topic`` (all partitions), read with a fresh group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list = []
    try:
        wait_until(lambda: got.extend(m for m in consumer.consume(100, 0.2) if m.error() is None) or len(got) >= n,
                   timeout, f"{n} record(s) on {topic}")
    finally:
        consumer.close()
    return got


class OutputReader:
    """Reads an output topic from the beginning, keeping everything seen so far."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.subscribe([topic])
        self.records: list[tuple[bytes | None, bytes]] = []

    def poll(self) -> list[tuple[bytes | None, bytes]]:
        for m in self.consumer.consume(500, 0.2):
            if m.error() is None:
                self.records.append((m.key(), m.value()))
        return self.records

    def wait_for(self, n: int, timeout: float = 30.0) -> list[tuple[bytes | None, bytes]]:
        return wait_until(lambda: len(self.poll()) >= n and self.records, timeout, f"{n} output records")

    def close(self) -> None:
        self.consumer.close()


class NodeProcess:
    """An ``fs-bus node`` in its own OS process, as an operator runs it."""

    def __init__(self, bootstrap: str, namespace: str, node_id: str, workdir: Path,
                 compiled_cache: Path | None = None, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 client_config: dict[str, str] | None = None, metrics_port: int | None = None):
        self.bootstrap, self.namespace, self.node_id = bootstrap, namespace, node_id
        self.args, self.env = args, env  # more `fs-bus node` options; extra environment
        self.client_config = client_config  # what wait_alive's client needs to read the status topic
        self.metrics_port = metrics_port
        self.cache_dir = workdir / f"cache-{node_id}"
        if compiled_cache is not None and not (self.cache_dir / "compiled").exists():
            # Compiling an 18 MB guest takes seconds: nodes of one test run share the result.
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            compiled_cache.mkdir(parents=True, exist_ok=True)
            (self.cache_dir / "compiled").symlink_to(compiled_cache)
        self.log_path = workdir / f"node-{node_id}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> NodeProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fs_bus", "node", "--bootstrap-servers", self.bootstrap,
             "--namespace", self.namespace, "--node-id", self.node_id, "--cache-dir", str(self.cache_dir),
             "--heartbeat-interval", "0.5", *self.args,
             *(["--metrics-port", str(self.metrics_port), "--metrics-address", "127.0.0.1"]
               if self.metrics_port is not None else [])],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
            env={**os.environ, **(self.env or {})})
        log.close()
        return self

    def wait_alive(self, timeout: float = 60.0) -> NodeProcess:
        with FsClient(bootstrap_servers=self.bootstrap, namespace=self.namespace,
                      kafka_config=self.client_config) as client:
            def alive() -> bool:
                self._check_running()
                try:
                    listed = client.show_functions().nodes
                except KafkaUnavailable:  # the namespace's topics, created a moment ago, not served yet
                    return False
                return any(n.node_id == self.node_id and n.alive for n in listed)
            wait_until(alive, timeout, f"node {self.node_id} alive")
        return self

    def _check_running(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"node {self.node_id} exited:\n{self.log()}"
        return True

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def metrics(self) -> dict[str, float]:
        """The node's /metrics, parsed: ``{'name{label="v",...}': value}`` (labels sorted)."""
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        assert self.metrics_port is not None, "start the node with metrics_port"
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        samples = {}
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return samples

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def function_state(client: FsClient, name: str):
    for f in client.show_functions().functions:
        if f.name == name:
            return f
    return None
