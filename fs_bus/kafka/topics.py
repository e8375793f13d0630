"""The topics of one fs-bus namespace, created with the configs the design relies on.

Two fs-bus clusters share one Kafka cluster by using different namespaces.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from fs_bus.errors import AccessDenied, KafkaUnavailable, TopicMisconfigured
from fs_bus.kafka.clients import SECURITY_DOC, denied

log = logging.getLogger(__name__)

# Seven days: long enough to look back at last week's incident, short enough to stay small.
LOGS_RETENTION_MS = 7 * 24 * 3600 * 1000
# Chunks stay well under the broker's default message.max.bytes (1 MiB).
ARTIFACT_CHUNK_SIZE = 512 * 1024


@dataclass(frozen=True, slots=True)
class Topics:
    namespace: str

    @property
    def control(self) -> str:
        return f"{self.namespace}.control"

    @property
    def artifacts(self) -> str:
        return f"{self.namespace}.artifacts"

    @property
    def status(self) -> str:
        return f"{self.namespace}.status"

    @property
    def calls(self) -> str:
        return f"{self.namespace}.calls"

    @property
    def replies(self) -> str:
        return f"{self.namespace}.replies"

    @property
    def logs(self) -> str:
        return f"{self.namespace}.logs"

    def specs(self) -> dict[str, dict[str, str]]:
        """Each topic's required configs. The state topics are compacted: each holds the present."""
        return {
            # The control log is the source of truth: never delete by age.
            self.control: {"cleanup.policy": "compact", "retention.ms": "-1"},
            self.artifacts: {"cleanup.policy": "compact", "retention.ms": "-1",
                             "max.message.bytes": str(2 * ARTIFACT_CHUNK_SIZE)},
            # Heartbeats churn; small segments let the cleaner keep the topic short.
            self.status: {"cleanup.policy": "compact", "segment.ms": "600000",
                          "min.cleanable.dirty.ratio": "0.1"},
            # Calls are conversations, not state: keep them an hour.
            self.calls: {"cleanup.policy": "delete", "retention.ms": "3600000"},
            self.replies: {"cleanup.policy": "delete", "retention.ms": "3600000"},
            # Functions' log lines (key: the function): a week, then gone by age.
            self.logs: {"cleanup.policy": "delete", "retention.ms": str(LOGS_RETENTION_MS)},
        }


# Configs whose wrong value breaks fs-bus (the rest are tuning, left to operators).
_REQUIRED = {"cleanup.policy": "compact"}
_COMPACTED = ("control", "artifacts", "status")


def ensure_topics(admin: AdminClient, topics: Topics, overrides: Mapping[str, Mapping[str, str]] | None = None,
                  timeout: float = 30.0) -> None:
    """Create missing topics; refuse existing ones whose configs would break fs-bus."""
    specs = topics.specs()
    for name, extra in (overrides or {}).items():
        specs[name] = {**specs.get(name, {}), **extra}
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot list topics: {exc}") from None
    missing = [NewTopic(n, num_partitions=1, replication_factor=-1, config=dict(c))
               for n, c in specs.items() if n not in existing]
    present = [n for n in specs if n in existing]
    if missing:
        for name, fut in admin.create_topics(missing, request_timeout=timeout).items():
            try:
                fut.result()
                log.info("created topic %s", name)
            except KafkaException as exc:
                who = getattr(admin, "principal", "")
                if denied(exc.args[0], "CREATE", f"topic {name!r}", who) is not None:
                    # A topic the principal may not DESCRIBE looks missing, so this is also
                    # what a user without DESCRIBE on an existing topic sees.
                    raise AccessDenied(
                        f"topic {name!r} is not visible to {who or 'this principal'} (no DESCRIBE ACL) and it may not "
                        f"create it (no CREATE ACL): an operator creates the namespace's topics and grants access; "
                        f"{SECURITY_DOC} lists the ACLs of each role", operation="DESCRIBE",
                        resource=f"topic {name!r}", principal=who) from None
                if exc.args[0].code() != 36:
                    raise KafkaUnavailable(f"cannot create topic {name!r}: {exc.args[0].str()}") from None
                present.append(name)  # TOPIC_ALREADY_EXISTS: someone else made it; check it like the rest
    compacted = {getattr(topics, t) for t in _COMPACTED}
    present = [n for n in present if n in compacted]
    if present:
        _check_configs(admin, present, timeout)


def _describe_configs(admin: AdminClient, name: str, timeout: float) -> dict:
    """A topic's configs; a topic another client created a moment ago may take a moment to describe."""
    deadline = time.monotonic() + timeout
    while True:
        (fut,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)],
                                        request_timeout=timeout).values()
        try:
            return fut.result()
        except KafkaException as exc:
            if exc.args[0].code() != 3 or time.monotonic() > deadline:  # UNKNOWN_TOPIC_OR_PART
                raise
            time.sleep(0.2)


