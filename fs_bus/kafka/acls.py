"""The least each kind of principal needs, as Kafka ACL bindings: one list for the docs,
the tests and operators (``acls_for(...)`` feeds ``AdminClient.create_acls``).

- a **user** (``fs-bus sql``, ``FsClient``) reads the control and status topics, writes
  function records and artifact chunks, and asks calls;
- a **node** follows the control topic (and writes to it the rollback of a revision that
  failed to start), fetches artifacts, writes status and answers calls, and runs functions: it reads their inputs in their consumer groups, writes
  their outputs, keeps their state in changelog topics it creates
  (``<ns>.changelog.*``), and under exactly-once uses transactional ids ``fs-bus.<ns>.*``;
- an **operator** creates the namespace's topics (and may check their configs).
"""

from __future__ import annotations

from confluent_kafka.admin import (
    AclBindingFilter,
    AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType,
)

from fs_bus.kafka.topics import Topics

_R, _W, _D = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE


def _topic(principal: str, name: str, *ops: AclOperation) -> list[AclBinding]:
    return [AclBinding(ResourceType.TOPIC, name, ResourcePatternType.LITERAL, principal, "*", op,
                       AclPermissionType.ALLOW) for op in ops]


def user_acls(principal: str, topics: Topics) -> list[AclBinding]:
    """Also DELETE on the changelogs, which DROP FUNCTION and START ... FROM remove. (Describing
    a function's lag and START ... FROM need DESCRIBE and READ on its group and inputs; starting
    a shadow needs CREATE, READ and WRITE on the changelogs, which it seeds: shadow_acls.)"""
    return [*_topic(principal, topics.control, _R, _W, _D), *_topic(principal, topics.artifacts, _W, _D),
            *_topic(principal, topics.status, _R, _D), *_topic(principal, topics.calls, _W, _D),
            *_topic(principal, topics.replies, _R, _D), *_topic(principal, topics.logs, _R, _D),
            *_prefixed(ResourceType.TOPIC, principal, f"{topics.namespace}.changelog.", AclOperation.DELETE, _D)]


def _prefixed(resource: ResourceType, principal: str, prefix: str, *ops: AclOperation) -> list[AclBinding]:
    return [AclBinding(resource, prefix, ResourcePatternType.PREFIXED, principal, "*", op, AclPermissionType.ALLOW)
            for op in ops]


def node_acls(principal: str, topics: Topics) -> list[AclBinding]:
    return [*_topic(principal, topics.control, _R, _W, _D), *_topic(principal, topics.artifacts, _R, _D),
            # status: heartbeats and function status out; the live nodes read back for placement
            *_topic(principal, topics.status, _R, _W, _D), *_topic(principal, topics.calls, _R, _D),
            *_topic(principal, topics.replies, _W, _D), *_topic(principal, topics.logs, _W, _D),
            # functions' state: the node creates each changelog, writes it and restores from it
            *_prefixed(ResourceType.TOPIC, principal, f"{topics.namespace}.changelog.", AclOperation.CREATE, _R, _W, _D),
            # processing.guarantee: exactly_once (transactional id fs-bus.<ns>.<function>.<node>)
            *_prefixed(ResourceType.TRANSACTIONAL_ID, principal, f"fs-bus.{topics.namespace}.", _W, _D)]


def shadow_acls(principal: str, topics: Topics) -> list[AclBinding]:
    """What a user adds to start shadows (``'mode'='shadow'``): the shadow's changelogs are created
    and seeded from the live ones. (Its group's offsets are set too: READ on ``<group>.shadow.``.)"""
    return _prefixed(ResourceType.TOPIC, principal, f"{topics.namespace}.changelog.", AclOperation.CREATE, _R, _W)


def function_acls(principal: str, inputs: list[str], outputs: list[str], group: str,
                  dead_letter: str | None = None) -> list[AclBinding]:
    """What a node's principal needs to run one function: its inputs in its group, its outputs
    (and its dead-letter topic, if it has one)."""
    return [*(b for t in inputs for b in _topic(principal, t, _R, _D)),
            *(b for t in [*outputs, *([dead_letter] if dead_letter else [])] for b in _topic(principal, t, _W, _D)),
            AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL, principal, "*", _R,
                       AclPermissionType.ALLOW)]


def operator_acls(principal: str, topics: Topics) -> list[AclBinding]:
    """Create the namespace's topics and check their configs, plus everything a user does."""
    prefix = [AclBinding(ResourceType.TOPIC, f"{topics.namespace}.", ResourcePatternType.PREFIXED, principal, "*",
                         op, AclPermissionType.ALLOW)
              for op in (AclOperation.CREATE, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)]
    return prefix + user_acls(principal, topics)
