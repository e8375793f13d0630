"""Safe upgrades against a real broker and real node processes (issue 15): a replace keeps the
state and offsets, a failing revision rolls back by itself, rollbacks re-apply history that
outlives compaction, and a shadow is compared with the live revision before it is promoted."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from fs_bus.errors import FsBusError, InvalidArtifact, RolledBack, UpgradeRefused
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import Topics, ensure_topics
from tests.integration.harness import (
    ROOT, UPPER_WASM, UPPER_WAT, OutputReader, create_topic, function_state, produce, upper_config, wait_until,
)
from tests.integration.test_scale_out import KEY_COUNTER, PARTITIONS, Stream, counter_config, holdings

KEY_COUNTER_V2 = KEY_COUNTER.replace(b'ctx.emit(b"%s:%s:%d" % (key, seq, n), 0)',
                                     b'ctx.emit(b"%s:%s:%d:v2" % (key, seq, n), 0)')
assert KEY_COUNTER_V2 != KEY_COUNTER

# The shadow's code: the same counts, but no answer to every fifth record and a count
# ten times too big for the one after it.
KEY_COUNTER_SHADOW = KEY_COUNTER.replace(b'        ctx.emit(b"%s:%s:%d" % (key, seq, n), 0)', b'''\
        s = int(seq)
        if s % 5 == 0:
            return
        ctx.emit(b"%s:%s:%d" % (key, seq, n * 10 if s % 5 == 1 else n), 0)''')
assert KEY_COUNTER_SHADOW != KEY_COUNTER


class VersionedStream(Stream):
    """``key:seq:count`` or ``key:seq:count:v2``: which code answered each record."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.versions: dict[int, str] = {}

    def read(self) -> int:
        for m in self._consumer.consume(5000, 0.3):
            if m.error() is None:
                key, seq, count, *version = m.value().split(b":")
                self.outputs.append((key, int(seq), int(count)))
                self.versions[int(seq)] = version[0].decode() if version else "v1"
        return len(self.outputs)


def tagger(tag: str) -> bytes:
    return f'''
from fs_api import Context, FSProcessorDriver


class Tagger(FSProcessorDriver):
    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        ctx.emit(b"{tag}:" + data, 0)
'''.encode()


def tagger_config(bootstrap: str, name: str, src: str, dst: str, group: str | None = None) -> str:
    return f"""\
name: {name}
type: python
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {src}
        group_id: {group or src + '-' + name}
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {dst}
"""


def init_trapping_upper_wasm() -> bytes:
    """upper, but its fs-init traps (`unreachable`): a revision that cannot start."""
    import wasmtime

    wat = UPPER_WAT.read_text()
    body = "      (global.set $bump (global.get $heap_base)))"
    assert body in wat
    return bytes(wasmtime.wat2wasm(wat.replace(body, "      unreachable)", 1)))


def _sql(bootstrap: str, namespace: str, text: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fs_bus", "sql", "-b", bootstrap, "--namespace", namespace,
                           *options, "-e", text], cwd=ROOT, capture_output=True, text=True, timeout=180)


@pytest.fixture
def versioned(bootstrap_servers, namespace):
    src, dst = f"{namespace}-events", f"{namespace}-counts"
    create_topic(bootstrap_servers, src, PARTITIONS)
    create_topic(bootstrap_servers, dst, PARTITIONS)
    s = VersionedStream(bootstrap_servers, src, dst)
    yield s
    s.close()


