"""Faults with real processes: a node's disk cache rots; a slow output; an hour of load.

(A node killed with -9 mid-stream is covered with the state tests; the broker frozen or
killed -9 and a node frozen into a zombie by test_fault_scenarios.py, which bench/faults
runs many times over.)
"""

from __future__ import annotations

import hashlib
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from fs_bus.local.broker import resolve_kafka_classpath
from tests.integration.harness import (
    UPPER_WASM, NodeProcess, OutputReader, produce, upper_config, wait_until,
)


class SteadyProducer:
    """Writes numbered records every few ms until stopped, keeping what the broker acknowledged.

    librdkafka buffers while the broker is away and delivers once it is back
    (message.timeout.ms outlasts the outage), as a real upstream producer would.
    """

    def __init__(self, bootstrap: str, topic: str):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "message.timeout.ms": 180_000, "linger.ms": 5})
        self.topic, self.sent, self.acked, self.failed = topic, 0, set(), []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = b"r%06d" % self.sent
            self.producer.produce(self.topic, key=value, value=value, on_delivery=self._delivered)
            self.sent += 1
            self.producer.poll(0.01)

    def _delivered(self, err, msg) -> None:
        if err is None:
            self.acked.add(msg.value())
        else:
            self.failed.append(err.str())

    def start(self) -> SteadyProducer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert self.producer.flush(120) == 0


def test_a_corrupt_cached_artifact_and_compiled_component_are_detected_and_replaced(
        bootstrap_servers, namespace, client, tmp_path):
    src, dst = f"{namespace}-in", f"{namespace}-out"
    node = NodeProcess(bootstrap_servers, namespace, "n1", tmp_path).start().wait_alive()  # a cache of its own
    try:
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))
        out = OutputReader(bootstrap_servers, dst)
        produce(bootstrap_servers, src, [(b"k", b"before")])
        assert out.wait_for(1) == [(b"k", b"BEFORE")]
        assert node.terminate() == 0
    finally:
        node.close()

    sha = hashlib.sha256(UPPER_WASM.read_bytes()).hexdigest()
    artifact = node.cache_dir / "artifacts" / f"{sha}.bin"
    compiled, = (node.cache_dir / "compiled").glob(f"{sha}-*.cwasm")
    for path in (artifact, compiled):  # one flipped bit each, in the middle
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))

    again = NodeProcess(bootstrap_servers, namespace, "n1", tmp_path).start().wait_alive()
    try:
        produce(bootstrap_servers, src, [(b"k", b"after")])
        assert out.wait_for(2)[1:] == [(b"k", b"AFTER")]
        assert hashlib.sha256(artifact.read_bytes()).hexdigest() == sha  # fetched again from Kafka
        log = again.log_path.read_text(errors="replace")  # both runs of n1 write this file
        assert log.count(f"fetched artifact {sha[:12]}") == 2 and "unusable" in log and "recompiling" in log
    finally:
        again.close()
        out.close()


