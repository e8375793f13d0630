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

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from fs_bus.errors import AccessDenied, KafkaUnavailable
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
    if err.code() in _AUTHENTICATION:
        # Refused credentials look like an unreachable broker to every later call;
        # remember why, so check_reachable can say it.
        _refused_credentials.append(err.str())


# Error codes meaning "not allowed", by what Kafka refused.
_AUTHENTICATION = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL}
_AUTHORIZATION = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
}
_refused_credentials: list[str] = []
SECURITY_DOC = "docs/operations/security.md"


def denied(err: KafkaError | None, operation: str, resource: str, principal: str = "") -> AccessDenied | None:
    """An ``AccessDenied`` naming what was refused, if ``err`` is an authorization or
    authentication failure; else None. ``resource`` reads like ``topic 'fs-bus.control'``."""
    if err is None:
        return None
    who = principal or "the principal fs-bus authenticates as (FS_BUS_KAFKA_SASL_USERNAME, or the certificate)"
    if err.code() in _AUTHENTICATION:
        return AccessDenied(f"Kafka refused the credentials of {who}: {err.str()}; check the FS_BUS_KAFKA_* "
                            "security settings", operation=operation, resource=resource, principal=principal)
    kind = _AUTHORIZATION.get(err.code())
    if kind is None:
        return None
    if kind != "topic" and not resource.startswith(kind):
        resource = f"the {kind}" if kind == "cluster" else f"{kind} (of {resource})"
    return AccessDenied(
        f"Kafka denied {operation} on {resource} to {who} ({err.str()}): an operator must add an ACL "
        f"allowing it (kafka-acls.sh --add --allow-principal ... --operation {operation.title()}); "
        f"{SECURITY_DOC} lists what each role needs", operation=operation, resource=resource, principal=principal)


class _Producer(Producer):
    """A Producer that knows its principal, so a refused write can say who was refused."""

    principal = ""


class _Consumer(Consumer):
    principal = ""


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
    made = _Producer(conf)
    made.principal = settings.principal
    return made


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
    made = _Consumer(conf)
    made.principal = settings.principal
    return made


class _Admin(AdminClient):
    principal = ""


def admin(settings: KafkaSettings) -> AdminClient:
    made = _Admin({**settings.base(), "client.id": _client_id("admin"), "error_cb": _on_error,
                   "logger": _rdkafka_log})
    made.principal = settings.principal
    return made


# --- the clients fs-bus builds, by what they are for ---
# A node killed -9 holds its partitions until the group's session timeout; librdkafka's
# 45 s default is long for a stream processor. Inputs' properties override these.
FUNCTION_CONSUMER_DEFAULTS = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000}
# An open transaction of a node killed -9 blocks read_committed readers until it times out.
TRANSACTION_TIMEOUT_MS = 15_000


def function_consumer(settings: KafkaSettings, function: str, group_id: str,
                      properties: dict[str, Any]) -> Consumer:
    """A function instance's member of its consumer group; ``properties`` are its inputs'."""
    return consumer(settings, f"fn-{function}", group_id=group_id,
                    **{"partition.assignment.strategy": "cooperative-sticky",
                       "topic.metadata.refresh.interval.ms": 10_000,
                       "auto.offset.reset": "earliest", **FUNCTION_CONSUMER_DEFAULTS, **properties})


def output_producer(settings: KafkaSettings, function: str, on_delivery: Any, capacity: int,
                    properties: dict[str, Any]) -> Producer:
    """A function's producer towards one output cluster; ``properties`` are the output's."""
    return producer(settings, f"fn-{function}",
                    **{"queue.buffering.max.messages": max(capacity, 1000),
                       # delivery reports for failures only, to one callback: no Python call per record
                       "on_delivery": on_delivery, "delivery.report.only.error": True, **properties})


def transactional_producer(settings: KafkaSettings, function: str, transactional_id: str, on_delivery: Any,
                           capacity: int, properties: dict[str, Any]) -> Producer:
    """Exactly-once: the function's one transactional producer, on its inputs' cluster."""
    return producer(settings, f"fn-{function}",
                    **{"transactional.id": transactional_id, "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                       "on_delivery": on_delivery, "delivery.report.only.error": True,
                       "queue.buffering.max.messages": max(capacity, 1000), **properties})


