"""The least each kind of principal needs, as Kafka ACL bindings: one list for the docs,
the tests and operators (``acls_for(...)`` feeds ``AdminClient.create_acls``).

- a **user** (``fs-bus sql``, ``FsClient``) reads the control and status topics, writes
  function records and artifact chunks, and asks calls;
- a **node** follows the control topic, fetches artifacts, writes status and answers
  calls, and runs functions: it reads their inputs in their consumer groups and
  writes their outputs;
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
    return [*_topic(principal, topics.control, _R, _W, _D), *_topic(principal, topics.artifacts, _W, _D),
            *_topic(principal, topics.status, _R, _D), *_topic(principal, topics.calls, _W, _D),
            *_topic(principal, topics.replies, _R, _D)]


def node_acls(principal: str, topics: Topics) -> list[AclBinding]:
    return [*_topic(principal, topics.control, _R, _D), *_topic(principal, topics.artifacts, _R, _D),
            *_topic(principal, topics.status, _W, _D), *_topic(principal, topics.calls, _R, _D),
            *_topic(principal, topics.replies, _W, _D)]


def function_acls(principal: str, inputs: list[str], outputs: list[str], group: str) -> list[AclBinding]:
    """What a node's principal needs to run one function: its inputs in its group, its outputs."""
    return [*(b for t in inputs for b in _topic(principal, t, _R, _D)),
            *(b for t in outputs for b in _topic(principal, t, _W, _D)),
            AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL, principal, "*", _R,
                       AclPermissionType.ALLOW)]


def operator_acls(principal: str, topics: Topics) -> list[AclBinding]:
    """Create the namespace's topics and check their configs, plus everything a user does."""
    prefix = [AclBinding(ResourceType.TOPIC, f"{topics.namespace}.", ResourcePatternType.PREFIXED, principal, "*",
                         op, AclPermissionType.ALLOW)
              for op in (AclOperation.CREATE, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)]
    return prefix + user_acls(principal, topics)
