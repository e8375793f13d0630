"""The confluent-kafka names the rest of fs-bus uses, re-exported: only ``fs_bus.kafka``
imports confluent-kafka, so this folder is where the library meets the project."""

from __future__ import annotations

from confluent_kafka import (
    OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

__all__ = [
    "OFFSET_BEGINNING", "OFFSET_END", "AdminClient", "Consumer", "KafkaError", "KafkaException", "Message",
    "OffsetSpec", "Producer", "TopicPartition",
]