def _client_quota(bootstrap: str, client_id: str, producer_byte_rate: int | None) -> None:
    """Throttle (or stop throttling) one client's writes on the broker, with Kafka's own tool."""
    import socket
    import subprocess

    from fs_bus.local.broker import check_java

    change = (["--add-config", f"producer_byte_rate={producer_byte_rate}"] if producer_byte_rate
              else ["--delete-config", "producer_byte_rate"])
    subprocess.run([check_java(), "-cp", resolve_kafka_classpath(), "kafka.admin.ConfigCommand",
                    "--bootstrap-server", bootstrap, "--alter", *change, "--entity-type", "clients",
                    "--entity-name", f"fs-bus-{client_id}-{socket.gethostname()}"],
                   check=True, capture_output=True, timeout=120)


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_slow_output_holds_the_function_back_with_bounded_memory(bootstrap_servers, namespace, client, nodes):
    """The output is throttled by a broker quota: the node reads no further ahead than its
    buffers allow (memory stays flat under a 40 MB backlog), and nothing is committed past
    an output that was not written."""
    records, size, rate = 40_000, 1000, 50_000  # 40 MB in; the output may write 50 kB/s
    name, src, dst = f"slow-{namespace}", f"{namespace}-in", f"{namespace}-out"
    group = f"{src}-{name}"
    node = nodes("n1")
    _client_quota(bootstrap_servers, f"fn-{name}", rate)  # a fresh client id: no need to lift it after
    config = upper_config(bootstrap_servers, name, src, dst).replace(
        "        auto.offset.reset: earliest\n",
        "        auto.offset.reset: earliest\n        queued.max.messages.kbytes: 2048\n"
        "        runtime: {batch-consume-size: 200}\n")
    config += "    runtime: {channel-capacity: 1000}\n"
    # Commit points every 200 records: a commit point waits for its outputs, 200 of them
    # take 4 s at the throttled 50 records/s, so some come within the 15 s below (at
    # 1 000 records a commit point alone took 20 s once a fast host had read that far).
    config += "processor-runtime: {max-batch-size: 200}\n"
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), config)
    baseline = _rss_mb(node.proc.pid)
    produce(bootstrap_servers, src, [(b"%d" % i, b"x" * size) for i in range(records)])
    out = OutputReader(bootstrap_servers, dst)
    samples = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the throttled phase, sampled as it runs
        samples.append(_rss_mb(node.proc.pid))
        out.poll()
    assert node.proc.poll() is None
    offsets = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group})
    committed = offsets.committed([TopicPartition(src, 0)], timeout=10)[0].offset
    offsets.close()
    # At-least-once: every record before the committed offset has its output written.
    before = {b"%d" % i for i in range(committed)}
    written = wait_until(lambda: before <= (w := {k for k, _ in out.poll()}) and w, 60,
                         f"the outputs of the {committed} committed records")
    out.close()
    print(f"backpressure: {records} records of {size} B in; {len(written)} out in 15 s at {rate // 1000} kB/s, "
          f"{committed} committed; node RSS {baseline:.0f} MB before, at most {max(samples):.0f} MB")
    assert 0 < committed < records / 4  # the output really held the function back
    # Far less than the 40 MB backlog stayed in the node: it held back what it could not write.
    assert max(samples) - baseline < 20, samples


def test_an_hour_of_steady_load_leaves_memory_flat(bootstrap_servers, namespace, client, nodes):
    """One hour at 60 records/s (216 000 records of 200 B), offered at a steady 4 000/s:
    every record comes out, and the node's memory after its warm-up stays flat."""
    records, rate, size = 216_000, 4_000, 200
    src, dst = f"{namespace}-in", f"{namespace}-out"
    node = nodes("n1")
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "soak", src, dst))
    out = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"soak-{namespace}",
                    "auto.offset.reset": "earliest", "enable.auto.commit": False})
    out.subscribe([dst])
    received = 0
    samples: list[tuple[float, float]] = []  # (seconds since start, node RSS MB)

    def send() -> None:
        producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5})
        started, value = time.monotonic(), b"x" * size
        for i in range(records):
            if i % 400 == 0:  # paced in steps of 0.1 s: a steady offered rate
                ahead = started + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                producer.poll(0)
            producer.produce(src, key=b"%d" % (i % 1000), value=value)
        producer.flush(60)

    sender = threading.Thread(target=send)
    started = time.monotonic()
    sender.start()
    next_sample = started
    deadline = started + records / rate + 120
    while received < records and time.monotonic() < deadline:
        received += sum(1 for m in out.consume(1000, 0.2) if m.error() is None)
        if time.monotonic() >= next_sample:
            samples.append((time.monotonic() - started, _rss_mb(node.proc.pid)))
            next_sample += 2.0
    sender.join()
    out.close()
    assert received == records, f"{received} of {records} records came out"
    print("soak RSS (s, MB): " + ", ".join(f"{t:.0f}:{mb:.0f}" for t, mb in samples))
    steady = [mb for t, mb in samples if t >= 10]  # after the warm-up
    half = len(steady) // 2
    assert len(steady) >= 10, samples
    # Flat: the second half of the run never goes more than a few MB above the first half.
    assert max(steady[half:]) <= max(steady[:half]) + 12, samples
