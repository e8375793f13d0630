"""confluent-kafka wrapped once: every producer, consumer and admin client is built here.

Nobody else assembles a config dict, so defaults that matter for correctness
(acks=all and idempotence for control writes, no auto-commit for function
consumers) live in one place, and so does error translation.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from fs_bus.errors import AccessDenied, FsBusError, InvalidConfig, KafkaUnavailable
from fs_bus.kafka.budget import BUDGET, ClientLimitReached
from fs_bus.kafka.settings import KafkaSettings

if TYPE_CHECKING:
    from fs_bus.config.model import FunctionConfig

T = TypeVar("T")
log = logging.getLogger(__name__)
# librdkafka's own log lines go through Python logging, not straight to stderr.
_rdkafka_log = logging.getLogger("fs_bus.librdkafka")


class OncePerCause(logging.Filter):
    """Let one line per cause through every ``quiet_s`` seconds.

    librdkafka logs every reconnect attempt (20 a second to a broker that is down), so
    without this a user sees hundreds of identical lines before fs-bus's own message
    says what is wrong. The cause is the line without the client's name and timings."""

    _NOISE = re.compile(r"\[[^\]]*\]|\d+ms|#\w+-\d+")

    def __init__(self, quiet_s: float = 300.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.quiet_s, self.clock = quiet_s, clock
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        cause = self._NOISE.sub("", record.getMessage())
        now = self.clock()
        last = self._last.get(cause)
        if last is not None and now - last < self.quiet_s:
            return False
        if len(self._last) > 1000:  # a process that ran into many causes forgets the old ones
            self._last.clear()
        self._last[cause] = now
        return True


_rdkafka_log.addFilter(OncePerCause())


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


def _make(cls: Callable[[dict[str, Any]], T], conf: dict[str, Any], role: str, principal: str = "",
          wait: bool = True) -> T:
    """A client of ``cls``, counted against the process's budget of clients (fs_bus.kafka.budget)."""
    BUDGET.acquire(role, wait=wait)
    try:
        made = cls(conf)
    except RuntimeError as exc:  # out of thread-local keys though the budget had room: other code holds them
        BUDGET.release()
        if "thread local storage" in str(exc):
            raise ClientLimitReached(BUDGET.exhausted(role)) from None
        raise
    except BaseException:
        BUDGET.release()
        raise
    if principal:
        made.principal = principal  # type: ignore[attr-defined]
    return BUDGET.track(made)


def producer(settings: KafkaSettings, role: str, wait: bool = True, **overrides: Any) -> Producer:
    """A producer; ``wait=False``: never wait for a client slot (fs_bus.kafka.budget)."""
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
    return _make(_Producer, conf, role, settings.principal, wait)


def consumer(settings: KafkaSettings, role: str, group_id: str | None = None, wait: bool = True,
             **overrides: Any) -> Consumer:
    """A consumer; without ``group_id`` it is for ``assign()`` only and commits nothing. ``wait=False``:
    never wait for a client slot (fs_bus.kafka.budget)."""
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
    return _make(_Consumer, conf, role, settings.principal, wait)


class _Admin(AdminClient):
    principal = ""


def admin(settings: KafkaSettings) -> AdminClient:
    return _make(_Admin, {**settings.base(), "client.id": _client_id("admin"), "error_cb": _on_error,
                          "logger": _rdkafka_log}, "admin", settings.principal, wait=False)


_shared_admins: dict[tuple, AdminClient] = {}
_shared_lock = threading.Lock()


def shared_admin(settings: KafkaSettings) -> AdminClient:
    """The process's one admin client for a cluster (and security settings).

    A node starting a function made three admin clients to check its topics, each a
    main thread, an internal one and one per broker that connect, ask for metadata
    and are torn down: with hundreds of functions starting at once that was most of
    their cost. librdkafka's admin API is thread-safe, so every instance shares one."""
    key = (settings.bootstrap_servers, tuple(sorted(settings.properties.items())))
    with _shared_lock:
        made = _shared_admins.get(key)
        if made is None:
            made = _shared_admins[key] = admin(settings)
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
    """Replays a changelog partition: committed records only, so an aborted transaction's never count.
    Short-lived, and made while its function holds its other clients: it never waits for a slot."""
    return consumer(settings, "changelog-restore", wait=False, **{"isolation.level": "read_committed",
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


# Where a config check's clients log (a producer property on a consumer, ...): nowhere.
_check_log = logging.getLogger("fs_bus.librdkafka.check")
_check_log.propagate = False
_check_log.addHandler(logging.NullHandler())


def _judge(props: Mapping[str, str], role: str) -> KafkaError | None:
    """librdkafka's verdict on ``props``: it checks names and values when a client is
    made, and a client without bootstrap servers never connects anywhere."""
    make = Consumer if role == "consumer" else Producer
    try:
        made = make({**({"group.id": "fs-bus-config-check"} if role == "consumer" else {}), **props,
                     "logger": _check_log})
    except KafkaException as exc:
        return exc.args[0]
    if isinstance(made, Consumer):
        made.close()
    return None


def check_properties(config: FunctionConfig) -> None:
    """Raise ``InvalidConfig`` naming the key's path for a Kafka property of the function's
    inputs or outputs that librdkafka refuses (``auto.offset.rest``, a bad value), so a
    typo is caught by CREATE and by a node once, not retried forever."""
    where = [(f"input-groups[{g}].inputs[{i}]", inp.properties, "consumer")
             for g, group in enumerate(config.input_groups) for i, inp in enumerate(group.inputs)]
    where += [(f"outputs[{j}]", out.properties, "producer") for j, out in enumerate(config.outputs)]
    for path, props, role in where:
        err = _judge(props, role) if props else None
        if err is None:
            continue
        # Name the key: the first one refused on its own (a key may only be wrong together with others).
        key = next((k for k in props if _judge({k: props[k]}, role) is not None), None)
        raise InvalidConfig(f"the Kafka {role} refuses it: {err.str()}; see librdkafka's CONFIGURATION.md for "
                            "the properties it knows", f"{path}.{key}" if key else path)


def translate(exc: KafkaException | KafkaError, what: str, principal: str = "") -> FsBusError:
    """The ``FsBusError`` for a librdkafka failure while doing ``what`` (e.g. "listing
    functions"): ``AccessDenied`` when Kafka refused, else ``KafkaUnavailable``. Every
    raw ``KafkaException`` that would leave fs-bus goes through here."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if not isinstance(err, KafkaError):
        return KafkaUnavailable(f"{what}: Kafka failed: {err}")
    if err.code() in _AUTHENTICATION or err.code() in _AUTHORIZATION:
        return AccessDenied(f"{what}: Kafka refused {principal or 'this principal'} ({err.str()}); {SECURITY_DOC} "
                            "lists the ACLs each role needs", principal=principal)
    return KafkaUnavailable(f"{what}: Kafka failed: {err.str()}")


def probe(settings: KafkaSettings, timeout: float, interrupted: Callable[[], bool] | None = None) -> None:
    """Raise ``KafkaUnavailable`` (``AccessDenied`` for refused credentials) unless the
    cluster of ``settings`` answers a metadata request within ``timeout`` seconds.

    librdkafka retries an unreachable broker silently until a call's own timeout, so
    a caller that must answer in bounded time (a listing, a node starting a function)
    asks here first. Returns early when every broker refused the connection, or when
    ``interrupted()`` turns true (e.g. the function is being stopped).

    The process's shared admin client for the cluster, when there is one, answers first:
    a new client costs threads and connections (a node starting hundreds of functions
    probed each one's cluster)."""
    known = _shared_admins.get((settings.bootstrap_servers, tuple(sorted(settings.properties.items()))))
    if known is not None:
        try:
            known.list_topics(timeout=min(0.5, timeout))
            return
        except KafkaException:
            pass  # down, or slow: the probe below says which, and why
    errors: list[KafkaError] = []
    made = _make(AdminClient, {**settings.base(), "client.id": _client_id("probe"), "error_cb": errors.append,
                               "logger": _rdkafka_log}, "probe", wait=False)
    deadline = time.monotonic() + timeout
    while True:
        try:
            made.list_topics(timeout=min(0.5, max(deadline - time.monotonic(), 0.05)))
            return
        except KafkaException as exc:
            last: KafkaError = exc.args[0]
        made.poll(0)  # serves error_cb
        refused = [e for e in errors if e.code() in _AUTHENTICATION]
        if refused:
            raise AccessDenied(f"Kafka at {settings.bootstrap_servers} refused the credentials: {refused[-1].str()}; "
                               f"check the FS_BUS_KAFKA_* security settings ({SECURITY_DOC})")
        down = any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors)
        if down or time.monotonic() >= deadline or (interrupted is not None and interrupted()):
            why = next((e.str() for e in reversed(errors) if e.code() != KafkaError._ALL_BROKERS_DOWN), last.str())
            raise KafkaUnavailable(f"Kafka at {settings.bootstrap_servers} cannot be reached ({why})")


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


# Errors a partition gives while its leader is still being elected or loaded, e.g.
# right after its topic was created: asking again a moment later succeeds.
_SETTLING = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
})


def watermarks(consumer: Consumer, tp: TopicPartition, timeout: float) -> tuple[int, int]:
    """``(low, high)`` offsets of ``tp``, asked again while its leader is still settling
    (a topic created a moment ago), until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            if exc.args[0].code() not in _SETTLING or time.monotonic() >= deadline:
                raise
        time.sleep(0.1)


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