def _check_configs(admin: AdminClient, names: list[str], timeout: float) -> None:
    for name in names:
        try:
            configs = _describe_configs(admin, name, timeout)
        except KafkaException as exc:
            if denied(exc.args[0], "DESCRIBE_CONFIGS", name) is None:
                raise KafkaUnavailable(f"cannot read the configs of topic {name!r}: {exc.args[0].str()}") from None
            # Users and nodes need not read topic configs: the operator who made the
            # topics checks them (any principal allowed DESCRIBE_CONFIGS does too).
            log.debug("not allowed to check the configs of %s", name)
            continue
        for key, want in _REQUIRED.items():
            have = configs[key].value if key in configs else None
            if have != want:
                raise TopicMisconfigured(
                    f"topic {name!r} has {key}={have}, but fs-bus needs {key}={want}: without it the "
                    f"broker deletes function definitions by age. Fix it with: kafka-configs.sh "
                    f"--bootstrap-server HOST:PORT --alter --entity-type topics --entity-name {name} "
                    f"--add-config {key}={want}")


def ensure_data_topics(admin: AdminClient, names: list[str], timeout: float = 30.0) -> list[str]:
    """Create a function's input/output topics that do not exist yet, with broker defaults.

    Returns the ones created. Users expect ``kcat -P -t upper-input`` to just work in
    development; on a real cluster the topics usually exist already.
    """
    existing = admin.list_topics(timeout=timeout).topics
    wanted = sorted({n for n in names if n not in existing})
    if not wanted:
        return []
    created = []
    futures = admin.create_topics([NewTopic(n, num_partitions=-1, replication_factor=-1) for n in wanted],
                                  request_timeout=timeout)
    for name, fut in futures.items():
        try:
            fut.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != 36:
                raise KafkaUnavailable(f"cannot create topic {name!r}: {exc.args[0].str()}") from None
    await_leaders(admin, created)
    return created


def await_leaders(admin: AdminClient, names: list[str], timeout: float = 10.0) -> None:
    """Wait (bounded) until every partition of the topics ``names`` has a leader: a topic
    just created answers NOT_LEADER_FOR_PARTITION for a moment, and a function starting
    on it would report that as its failure. Returns quietly at the deadline: what uses
    the topics then retries as it would anyway."""
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=max(0.1, deadline - time.monotonic())).topics
        except KafkaException:
            md = {}
        if all(n in md and md[n].partitions and md[n].error is None
               and all(p.leader >= 0 and p.error is None for p in md[n].partitions.values()) for n in names):
            return
        time.sleep(0.1)


def partition_counts(admin: AdminClient, names: list[str], timeout: float = 30.0) -> dict[str, int]:
    """How many partitions each existing topic of ``names`` has."""
    existing = admin.list_topics(timeout=timeout).topics
    return {n: len(existing[n].partitions) for n in names if n in existing}


def ensure_changelog_topics(admin: AdminClient, wanted: Mapping[str, int], delete_retention_ms: int,
                            timeout: float = 30.0) -> list[str]:
    """Create compacted changelog topics with at least the given partition counts.

    A changelog has one partition per partition of its input topic; when the input
    grows, so does its changelog (existing partitions keep their numbers, so each
    partition's state stays where it was). Returns the topics created.
    """
    have = partition_counts(admin, list(wanted), timeout)
    config = {"cleanup.policy": "compact", "delete.retention.ms": str(delete_retention_ms)}
    missing = [NewTopic(n, num_partitions=p, replication_factor=-1, config=config)
               for n, p in sorted(wanted.items()) if n not in have]
    created = []
    if missing:
        for name, fut in admin.create_topics(missing, request_timeout=timeout).items():
            try:
                fut.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS: another node was first
                    raise KafkaUnavailable(f"cannot create changelog topic {name!r}: {exc.args[0].str()}") from None
        await_leaders(admin, created)
    grow = [NewPartitions(n, wanted[n]) for n in sorted(have) if have[n] < wanted[n]]
    if grow:
        for name, fut in admin.create_partitions(grow, request_timeout=timeout).items():
            try:
                fut.result()
            except KafkaException as exc:
                if exc.args[0].code() != 37:  # INVALID_PARTITIONS: another node grew it already
                    raise KafkaUnavailable(f"cannot add partitions to {name!r}: {exc.args[0].str()}") from None
    return created


def delete_topics(admin: AdminClient, names: list[str], timeout: float = 30.0) -> list[str]:
    """Delete the topics of ``names`` that exist; returns those deleted."""
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot list topics to delete {', '.join(names)}: {exc.args[0].str()}") from None
    doomed = [n for n in names if n in existing]
    deleted = []
    if doomed:
        for name, fut in admin.delete_topics(doomed, request_timeout=timeout).items():
            try:
                fut.result()
                deleted.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != 3:  # UNKNOWN_TOPIC_OR_PART: someone else deleted it
                    raise KafkaUnavailable(f"cannot delete topic {name!r}: {exc.args[0].str()}") from None
    return deleted
