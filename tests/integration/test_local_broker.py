from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from fs_bus.errors import LocalClusterError
from fs_bus.local.broker import BrokerSpec, LocalBroker, free_port


def _create_topic(admin: AdminClient, topic: str, timeout: float = 30.0) -> None:
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=timeout)
    # Creation is acknowledged by the controller; wait until the broker serves it too.
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None and t.partitions and t.partitions[0].leader >= 0:
            return
        assert time.monotonic() < deadline, f"topic {topic} has no leader after {timeout}s"
        time.sleep(0.05)


def test_produce_consume_round_trip(bootstrap_servers: str, namespace: str) -> None:
    topic = f"{namespace}.round-trip"
    _create_topic(AdminClient({"bootstrap.servers": bootstrap_servers}), topic)

    sent = [(f"key-{i}".encode(), f"value-{i}".encode()) for i in range(10)]
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True})
    for key, value in sent:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    assert producer.flush(30) == 0, "records still undelivered after 30s"
    assert errors == []

    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers,
        "group.id": f"{namespace}.reader",
        "enable.auto.commit": False,
    })
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        received: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            received.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    assert received == sent


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalBroker(BrokerSpec(data_dir=tmp_path / "kafka", port=port))
        with pytest.raises(LocalClusterError, match=rf"port 127\.0\.0\.1:{port} is already in use"):
            broker.start()
        assert not broker.is_running()
        assert broker.pid is None


def test_status_and_stop_from_a_fresh_handle(tmp_path: Path) -> None:
    """What `fs-bus local status/down` does: find the broker through its data dir alone."""
    data_dir = tmp_path / "kafka"
    with LocalBroker(BrokerSpec(data_dir=data_dir, port=free_port())) as broker:
        other = LocalBroker.attach(data_dir)
        assert other.is_running()
        assert other.pid == broker.pid
        assert other.bootstrap_servers == broker.bootstrap_servers
        other.stop()
        assert not other.is_running()
        assert not broker.is_running()
    assert not (data_dir / "broker.pid").exists()
