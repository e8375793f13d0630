"""confluent-kafka wrapped once: every producer, consumer and admin client is built here.

Nobody else assembles a config dict, so defaults that matter for correctness
(acks=all and idempotence for control writes, no auto-commit for function
consumers) live in one place, and so does error translation.
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from fs_bus.errors import KafkaUnavailable
from fs_bus.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)
# librdkafka's own log lines go through Python logging, not straight to stderr.
_rdkafka_log = logging.getLogger("fs_bus.librdkafka")


def _client_id(role: str) -> str:
    return f"fs-bus-{role}-{socket.gethostname()}"


def _on_error(err: KafkaError) -> None:
    # librdkafka reports transient broker trouble here and retries by itself;
    # only fatal errors deserve more than a log line, and those surface on calls.
    log.debug("kafka: %s", err)


def producer(settings: KafkaSettings, role: str, **overrides: Any) -> Producer:
    conf: dict[str, Any] = {
        **settings.base(),
        "client.id": _client_id(role),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "error_cb": _on_error,
        "logger": _rdkafka_log,
        **overrides,
    }
    return Producer(conf)


def consumer(settings: KafkaSettings, role: str, group_id: str | None = None, **overrides: Any) -> Consumer:
    """A consumer; without ``group_id`` it is for ``assign()`` only and commits nothing."""
    conf: dict[str, Any] = {
        **settings.base(),
        "client.id": _client_id(role),
        # librdkafka insists on a group.id even for assign-only use; a unique one
        # that never commits leaves no trace on the cluster.
        "group.id": group_id or f"fs-bus-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "error_cb": _on_error,
        "logger": _rdkafka_log,
        **overrides,
    }
    return Consumer(conf)


def admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient({**settings.base(), "client.id": _client_id("admin"), "error_cb": _on_error,
                        "logger": _rdkafka_log})


def check_reachable(admin_client: AdminClient, bootstrap: str, timeout: float = 10.0) -> None:
    """Fail fast with a clear message instead of librdkafka's silent retries."""
    try:
        admin_client.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {bootstrap} ({exc.args[0].str() if exc.args else exc}); "
            "is the broker running? (`fs-bus local up` starts one; --bootstrap-servers or "
            "FS_BUS_BOOTSTRAP_SERVERS point elsewhere)") from None


def produce_durably(producer: Producer, topic: str, key: bytes, value: bytes | None, timeout: float = 30.0) -> None:
    """Write one record and return once the broker acknowledged it (acks=all), or raise."""
    outcome: list = []
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(timeout)
    if not outcome:
        raise KafkaUnavailable(f"write to {topic!r} was not acknowledged within {timeout:.0f} s")
    if outcome[0] is not None:
        raise KafkaUnavailable(f"write to {topic!r} failed: {outcome[0].str()}")
