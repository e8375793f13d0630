"""A function's consumer group seen from outside: lag, emptiness, and moving its offsets.

Used by the client (``describe``, ``START ... FROM``), and by a node's instance asking
whether it is alone in its group before it parks (``members``). Every call goes
through the admin API, so it works while no member is alive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from fs_bus.errors import KafkaUnavailable, WaitTimeout

NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: the group committed nothing for the partition


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # the group's next offset to read, None if it never committed
    start: int  # the partition's first offset
    end: int  # the partition's next offset (last stable offset: what read_committed readers see)

    @property
    def lag(self) -> int:
        """Records the group has not yet processed."""
        return self.end - (self.start if self.committed is None else max(self.committed, self.start))


def _result(fut, what: str):
    try:
        return fut.result()
    except KafkaException as exc:
        raise KafkaUnavailable(f"{what}: {exc.args[0].str() if exc.args else exc}") from None


def partitions_of(admin: AdminClient, topics: list[str], timeout: float = 30.0) -> list[TopicPartition]:
    try:
        md = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise KafkaUnavailable(f"listing the partitions of {', '.join(topics)}: {exc.args[0].str()}") from None
    return [TopicPartition(t, p) for t in topics if t in md for p in sorted(md[t].partitions)]


def _offsets(admin: AdminClient, tps: list[TopicPartition], spec: OffsetSpec,
             timeout: float = 30.0) -> dict[tuple[str, int], int]:
    if not tps:
        return {}
    futures = admin.list_offsets({TopicPartition(tp.topic, tp.partition): spec for tp in tps},
                                 request_timeout=timeout)
    return {(tp.topic, tp.partition): _result(f, f"listing offsets of {tp.topic}[{tp.partition}]").offset
            for tp, f in futures.items()}


def lag(admin: AdminClient, group: str, topics: list[str], timeout: float = 30.0) -> list[PartitionLag]:
    """The group's position and lag on every partition of ``topics``; each request gives
    up after ``timeout`` seconds."""
    tps = partitions_of(admin, topics, timeout)
    if not tps:
        return []
    (fut,) = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                               request_timeout=timeout).values()
    committed = {(tp.topic, tp.partition): tp.offset
                 for tp in _result(fut, f"reading group {group!r}'s offsets").topic_partitions}
    starts = _offsets(admin, tps, OffsetSpec.earliest(), timeout)
    ends = _offsets(admin, tps, OffsetSpec.latest(), timeout)
    out = []
    for tp in tps:
        key = (tp.topic, tp.partition)
        c = committed.get(key, NO_OFFSET)
        out.append(PartitionLag(tp.topic, tp.partition, None if c < 0 else c, starts[key], ends[key]))
    return out


def members(admin: AdminClient, group: str) -> list[str]:
    """Client ids of the group's current members (empty when nobody is in it)."""
    (fut,) = admin.describe_consumer_groups([group], request_timeout=30).values()
    desc = _result(fut, f"describing group {group!r}")
    return [m.client_id or m.member_id for m in desc.members]


def wait_empty(admin: AdminClient, group: str, timeout: float) -> None:
    """Wait until the group has no members, e.g. after every node stopped the function."""
    deadline = time.monotonic() + timeout
    while True:
        present = members(admin, group)
        if not present:
            return
        if time.monotonic() > deadline:
            raise WaitTimeout(
                f"consumer group {group!r} still has {len(present)} member(s) ({', '.join(sorted(present))}) "
                f"after {timeout:.0f} s; a node killed without stopping stays a member until the group's "
                "session timeout (10 s by default)")
        time.sleep(0.5)


def reset(admin: AdminClient, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Set the group's committed offsets (the group must be empty)."""
    if not offsets:
        return
    tps = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
    (fut,) = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)]).values()
    _result(fut, f"resetting group {group!r}'s offsets")


def offsets_at(admin: AdminClient, topics: list[str], kind: str, value: int = 0) -> dict[tuple[str, int], int]:
    """Each partition's offset for a start position: ``earliest``, ``latest``, ``offset`` (clamped
    to the partition's range) or ``timestamp`` (the first record at or after ``value`` ms; the
    end when there is none)."""
    tps = partitions_of(admin, topics)
    if kind == "earliest":
        return _offsets(admin, tps, OffsetSpec.earliest())
    if kind == "latest":
        return _offsets(admin, tps, OffsetSpec.latest())
    if kind == "offset":
        starts = _offsets(admin, tps, OffsetSpec.earliest())
        ends = _offsets(admin, tps, OffsetSpec.latest())
        return {k: min(max(value, starts[k]), ends[k]) for k in starts}
    if kind == "timestamp":
        found = _offsets(admin, tps, OffsetSpec.for_timestamp(value))
        ends = _offsets(admin, tps, OffsetSpec.latest())
        return {k: (o if o >= 0 else ends[k]) for k, o in found.items()}
    raise ValueError(f"unknown start position kind {kind!r}")
