"""The topics of one fs-bus namespace, created with the configs the design relies on.

Two fs-bus clusters share one Kafka cluster by using different namespaces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from fs_bus.errors import AccessDenied, KafkaUnavailable, TopicMisconfigured
from fs_bus.kafka.clients import SECURITY_DOC, denied

log = logging.getLogger(__name__)

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


def _check_configs(admin: AdminClient, names: list[str], timeout: float) -> None:
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    for res, fut in admin.describe_configs(resources, request_timeout=timeout).items():
        try:
            configs = fut.result()
        except KafkaException as exc:
            if denied(exc.args[0], "DESCRIBE_CONFIGS", res.name) is None:
                raise
            # Users and nodes need not read topic configs: the operator who made the
            # topics checks them (any principal allowed DESCRIBE_CONFIGS does too).
            log.debug("not allowed to check the configs of %s", res.name)
            continue
        for key, want in _REQUIRED.items():
            have = configs[key].value if key in configs else None
            if have != want:
                raise TopicMisconfigured(
                    f"topic {res.name!r} has {key}={have}, but fs-bus needs {key}={want}: without it the "
                    f"broker deletes function definitions by age. Fix it with: kafka-configs.sh "
                    f"--bootstrap-server HOST:PORT --alter --entity-type topics --entity-name {res.name} "
                    f"--add-config {key}={want}")


def ensure_data_topics(admin: AdminClient, names: list[str], timeout: float = 30.0) -> list[str]:
    """Create a function's input/output topics that do not exist yet, with broker defaults.

    Returns the ones created. Users expect ``kcat -P -t input-topic`` to just work in
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
    return created
