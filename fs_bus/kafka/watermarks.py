"""High watermarks of many partitions in one round trip, for the node's parking probe.

``Consumer.get_watermark_offsets`` asks one partition per request; the admin API's
ListOffsets asks every partition a broker leads in one. A node with a thousand
parked functions asks once a second, so one request per broker matters.
"""

from __future__ import annotations

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from fs_bus.errors import KafkaUnavailable

Partition = tuple[str, int]


def high_watermarks(admin: AdminClient, partitions: list[Partition],
                    timeout: float = 5.0) -> tuple[dict[Partition, int], dict[Partition, str]]:
    """Each partition's high watermark (the offset the next record gets), and why a
    partition has none for good (an error a retry will not mend). A partition that only
    failed for now (a timeout, a leader moving, a topic deleted a moment ago) is in neither:
    ask again later. Raises ``KafkaUnavailable`` when the request could not be made."""
    if not partitions:
        return {}, {}
    try:
        futures = admin.list_offsets({TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions},
                                     request_timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"listing offsets: {exc.args[0].str() if exc.args else exc}") from None
    highs: dict[Partition, int] = {}
    failed: dict[Partition, str] = {}
    for tp, fut in futures.items():
        key = (tp.topic, tp.partition)
        try:
            highs[key] = fut.result(timeout + 1).offset
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if err is not None and not err.retriable() and err.code() >= 0:
                failed[key] = err.str()
        except TimeoutError:
            pass
    return highs, failed
