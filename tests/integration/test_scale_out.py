"""Scale-out with real node processes: partitions follow the group, state follows the partitions
(through its changelog), and the delivery guarantee holds across kill -9.

The function counts records per key in its state and emits ``key:seq:count`` for every
record, so the outputs show both gaps (a seq never answered) and replays (a count
beyond the truth, or a seq answered twice).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer

from tests.integration.harness import ROOT, create_topic, function_state, wait_until

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
PARTITIONS = 6


def counter_config(bootstrap: str, src: str, dst: str, guarantee: str = "at_least_once") -> str:
    return f"""\
name: counter
type: python
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {src}
        group_id: {src}-counter
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {dst}
processing.guarantee: {guarantee}
"""


class Stream:
    """Keyed records ``key:seq`` in, ``key:seq:count`` out; remembers the truth."""

    def __init__(self, bootstrap: str, src: str, dst: str, keys: int = 60):
        self.bootstrap, self.src, self.dst, self.keys = bootstrap, src, dst, keys
        self.sent: dict[bytes, list[int]] = defaultdict(list)
        self.next_seq = 0
        self.outputs: list[tuple[bytes, int, int]] = []
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{dst}",
                                   "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                   "isolation.level": "read_committed"})
        self._consumer.subscribe([dst])

    def send(self, n: int) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 20})
        for _ in range(n):
            seq = self.next_seq
            key = b"k%02d" % (seq % self.keys)
            producer.produce(self.src, key=key, value=b"%s:%d" % (key, seq))
            self.sent[key].append(seq)
            self.next_seq += 1
            if seq % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0

    def read(self) -> int:
        for m in self._consumer.consume(5000, 0.3):
            if m.error() is None:
                key, seq, count = m.value().split(b":")
                self.outputs.append((key, int(seq), int(count)))
        return len(self.outputs)

    def answered(self) -> set[int]:
        return {seq for _, seq, _ in self.outputs}

    def wait_all_answered(self, timeout: float) -> None:
        total = self.next_seq
        wait_until(lambda: self.read() >= total and len(self.answered()) == total, timeout,
                   f"all {total} records answered (have {len(self.answered())})", interval=0.2)

    def check_at_least_once(self) -> None:
        """No gap: every record answered; counts never below the truth."""
        assert self.answered() == set(range(self.next_seq))
        final = defaultdict(int)
        for key, _, count in self.outputs:
            final[key] = max(final[key], count)
        for key, seqs in self.sent.items():
            assert final[key] >= len(seqs), f"{key!r}: counted {final[key]} of {len(seqs)}"

    def check_exactly_once(self) -> None:
        """Every record answered once, and each key's counts are exactly 1..n in order."""
        seqs = [seq for _, seq, _ in self.outputs]
        assert len(seqs) == len(set(seqs)) == self.next_seq
        by_key: dict[bytes, list[int]] = defaultdict(list)
        for key, _, count in self.outputs:
            by_key[key].append(count)
        for key, sent in self.sent.items():
            assert by_key[key] == list(range(1, len(sent) + 1)), f"{key!r}"

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def stream(bootstrap_servers, namespace):
    src, dst = f"{namespace}-events", f"{namespace}-counts"
    create_topic(bootstrap_servers, src, PARTITIONS)
    create_topic(bootstrap_servers, dst, PARTITIONS)
    s = Stream(bootstrap_servers, src, dst)
    yield s
    s.close()


def create_counter(client, stream: Stream, guarantee: str = "at_least_once") -> None:
    client.create_python_function("KeyCounter", [("key_counter", KEY_COUNTER)],
                                  counter_config(stream.bootstrap, stream.src, stream.dst, guarantee), timeout=120)


def holdings(client) -> dict[str, int]:
    info = function_state(client, "counter")
    return {node: len(parts) for node, parts in (info.partitions if info else {}).items()}


