"""Reading a compacted topic from its start to its present end (no consumer group).

The control and status topics are read this way: their whole content is the
state, so every reader starts at offset 0 and knows it has caught up when it
reaches the high watermark it saw when it started.
"""

from __future__ import annotations

import time
from typing import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from fs_bus.errors import KafkaUnavailable
from fs_bus.kafka.clients import denied, take


_NOT_YET = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE)


class TopicReader:
    """Follows every partition of one topic from the beginning (or its end), without a group."""

    def __init__(self, consumer: Consumer, topic: str, timeout: float = 10.0, from_end: bool = False):
        self.consumer = consumer
        self.topic = topic
        deadline = time.monotonic() + timeout
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        # A topic created a moment ago (by this client or a node starting next to it)
        # may not be in the broker's metadata yet: that passes within moments.
        while (md is not None and md.error is not None and md.error.code() in _NOT_YET
               and time.monotonic() < deadline):
            time.sleep(0.2)
            md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        refused = denied(md.error if md is not None else None, "DESCRIBE", f"topic {topic!r}",
                         getattr(consumer, "principal", ""))
        if refused is not None:
            raise refused
        if md is None or md.error is not None or not md.partitions:
            raise KafkaUnavailable(f"topic {topic!r} is not available: {md.error if md else 'missing'}")
        self.partitions = sorted(md.partitions)
        self.positions = {p: 0 for p in self.partitions}  # next offset to read
        if from_end:
            self.positions = self.end_offsets()
        consumer.assign([TopicPartition(topic, p, self.positions[p] if from_end else OFFSET_BEGINNING)
                         for p in self.partitions])

    def end_offsets(self, timeout: float = 30.0) -> dict[int, int]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5.0,
                                                               cached=False)[1]
                        for p in self.partitions}
            except KafkaException as exc:
                # A topic created a moment ago has no leader yet; that passes.
                if not exc.args[0].retriable() and exc.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION:
                    raise KafkaUnavailable(f"reading the end of {self.topic}: {exc.args[0].str()}") from None
                if time.monotonic() > deadline:
                    raise KafkaUnavailable(f"reading the end of {self.topic}: {exc.args[0].str()}") from None
                time.sleep(0.2)

    def poll(self, timeout: float, max_messages: int = 500) -> list[Message]:
        """What has arrived, up to ``max_messages``; waits up to ``timeout`` only while nothing has.

        ``consume(n, timeout)`` waits out its whole timeout unless ``n`` records come: a
        client's CREATE read the control and status topics to their ends that way and paid
        0.2 s per read, most of its CREATE -> RUNNING time."""
        msgs = take(self.consumer, max_messages, timeout)
        out = []
        for m in msgs:
            err = m.error()
            if err is not None:
                # A reader uses no group, but librdkafka still looks for the coordinator of
                # its throwaway group.id: a principal without group ACLs reads on regardless.
                if err.code() in (KafkaError._PARTITION_EOF, KafkaError.GROUP_AUTHORIZATION_FAILED):
                    continue
                refused = denied(err, "READ", f"topic {self.topic!r}", getattr(self.consumer, "principal", ""))
                if refused is not None:
                    raise refused
                if err.fatal():
                    raise KafkaUnavailable(f"reading {self.topic}: {err.str()}")
                continue  # transient; librdkafka retries
            self.positions[m.partition()] = m.offset() + 1
            out.append(m)
        return out

    def caught_up(self, ends: dict[int, int]) -> bool:
        # After compaction an offset may be missing, so compare positions, not counts.
        return all(self.positions[p] >= end or self._at_end(p, end) for p, end in ends.items())

    def _at_end(self, partition: int, end: int) -> bool:
        pos = self.consumer.position([TopicPartition(self.topic, partition)])[0].offset
        return pos >= end

    def read_to_end(self, handle: Callable[[Message], None], timeout: float = 30.0) -> None:
        """Deliver every record up to the end offsets as of now, then return."""
        ends = self.end_offsets()
        deadline = time.monotonic() + timeout
        while not self.caught_up(ends):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"timed out reading {self.topic} to its end {ends} (at {self.positions})")
            for m in self.poll(0.2):
                handle(m)

    def close(self) -> None:
        self.consumer.close()
