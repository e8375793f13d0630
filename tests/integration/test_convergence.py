"""Nodes converge from Kafka alone: several nodes, restarts, compaction, bad records, bad artifacts."""

from __future__ import annotations

import hashlib
import os
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from fs_bus.artifacts import store as artifact_store
from fs_bus.control import codec
from fs_bus.control.records import ArtifactKind, ArtifactManifest, ChunkRef, DesiredState, FunctionRecord
from fs_bus.control.store import write_record
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import Topics, ensure_topics
from fs_bus.status import records as status
from tests.integration.harness import (
    UPPER_WASM, OutputReader, create_topic, function_state, produce, trapping_upper_wasm, upper_config, wait_until,
)


def test_two_nodes_both_converge_and_share_partitions(bootstrap_servers, namespace, client, nodes):
    nodes("n1"), nodes("n2")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    create_topic(bootstrap_servers, src, partitions=2)
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))
    # The group spreads the two partitions over the two nodes, one each.
    info = wait_until(lambda: (f := function_state(client, "upper")) and
                      sorted(map(len, f.partitions.values())) == [1, 1] and f, 60, "one partition per node")
    assert info.nodes == ("n1", "n2")

    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"a", b"p0")], partition=0)
    produce(bootstrap_servers, src, [(b"b", b"p1")], partition=1)
    assert sorted(out.wait_for(2)) == [(b"a", b"P0"), (b"b", b"P1")]

    client.stop_function("upper")  # returns once both nodes report STOPPED
    assert function_state(client, "upper").status == "STOPPED"
    client.drop_function("upper")
    assert client.show_functions().functions == []
    out.close()


def test_a_node_restarted_midway_converges(bootstrap_servers, namespace, client, nodes):
    n1 = nodes("n1")
    a_in, a_out, b_in, b_out = (f"{namespace}-{x}" for x in ("a-in", "a-out", "b-in", "b-out"))
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "fa", a_in, a_out))
    n1.kill()  # kill -9: no goodbye
    # While it is down, the desired state moves on.
    client.stop_function("fa", wait=False)
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "fb", b_in, b_out),
                                      wait=False)
    nodes("n1")  # the same node id comes back with an empty memory
    wait_until(lambda: function_state(client, "fa").status == "STOPPED"
               and function_state(client, "fb").status == "RUNNING", 60, "fa STOPPED and fb RUNNING")
    out = OutputReader(bootstrap_servers, b_out)
    produce(bootstrap_servers, b_in, [(b"k", b"back")])
    assert out.wait_for(1) == [(b"k", b"BACK")]
    out.close()