def test_three_nodes_share_six_partitions_and_scaling_1_3_1_loses_nothing(client, nodes, stream, namespace):
    nodes("n1")
    create_counter(client, stream)
    stream.send(3000)
    wait_until(lambda: holdings(client) == {"n1": 6}, 60, "n1 holding all six partitions")

    n2, n3 = nodes("n2"), nodes("n3")
    wait_until(lambda: holdings(client) == {"n1": 2, "n2": 2, "n3": 2}, 90, "two partitions per node")
    stream.send(3000)

    # describe names each partition's node and its lag, for people and for scripts.
    out = subprocess.run([sys.executable, "-m", "fs_bus", "describe", "counter", "-o", "json",
                          "-b", stream.bootstrap, "--namespace", namespace],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    described = json.loads(out.stdout)
    assert sorted(p["partition"] for p in described["lag"]) == list(range(PARTITIONS))
    assert {p["node"] for p in described["lag"]} == {"n1", "n2", "n3"}
    assert all(p["lag"] >= 0 for p in described["lag"])

    n2.terminate()
    n3.terminate()
    wait_until(lambda: holdings(client) == {"n1": 6}, 90, "n1 holding all six partitions again")
    stream.send(3000)
    stream.wait_all_answered(120)
    stream.check_at_least_once()
    # A graceful hand-over commits before it lets go, and the state moves with the partition.
    stream.check_exactly_once()
    info = function_state(client, "counter")
    wait_until(lambda: (f := function_state(client, "counter")) and f.lag == 0, 30, "lag 0 once all is processed")
    assert info.status == "RUNNING"


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_kill_9_during_a_stream_of_100_000_keyed_records(client, nodes, stream, guarantee):
    started = {n: nodes(n) for n in ("n1", "n2", "n3")}
    create_counter(client, stream, guarantee)
    wait_until(lambda: sum(holdings(client).values()) == PARTITIONS and len(holdings(client)) == 3, 90,
               "the partitions spread over three nodes")
    victim = started["n2"]
    sender = threading.Thread(target=stream.send, args=(100_000,))
    sender.start()
    try:
        wait_until(lambda: stream.read() >= 25_000, 180, "a quarter of the stream processed", interval=0.2)
        victim.kill()  # kill -9: no commit, no goodbye; its partitions move after the session timeout
    finally:
        sender.join()
    stream.wait_all_answered(300)
    if guarantee == "exactly_once":
        stream.check_exactly_once()
    else:
        stream.check_at_least_once()


def test_state_is_restored_from_the_changelog_on_new_machines(client, nodes, stream, tmp_path):
    first = [nodes("n1"), nodes("n2")]
    create_counter(client, stream, "exactly_once")
    stream.send(1200)
    stream.wait_all_answered(120)
    for node in first:
        node.terminate()
        shutil.rmtree(node.cache_dir / "state", ignore_errors=True)  # the machines are gone, disks and all
    nodes("n3")
    nodes("n4")
    stream.send(1200)
    stream.wait_all_answered(180)
    stream.check_exactly_once()  # counts go on from 20 per key, not from 0


def test_reprocessing_from_earliest_reproduces_the_outputs(client, nodes, stream, namespace):
    nodes("n1")
    create_counter(client, stream)
    stream.send(600)
    stream.wait_all_answered(120)
    first = sorted(stream.outputs)
    revision = function_state(client, "counter").revision

    # START ... FROM EARLIEST: offsets back to the start, state empty again.
    out = subprocess.run([sys.executable, "-m", "fs_bus", "sql", "-b", stream.bootstrap, "--namespace", namespace,
                          "-e", "START FUNCTION counter FROM EARLIEST"],
                         capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "from EARLIEST with empty state" in out.stdout
    wait_until(lambda: stream.read() >= 1200, 120, "the stream processed a second time")
    assert sorted(stream.outputs[600:]) == first
    assert function_state(client, "counter").revision > revision