def test_a_counter_replaced_mid_stream_under_exactly_once_counts_on_exactly(client, nodes, versioned):
    nodes("n1"), nodes("n2")
    config = counter_config(versioned.bootstrap, versioned.src, versioned.dst, "exactly_once")
    client.create_python_function("KeyCounter", [("key_counter", KEY_COUNTER)], config, timeout=120)
    wait_until(lambda: sum(holdings(client).values()) == PARTITIONS and len(holdings(client)) == 2, 90,
               "the partitions spread over two nodes")
    # 50 000 records flow: half before the replace, half once it returned (every node runs v2). Sent
    # at once, the whole stream could be processed by v1 while the replace went round (it was, under load).
    replaced = threading.Event()

    def send() -> None:
        versioned.send(25_000)
        replaced.wait(180)
        versioned.send(25_000)
    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_until(lambda: versioned.read() >= 10_000, 180, "a fifth of the stream processed", interval=0.2)
        assert client.create_python_function("KeyCounter", [("key_counter", KEY_COUNTER_V2)], config, replace=True,
                                             timeout=120)
    finally:
        replaced.set()
        sender.join()
    versioned.wait_all_answered(300)
    versioned.check_exactly_once()  # no gap, no double count: each key's counts are 1..n in order
    answered_by = defaultdict(int)
    for version in versioned.versions.values():
        answered_by[version] += 1
    assert answered_by["v1"] >= 10_000 and answered_by["v2"] > 0, dict(answered_by)
    # Once a partition switched, only the new code answers it: along each key (one partition, in
    # order) the answers are v1 ... v1 then v2 ... v2, never v1 again after a v2. (Which record a
    # partition switches at depends on how far behind it is when its node gets the replace.)
    by_key: dict[bytes, list[tuple[int, str]]] = defaultdict(list)
    for key, seq, count in versioned.outputs:
        by_key[key].append((count, versioned.versions[seq]))
    for key, answers in by_key.items():
        order = [version for _, version in sorted(answers)]
        assert order == sorted(order), (key, order)  # "v1" < "v2"

    described = client.describe_function("counter")
    assert described.code_revision == 2
    assert {n["node"]: n["code_revision"] for n in described.nodes} == {"n1": 2, "n2": 2}
    history = client.function_history("counter")
    assert [(r.rev, r.reason, r.current) for r in history] == [(1, "create", False), (2, None, True)]
    assert history[1].changes.startswith("artifact ")


def test_a_replace_whose_fs_init_traps_rolls_back_by_itself(bootstrap_servers, namespace, client, nodes):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    config = upper_config(bootstrap_servers, "upper", src, dst)
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), config)
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k", b"before")])
    assert out.wait_for(1) == [(b"k", b"BEFORE")]

    # An artifact that cannot run is refused by the client, like a CREATE: nothing is written.
    with pytest.raises(InvalidArtifact):
        client.create_function_from_bytes(b"\0asm\x01\0\0\0", config, replace=True)
    assert [r.rev for r in client.function_history("upper")] == [1]

    with pytest.raises(RolledBack, match="auto-rollback to 1: revision 2 failed") as info:
        client.create_function_from_bytes(init_trapping_upper_wasm(), config, replace=True, timeout=90)
    assert info.value.revision == 2

    # The old revision runs again, as revision 3, and keeps processing where it stopped.
    produce(bootstrap_servers, src, [(b"k", b"after")])
    assert out.wait_for(2)[1:] == [(b"k", b"AFTER")]
    info = wait_until(lambda: (f := function_state(client, "upper")) and f.status == "RUNNING" and f, 60,
                      "upper RUNNING again")
    assert info.code_revision == 3 and info.reason.startswith("auto-rollback to 1: revision 2 failed")
    history = client.function_history("upper")
    assert [r.rev for r in history] == [1, 2, 3]
    assert history[0].artifact_sha256 == history[2].artifact_sha256 != history[1].artifact_sha256
    assert history[2].created_by == "fs-bus (auto-rollback)"
    listing = _sql(bootstrap_servers, namespace, "SHOW FUNCTIONS")
    assert listing.returncode == 0, listing.stderr
    assert "auto-rollback" in listing.stdout
    out.close()