def _compacted(bootstrap: str, topic: str) -> bool:
    """True once the log cleaner has removed at least one record from ``topic``."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-probe", "enable.auto.commit": False})
    try:
        tp = TopicPartition(topic, 0, 0)
        _, high = c.get_watermark_offsets(tp, timeout=10)
        c.assign([tp])
        seen = 0
        while True:
            msgs = c.consume(500, 1.0)
            if not msgs:
                break
            seen += sum(1 for m in msgs if m.error() is None)
            if msgs[-1].offset() >= high - 1:
                break
        return seen < high
    finally:
        c.close()


def test_a_node_started_after_compaction_converges_like_one_that_followed_live(
        bootstrap_servers, namespace, client, nodes):
    topics = Topics(namespace)
    # Tiny segments and an eager cleaner, so compaction really happens during the test.
    ensure_topics(clients.admin(KafkaSettings(bootstrap_servers)), topics, overrides={topics.control: {
        "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100",
        "min.compaction.lag.ms": "0"}})
    nodes("live")
    # parallelism 2: both nodes run every function (placement would otherwise pick one).
    cfg = lambda n: upper_config(bootstrap_servers, n, f"{namespace}-{n}-in", f"{namespace}-{n}-out") + \
        "parallelism: 2\n"
    wasm = UPPER_WASM.read_bytes()
    for n in ("f1", "f2", "f3", "f4"):
        client.create_function_from_bytes(wasm, cfg(n))
    client.stop_function("f1")
    client.start_function("f1")
    client.stop_function("f3")
    client.drop_function("f2")
    client.drop_function("f4")
    client.create_function_from_bytes(wasm, cfg("f4"))
    client.stop_function("f4")

    roll = Producer({"bootstrap.servers": bootstrap_servers})

    def cleaned() -> bool:
        # New appends roll the active segment (segment.ms) so the cleaner can reach the old ones.
        roll.produce(topics.control, key=b"zz-roll", value=None)
        roll.flush(10)
        return _compacted(bootstrap_servers, topics.control)
    wait_until(cleaned, 90, "the log cleaner to compact the control topic", interval=0.5)

    nodes("late")
    def both_agree():
        infos = {f.name: f for f in client.show_functions().functions}
        assert set(infos) == {"f1", "f3", "f4"}, infos
        statuses = {}
        table = client._read_status()
        for name in infos:
            per_node = table.of_function(name)
            assert set(per_node) == {"live", "late"}, (name, per_node)
            statuses[name] = {(s.revision, s.state) for s in per_node.values()}
            assert len(statuses[name]) == 1, (name, statuses[name])  # same revision, same state on both
        return statuses
    statuses = wait_until(both_agree, 60, "the late node to agree with the live one")
    assert {n: next(iter(s))[1].value for n, s in statuses.items()} == {
        "f1": "RUNNING", "f3": "STOPPED", "f4": "STOPPED"}
    # And the function the late node never saw created (f2) leaves no trace there.
    assert all(fn != "f2" for fn, _ in client._read_status().functions)


def test_garbage_on_the_control_topic_leaves_nodes_running_and_functions_intact(
        bootstrap_servers, namespace, client, nodes):
    node = nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(UPPER_WASM.read_bytes(),  # parallelism 2: on n2 too, once it starts
                                      upper_config(bootstrap_servers, "keep", src, dst) + "parallelism: 2\n")
    control = Topics(namespace).control
    p = Producer({"bootstrap.servers": bootstrap_servers})
    errors = []
    hb = status.encode_heartbeat(status.NodeHeartbeat("x", "h", 1, "v", 0, 0, 1000, 0))
    for key, value in [
        (b"keep", os.urandom(64)),  # garbage under a live function's name
        (b"other", b"\xc3\x01" + b"\x11" * 8 + b"unknown schema body"),
        (b"json", b"{json: not avro}"),
        (b"wrong-schema", hb),  # a valid record of another schema
        (b"\xff\xfe", b"key not UTF-8"),
    ]:
        p.produce(control, key=key, value=value, on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(10) == 0 and errors == [None] * 5  # (a compacted topic refuses keyless records itself)

    # A function created after the garbage still runs, and the old one still works.
    client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                      upper_config(bootstrap_servers, "after", f"{namespace}-in2", f"{namespace}-out2"))
    assert function_state(client, "keep").status == "RUNNING"
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k", b"still here")])
    assert out.wait_for(1) == [(b"k", b"STILL HERE")]
    assert node.proc.poll() is None
    # The node says which records it skipped, with their coordinates.
    log = node.log()
    assert f"skipped control record {control}[0]@" in log and "unknown schema" in log
    # A node started now, reading the garbage from the log, converges too.
    nodes("n2")
    wait_until(lambda: function_state(client, "keep").nodes == ("n1", "n2"), 60, "n2 running keep")
    out.close()


def test_schema_valid_nonsense_on_the_control_topic_fails_each_function_alone(
        bootstrap_servers, namespace, client, nodes):
    """Records that decode but cannot run: each function FAILED with why; the others run on."""
    node = nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "keep", src, dst))
    keep = client._read_control().table.get("keep")
    topics = Topics(namespace)
    producer = clients.producer(KafkaSettings(bootstrap_servers), "test")

    def record(name: str, config: str, artifact: ArtifactManifest = keep.artifact) -> FunctionRecord:
        return FunctionRecord(name, "processor", config, artifact, DesiredState.RUNNING, 1,
                              int(time.time() * 1000), "test")
    missing = ArtifactManifest("cd" * 32, 10, ArtifactKind.WASM_COMPONENT, topics.artifacts,
                               (ChunkRef(0, 10_000_000, 10),))
    huge = upper_config(bootstrap_servers, "huge", "a", "b") + "# " + "x" * 900_000 + "\n"
    write_record(producer, topics.control, record("badcfg", "name: badcfg\ntype: processor\ninput-groups: 7\n"))
    write_record(producer, topics.control,
                 record("nochunks", upper_config(bootstrap_servers, "nochunks", "a", "b"), missing))
    write_record(producer, topics.control, record("huge", huge))

    def failed(name: str):
        return (f := function_state(client, name)) and f.status == "FAILED" and f
    assert "input-groups: must be a non-empty list" in wait_until(lambda: failed("badcfg"), 60, "badcfg").error
    assert "chunk 0 is missing" in wait_until(lambda: failed("nochunks"), 60, "nochunks FAILED").error
    assert "more than the 262144" in wait_until(lambda: failed("huge"), 60, "huge FAILED").error
    # Meanwhile the sound function kept working, on the same node.
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k", b"still here")])
    assert out.wait_for(1) == [(b"k", b"STILL HERE")]
    assert node.proc.poll() is None and function_state(client, "keep").status == "RUNNING"
    out.close()


def test_artifact_hash_mismatch_refuses_to_run_and_reports_failed(bootstrap_servers, namespace, client, nodes):
    node = nodes("n1")
    settings = KafkaSettings(bootstrap_servers)
    topics = Topics(namespace)
    ensure_topics(clients.admin(settings), topics)
    producer = clients.producer(settings, "test")
    good = UPPER_WASM.read_bytes()
    sha = hashlib.sha256(good).hexdigest()
    # The chunk sits under the right key, but its bytes were altered on the way.
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    delivered = []
    producer.produce(topics.artifacts, key=artifact_store.chunk_key(sha, 0), value=bytes(bad),
                     on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
    producer.flush(10)
    err, partition, offset = delivered[0]
    assert err is None
    manifest = ArtifactManifest(sha, len(good), ArtifactKind.WASM_COMPONENT, topics.artifacts,
                                (ChunkRef(partition, offset, len(bad)),))
    record = FunctionRecord("tampered", "processor", upper_config(bootstrap_servers, "tampered", "a", "b"),
                            manifest, DesiredState.RUNNING, 1, int(time.time() * 1000), "test")
    write_record(producer, topics.control, record)
    info = wait_until(lambda: (f := function_state(client, "tampered")) and f.status == "FAILED" and f, 60,
                      "tampered FAILED")
    assert "hash mismatch" in info.error and sha in info.error
    # Nothing unverified reached the node's artifact cache.
    assert not list((node.cache_dir / "artifacts").glob(f"{sha}*"))


def test_a_guest_that_traps_fails_alone_and_the_node_survives(bootstrap_servers, namespace, client, nodes):
    node = nodes("n1")
    client.create_function_from_bytes(trapping_upper_wasm(),
                                      upper_config(bootstrap_servers, "fragile", f"{namespace}-in", f"{namespace}-o"))
    client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                      upper_config(bootstrap_servers, "sturdy", f"{namespace}-in2", f"{namespace}-o2"))
    produce(bootstrap_servers, f"{namespace}-in", [(b"k", b"!boom")])
    info = wait_until(lambda: (f := function_state(client, "fragile")) and f.status == "FAILED" and f, 60,
                      "fragile FAILED")
    assert "fragile" in info.error and f"{namespace}-in[0]@0" in info.error
    out = OutputReader(bootstrap_servers, f"{namespace}-o2")
    produce(bootstrap_servers, f"{namespace}-in2", [(b"k", b"fine")])
    assert out.wait_for(1) == [(b"k", b"FINE")]
    assert node.proc.poll() is None and function_state(client, "sturdy").status == "RUNNING"
    out.close()


def test_sigterm_commits_and_leaves_cleanly(bootstrap_servers, namespace, client, nodes):
    node = nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(str(i).encode(), b"x%d" % i) for i in range(50)])
    out.wait_for(50)
    assert node.terminate() == 0
    assert client.show_functions().nodes == []  # heartbeat tombstoned: no ghost node
    # Offsets were committed on the way out: a new node replays nothing.
    nodes("n2")
    produce(bootstrap_servers, src, [(b"last", b"last")])
    records = out.wait_for(51)
    assert records[50:] == [(b"last", b"LAST")] and len(out.poll()) == 51
    out.close()
