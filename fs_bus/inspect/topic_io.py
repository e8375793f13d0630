"""``fs-bus produce TOPIC`` and ``fs-bus consume TOPIC``: records in and out of any topic
from the shell, so a walkthrough needs nothing but fs-bus (kcat does the same where it
is installed).

The start position is parsed here (pure); reading and writing go through the clients
``fs_bus.kafka.clients`` builds, with the same security settings as everything else.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fs_bus.errors import FsBusError, KafkaUnavailable
from fs_bus.kafka import clients
from fs_bus.kafka.clients import denied
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.types import OFFSET_END, KafkaError, KafkaException, Message, TopicPartition


class BadStartOffset(FsBusError):
    """``--offset`` is not beginning, end, an offset or -N."""


@dataclass(frozen=True, slots=True)
class StartOffset:
    """Where ``consume`` starts on every partition: ``beginning``, ``end``, an absolute
    offset (``at``, clamped to the partition's range) or the last ``-at`` records."""

    kind: str  # beginning | end | at | last
    n: int = 0

    @classmethod
    def parse(cls, text: str) -> StartOffset:
        t = text.strip().lower()
        if t in ("beginning", "earliest"):
            return cls("beginning")
        if t in ("end", "latest"):
            return cls("end")
        if t.lstrip("-").isdigit():
            n = int(t)
            return cls("last", -n) if n < 0 else cls("at", n)
        raise BadStartOffset(f"--offset {text!r}: use beginning, end, an offset (42) or the last N records (-10)")

    def resolve(self, low: int, high: int) -> int:
        """The partition's first offset to read, given its low and high watermarks."""
        if self.kind == "beginning":
            return low
        if self.kind == "end":
            return high
        if self.kind == "at":
            return min(max(self.n, low), high)
        return max(high - self.n, low)


def produce(settings: KafkaSettings, topic: str, records: Iterable[tuple[bytes | None, bytes]],
            partition: int | None = None, timeout: float = 30.0) -> int:
    """Write ``records`` (key, value) to ``topic`` and return how many the broker
    acknowledged (acks=all); raise naming the topic if any was refused."""
    producer = clients.producer(settings, "console", **{"enable.idempotence": False})
    errors: list[KafkaError] = []
    sent = 0

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, -1 if partition is None else partition, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
            except KafkaException as exc:
                raise clients.translate(exc, f"writing to topic {topic!r}", settings.principal) from None
        sent += 1
        producer.poll(0)
    left = producer.flush(timeout)
    if errors:
        refused = denied(errors[0], "WRITE", f"topic {topic!r}", settings.principal)
        raise refused or KafkaUnavailable(f"writing to topic {topic!r} failed for {len(errors)} of {sent} "
                                          f"record(s): {errors[0].str()}")
    if left:
        raise KafkaUnavailable(f"{left} of {sent} record(s) to topic {topic!r} were not acknowledged within "
                               f"{timeout:.0f} s")
    return sent


def split_key(line: bytes, separator: bytes | None, key: bytes | None) -> tuple[bytes | None, bytes]:
    """A line as a record: ``key<separator>value`` when a separator is given (a line
    without it is all value), else the fixed ``key`` (or none) and the line."""
    if separator:
        k, sep, v = line.partition(separator)
        if sep:
            return k, v
    return key, line


def consume(settings: KafkaSettings, topic: str, start: StartOffset, follow: bool, count: int | None,
            stop: Callable[[], bool] = lambda: False, timeout: float = 10.0) -> Iterator[Message]:
    """Records of every partition of ``topic`` from ``start``. Without ``follow`` it ends at
    the partitions' ends as of the start; ``count`` ends it after that many records (and
    waits for them, when following)."""
    consumer = clients.consumer(settings, "console", **{"enable.partition.eof": True})
    try:
        try:
            md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        except KafkaException as exc:
            raise clients.translate(exc, f"reading topic {topic!r}", settings.principal) from None
        refused = denied(md.error if md is not None else None, "DESCRIBE", f"topic {topic!r}", settings.principal)
        if refused is not None:
            raise refused
        if md is None or md.error is not None or not md.partitions:
            raise FsBusError(f"topic {topic!r} does not exist (a function creates its input and output topics "
                             "when it starts; `fs-bus produce` creates one on a broker that allows it)")
        assignment, ends = [], {}
        for p in sorted(md.partitions):
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            except KafkaException as exc:
                raise clients.translate(exc, f"reading the offsets of {topic}[{p}]", settings.principal) from None
            first = start.resolve(low, high)
            assignment.append(TopicPartition(topic, p, first if first < high else OFFSET_END))
            ends[p] = high
        consumer.assign(assignment)
        pending = {p for p, tp in zip(sorted(md.partitions), assignment) if tp.offset != OFFSET_END}
        seen = 0
        while not stop():
            if count is not None and seen >= count:
                return
            if not follow and not pending:
                return
            for msg in consumer.consume(500, 0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        continue
                    refused = denied(err, "READ", f"topic {topic!r}", settings.principal)
                    if refused is not None:
                        raise refused
                    if err.fatal():
                        raise KafkaUnavailable(f"reading topic {topic!r}: {err.str()}")
                    continue
                if msg.offset() + 1 >= ends[msg.partition()]:
                    pending.discard(msg.partition())
                if not follow and msg.offset() >= ends[msg.partition()]:
                    continue  # arrived after we started: not ours without --follow
                yield msg
                seen += 1
                if count is not None and seen >= count:
                    return
    finally:
        consumer.close()


def as_json(msg: Message) -> dict:
    """A record for ``-o json``: text stays text; bytes that are not UTF-8 come as base64."""
    doc: dict = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                 "timestamp": msg.timestamp()[1]}
    for name, data in (("key", msg.key()), ("value", msg.value())):
        if data is None:
            doc[name] = None
            continue
        try:
            doc[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            doc[f"{name}_base64"] = base64.b64encode(data).decode()
    headers = msg.headers()
    if headers:
        doc["headers"] = {k: (v.decode("utf-8", "replace") if v is not None else None) for k, v in headers}
    return doc