def inputs_producer(settings: KafkaSettings, function: str, on_delivery: Any) -> Producer:
    """A function's producer on its inputs' cluster (changelogs, dead letters) when no output is there."""
    return producer(settings, f"fn-{function}", on_delivery=on_delivery, **{"delivery.report.only.error": True})


def changelog_reader(settings: KafkaSettings) -> Consumer:
    """Replays a changelog partition: committed records only, so an aborted transaction's never count."""
    return consumer(settings, "changelog-restore", **{"isolation.level": "read_committed",
                                                      "enable.partition.eof": True})


def log_producer(settings: KafkaSettings) -> Producer:
    """The node's producer of guest log lines."""
    # Bounded: a full queue drops lines (counted) instead of blocking user code.
    return producer(settings, "node-logs", **{"queue.buffering.max.messages": 100_000, "linger.ms": 100,
                                              "enable.idempotence": False})


def control_writer(settings: KafkaSettings) -> Producer:
    """The client's producer of control records, artifacts and calls."""
    # No idempotence: every write here is one record awaited alone, and a record
    # written twice (a retry) is the same whole state twice. Without it a principal
    # with no WRITE anywhere is refused on the topic, not on the cluster's producer ids.
    return producer(settings, "client", **{"enable.idempotence": False})


def reader(settings: KafkaSettings, role: str) -> Consumer:
    """A consumer for ``assign()``, no group: control, status, calls and replies readers."""
    return consumer(settings, role)


def end_reader(settings: KafkaSettings, role: str) -> Consumer:
    """A reader that sees a partition's end (``enable.partition.eof``): artifacts, logs."""
    return consumer(settings, role, **{"enable.partition.eof": True})


def demo_consumer(settings: KafkaSettings, group_id: str) -> Consumer:
    """``fs-bus local demo``'s reader of the example's output, in a group of its own."""
    return consumer(settings, "demo", group_id=group_id)


def check_reachable(admin_client: AdminClient, bootstrap: str, timeout: float = 10.0) -> None:
    """Fail fast with a clear message instead of librdkafka's silent retries."""
    _refused_credentials.clear()
    try:
        admin_client.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin_client.poll(0)  # serves error_cb, which says whether the credentials were refused
        if _refused_credentials:
            raise AccessDenied(f"Kafka at {bootstrap} refused the credentials: {_refused_credentials[-1]}; check "
                               f"the FS_BUS_KAFKA_* security settings ({SECURITY_DOC})") from None
        raise KafkaUnavailable(
            f"cannot reach Kafka at {bootstrap} ({exc.args[0].str() if exc.args else exc}); "
            "is the broker running? (`fs-bus local up` starts one; --bootstrap-servers or "
            "FS_BUS_BOOTSTRAP_SERVERS point elsewhere)") from None


def produce_durably(producer: Producer, topic: str, key: bytes, value: bytes | None, timeout: float = 30.0) -> None:
    """Write one record and return once the broker acknowledged it (acks=all), or raise."""
    outcome: list = []
    try:
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, msg: outcome.append(err))
        producer.flush(timeout)
    except KafkaException as exc:  # a fatal producer error, e.g. no producer id granted
        refused = denied(exc.args[0], "WRITE", f"topic {topic!r}", getattr(producer, "principal", ""))
        raise refused or KafkaUnavailable(f"write to {topic!r} failed: {exc.args[0].str()}") from None
    if not outcome:
        raise KafkaUnavailable(f"write to {topic!r} was not acknowledged within {timeout:.0f} s")
    if outcome[0] is not None:
        refused = denied(outcome[0], "WRITE", f"topic {topic!r}", getattr(producer, "principal", ""))
        if refused is not None:
            raise refused
        raise KafkaUnavailable(f"write to {topic!r} failed: {outcome[0].str()}")


def take(consumer: Consumer, n: int, timeout: float) -> list[Message]:
    """Up to ``n`` records: what ``consumer`` has fetched already, or else the next
    record to arrive within ``timeout`` together with whatever came along with it.

    ``consumer.consume(n, timeout)`` waits until it has ``n`` records or ``timeout``
    has passed, so at a modest rate every record would wait for its batch to fill.
    This never waits once there is a record: it goes through as soon as the caller
    is free, and batches grow by themselves under load, from what was fetched while
    the caller handled the last one."""
    msgs = consumer.consume(n, 0)
    if not msgs:
        msgs = consumer.consume(1, timeout)
        if msgs and n > 1:
            msgs += consumer.consume(n - 1, 0)
    return msgs