def test_rollback_to_revision_1_after_two_replaces(bootstrap_servers, namespace, client, nodes, tmp_path):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    config = tagger_config(bootstrap_servers, "tag", src, dst)
    out = OutputReader(bootstrap_servers, dst)
    for n, tag in enumerate(("v1", "v2", "v3")):
        client.create_python_function("Tagger", [("tagger", tagger(tag))], config, replace=True, timeout=120)
        produce(bootstrap_servers, src, [(b"k", b"%d" % n)])
        assert out.wait_for(n + 1)[n] == (b"k", f"{tag}:{n}".encode())

    # What cannot change in place is refused, with what to do instead.
    other_group = tagger_config(bootstrap_servers, "tag", src, dst, group="elsewhere")
    with pytest.raises(UpgradeRefused, match="keeps the consumer group"):
        client.create_python_function("Tagger", [("tagger", tagger("v4"))], other_group, replace=True)
    other_input = tagger_config(bootstrap_servers, "tag", f"{src}-2", dst, group=f"{src}-tag")
    with pytest.raises(UpgradeRefused, match="START FUNCTION tag FROM EARLIEST"):
        client.create_python_function("Tagger", [("tagger", tagger("v4"))], other_input, replace=True)

    done = _sql(bootstrap_servers, namespace, "ROLLBACK FUNCTION tag TO REVISION 1")
    assert done.returncode == 0, done.stderr
    assert "rolled back tag to revision 1" in done.stdout
    produce(bootstrap_servers, src, [(b"k", b"3")])
    assert out.wait_for(4)[3] == (b"k", b"v1:3")  # revision 1's code, from the next record on

    described = subprocess.run([sys.executable, "-m", "fs_bus", "describe", "tag", "-b", bootstrap_servers,
                                "--namespace", namespace], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert described.returncode == 0, described.stderr
    assert "code revision 4 (rollback to 1)" in described.stdout
    as_json = subprocess.run([sys.executable, "-m", "fs_bus", "describe", "tag", "-o", "json", "-b", bootstrap_servers,
                              "--namespace", namespace], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert [(n["node"], n["code_revision"]) for n in json.loads(as_json.stdout)["nodes"]] == [("n1", 4)]

    history = client.function_history("tag")
    assert [(r.rev, r.reason, r.current) for r in history] == [
        (1, "create", False), (2, None, False), (3, None, False), (4, "rollback to 1", True)]
    assert history[3].artifact_sha256 == history[0].artifact_sha256
    shown = _sql(bootstrap_servers, namespace, "SHOW FUNCTION HISTORY tag")
    assert shown.returncode == 0, shown.stderr
    assert "history of tag" in shown.stdout and "rollback to 1" in shown.stdout and "4 *" in shown.stdout
    # ROLLBACK without a revision undoes the last change: back to revision 3's code.
    client.rollback_function("tag")
    produce(bootstrap_servers, src, [(b"k", b"4")])
    assert out.wait_for(5)[4] == (b"k", b"v3:4")
    out.close()


def _records_of(bootstrap: str, topic: str, key: bytes) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "history-probe", "enable.auto.commit": False})
    try:
        tp = TopicPartition(topic, 0, 0)
        _, high = c.get_watermark_offsets(tp, timeout=10)
        c.assign([tp])
        seen = 0
        while high:
            msgs = [m for m in c.consume(500, 1.0) if m.error() is None]
            seen += sum(1 for m in msgs if m.key() == key)
            if not msgs or msgs[-1].offset() >= high - 1:
                break
        return seen
    finally:
        c.close()


def test_the_history_survives_a_real_compaction_of_the_control_topic(bootstrap_servers, namespace, client, nodes):
    topics = Topics(namespace)
    # Tiny segments and an eager cleaner, so compaction really happens during the test.
    ensure_topics(clients.admin(KafkaSettings(bootstrap_servers)), topics, overrides={topics.control: {
        "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100",
        "min.compaction.lag.ms": "0"}})
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    config = tagger_config(bootstrap_servers, "tag", src, dst)
    for tag in ("v1", "v2", "v3"):
        client.create_python_function("Tagger", [("tagger", tagger(tag))], config, replace=True, timeout=120)
    client.stop_function("tag")
    client.start_function("tag")

    roll = Producer({"bootstrap.servers": bootstrap_servers})

    def compacted() -> bool:
        # New appends roll the active segment (segment.ms) so the cleaner can reach the old ones.
        roll.produce(topics.control, key=b"zz-roll", value=None)
        roll.flush(10)
        return _records_of(bootstrap_servers, topics.control, b"tag") == 1
    wait_until(compacted, 120, "the log cleaner to leave one record of tag", interval=0.5)

    history = client.function_history("tag")
    assert [(r.rev, r.current) for r in history] == [(1, False), (2, False), (3, True)]
    assert [r.changes.startswith("artifact ") for r in history] == [False, True, True]
    # The history holds what a rollback needs: revision 1's artifact and config.
    client.rollback_function("tag", 1, timeout=120)
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k", b"x")])
    assert out.wait_for(1)[-1] == (b"k", b"v1:x")
    out.close()


