"""clients.take: a node's poll hands over what has arrived without waiting for a
batch to fill (which held records back for up to the poll timeout at low rates)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fs_bus.kafka.clients import take

LONG = 30.0  # a poll timeout far beyond anything the assertions below allow


def _topic(bootstrap: str) -> str:
    name = f"take-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the topic exists
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def _consumer(bootstrap: str, topic: str) -> Consumer:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"take-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    return c


def test_take_returns_what_arrived_without_waiting_for_a_full_batch(bootstrap_servers):
    topic = _topic(bootstrap_servers)
    p = Producer({"bootstrap.servers": bootstrap_servers})
    for i in range(3):
        p.produce(topic, b"%d" % i, partition=0)
    p.flush(30)
    c = _consumer(bootstrap_servers, topic)
    try:
        got: list = []
        started = time.monotonic()
        while len(got) < 3 and time.monotonic() - started < LONG:
            got += [m.value() for m in take(c, 1000, LONG) if m.error() is None]
        # consume(1000, 30) would have held these three for the whole 30 s.
        assert got == [b"0", b"1", b"2"]
        assert time.monotonic() - started < LONG / 2
    finally:
        c.close()


def test_take_waits_up_to_its_timeout_for_a_first_record_and_caps_at_n(bootstrap_servers):
    topic = _topic(bootstrap_servers)
    c = _consumer(bootstrap_servers, topic)
    try:
        started = time.monotonic()
        assert take(c, 10, 0.5) == []
        assert time.monotonic() - started >= 0.45  # an empty topic: it did wait
        p = Producer({"bootstrap.servers": bootstrap_servers})
        for i in range(25):
            p.produce(topic, b"%d" % i, partition=0)
        p.flush(30)
        sizes: list[int] = []
        values: list[bytes] = []
        while len(values) < 25:
            batch = take(c, 10, LONG)
            sizes.append(len(batch))
            values += [m.value() for m in batch]
        assert max(sizes) <= 10 and values == [b"%d" % i for i in range(25)]
    finally:
        c.close()
