"""The namespace's topics: created right, refused when misconfigured, artifacts reclaimed after DROP."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fs_bus.artifacts.store import chunk_key
from fs_bus.client import FsClient
from fs_bus.errors import TopicMisconfigured
from fs_bus.kafka.topics import Topics
from tests.integration.harness import ROOT, UPPER_WASM, upper_config


def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes | None]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe", "enable.auto.commit": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, 0)])
        out: list = []
        while high and (not out or out[-1][0] < high - 1):
            out += [(m.offset(), m.key(), m.value()) for m in c.consume(100, 1.0) if m.error() is None]
        return [(k, v) for _, k, v in out]
    finally:
        c.close()


def test_topics_are_created_compacted(bootstrap_servers, namespace, client):
    client.show_functions()
    topics = Topics(namespace)
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    from confluent_kafka.admin import ConfigResource
    for name in (topics.control, topics.artifacts, topics.status):
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([res])[res].result()
        assert configs["cleanup.policy"].value == "compact", name


def test_a_control_topic_that_is_not_compacted_is_refused_with_the_fix(bootstrap_servers, namespace):
    topic = Topics(namespace).control
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "delete"})])[topic].result()
    with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace) as client:
        with pytest.raises(TopicMisconfigured) as info:
            client.show_functions()
    assert topic in str(info.value) and "cleanup.policy=compact" in str(info.value)
    # A node refuses to start on it too, saying the same.
    r = subprocess.run([sys.executable, "-m", "fs_bus", "node", "-b", bootstrap_servers, "--namespace", namespace],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cleanup.policy=compact" in r.stderr


def test_drop_tombstones_an_artifact_no_other_function_uses(bootstrap_servers, namespace, client, nodes):
    nodes("n1")
    wasm = UPPER_WASM.read_bytes()
    sha = hashlib.sha256(wasm).hexdigest()
    client.create_function_from_bytes(wasm, upper_config(bootstrap_servers, "one", f"{namespace}-a", "x"))
    client.create_function_from_bytes(wasm, upper_config(bootstrap_servers, "two", f"{namespace}-b", "y"))
    artifacts = Topics(namespace).artifacts
    # Same bytes, one upload: the second function reuses the first one's chunks.
    assert [k for k, v in _read_all(bootstrap_servers, artifacts)] == [chunk_key(sha, 0)]
    client.drop_function("one")
    assert all(v is not None for _, v in _read_all(bootstrap_servers, artifacts))  # "two" still needs it
    client.drop_function("two")
    assert _read_all(bootstrap_servers, artifacts)[-1] == (chunk_key(sha, 0), None)


def test_piped_statements_run_as_a_script(bootstrap_servers, namespace):
    r = subprocess.run([sys.executable, "-m", "fs_bus", "sql", "-b", bootstrap_servers, "--namespace", namespace],
                       input="SHOW FUNCTIONS;\nSTOP FUNCTION ghost;\n", cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "0 function(s)" in r.stdout and "'ghost' does not exist" in r.stderr