def test_a_shadow_diff_matches_the_hand_count_and_promotion_acts_as_a_replace(
        bootstrap_servers, namespace, client, nodes):
    nodes("n1")
    src, dst = f"{namespace}-events", f"{namespace}-counts"
    create_topic(bootstrap_servers, src, 2)
    create_topic(bootstrap_servers, dst, 2)
    stream = Stream(bootstrap_servers, src, dst, keys=10)
    config = counter_config(bootstrap_servers, src, dst)
    client.create_python_function("KeyCounter", [("key_counter", KEY_COUNTER)], config, timeout=120)
    stream.send(100)
    stream.wait_all_answered(120)
    wait_until(lambda: (f := function_state(client, "counter")) and f.lag == 0, 60, "everything committed")

    assert client.create_python_function("KeyCounter", [("key_counter", KEY_COUNTER_SHADOW)], config, shadow=True,
                                         timeout=120)
    shadow = function_state(client, "counter.shadow")
    assert shadow is not None and shadow.status == "RUNNING" and shadow.code_revision == 2
    stream.send(100)  # seq 100..199: each revision answers them, the shadow to counter.shadow's topic
    stream.wait_all_answered(120)

    # By hand: of 100 records, every fifth (seq % 5 == 0) has no shadow answer, the one after it
    # a count ten times too big; the other 60 answers are the same, counts included (the shadow
    # started from a copy of the live state).
    expected = (60, 20, 20, 0)
    diff = wait_until(lambda: (d := client.function_diff("counter")) and
                      (d.identical, d.different, d.only_live, d.only_shadow) == expected and d, 90,
                      f"the diff to reach {expected}")
    assert len(diff.examples) == 5
    for example in diff.examples:  # offset, old output, new output
        key, seq, count = example["old"][0].split(":")
        assert int(seq) % 5 == 1 and example["new"] == [f"{key}:{seq}:{int(count) * 10}"]
        assert example["source"].endswith(f"/{example['offset']}")
    shown = _sql(bootstrap_servers, namespace, "SHOW FUNCTION DIFF counter", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert '"identical": 60' in shown.stdout and '"only_live": 20' in shown.stdout

    # PROMOTE: a replace with the shadow's revision, on the live group, offsets and state.
    done = _sql(bootstrap_servers, namespace, "PROMOTE FUNCTION counter")
    assert done.returncode == 0, done.stderr
    assert function_state(client, "counter.shadow") is None
    live = function_state(client, "counter")
    assert live.code_revision == 2 and live.reason == "promoted shadow"
    stream.send(10)  # seq 200..209
    wait_until(lambda: stream.read() >= 200 + 8, 60, "the promoted revision's answers")
    answers = {seq: count for _, seq, count in stream.outputs if seq >= 200}
    assert answers == {s: (21 * 10 if s % 5 == 1 else 21) for s in range(200, 210) if s % 5}
    assert [r.rev for r in client.function_history("counter")] == [1, 2]
    stream.close()


def test_the_artifacts_of_the_newest_five_revisions_are_kept_and_older_ones_collected(
        bootstrap_servers, namespace, client):
    src, dst = f"{namespace}-in", f"{namespace}-out"
    config = tagger_config(bootstrap_servers, "tag", src, dst)
    for n in range(1, 8):  # revisions 1..7, each its own artifact; no node needed to write them
        client.create_python_function("Tagger", [("tagger", tagger(f"v{n}"))], config, replace=True, wait=False)
    history = client.function_history("tag")
    assert [r.rev for r in history] == list(range(1, 8))
    first, second = history[0].artifact_sha256, history[1].artifact_sha256

    tombstoned = set()
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "artifact-probe",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([Topics(namespace).artifacts])
    try:
        def collected() -> bool:
            tombstoned.update(m.key().decode().split("/")[0] for m in consumer.consume(500, 0.5)
                              if m.error() is None and m.value() is None)
            return first in tombstoned and second in tombstoned
        wait_until(collected, 30, "revisions 1 and 2's chunks tombstoned")
    finally:
        consumer.close()
    assert not tombstoned & {r.artifact_sha256 for r in history[2:]}  # the newest five stay

    with pytest.raises(FsBusError, match="revision 1's artifact was collected"):
        client.rollback_function("tag", 1, wait=False)
    client.rollback_function("tag", 3, wait=False)
    assert client.function_history("tag")[-1].artifact_sha256 == history[2].artifact_sha256
