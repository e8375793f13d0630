"""How far behind a function instance's partitions are, read from its own consumer.

From librdkafka's cached high watermarks (every fetch response updates them: no broker
round trip) and the consumer's positions. Only the instance's thread touches its
consumer, so the instance calls this and the metrics and the watchdog read the result.
"""

from __future__ import annotations

from fs_bus.kafka.types import Consumer, KafkaException, TopicPartition
from fs_bus.observability.metrics import consumer_lag

Partition = tuple[str, int]


def read_lag(consumer: Consumer, processed: dict[Partition, int | None]) -> dict[Partition, int]:
    """Records behind per partition held; ``processed`` maps each to the first offset its worker
    has not processed (None: nothing yet). A partition with no number yet is left out."""
    positions = dict(processed)
    highs: dict[Partition, int] = {}
    for topic, partition in positions:
        try:
            highs[(topic, partition)] = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)[1]
        except KafkaException:
            pass  # not fetched yet: no number rather than a wrong one
    try:
        # The consumer's position: where it fetches from when nothing was processed since the
        # assignment, and past a transaction's commit marker (which no record answers to).
        for tp in consumer.position([TopicPartition(t, p) for t, p in positions]):
            if tp.offset >= 0:
                key = (tp.topic, tp.partition)
                positions[key] = max(positions[key] or 0, tp.offset)
    except KafkaException:
        pass  # a metric is never worth failing the function for
    return consumer_lag(highs, positions)
