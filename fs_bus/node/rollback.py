"""Auto-rollback: a node whose instance of a new revision fails before it ever ran puts the
previous revision back, by writing it to the control topic as a new revision.

Every node that saw the failure may write it, and they write the same bytes
(``fs_bus.control.upgrade.auto_rollback`` uses no clock and no node id), so the
control topic converges whoever wins; a node that already sees a newer record for
the function writes nothing. Nodes therefore need WRITE on the control topic
(``fs_bus.kafka.acls.node_acls``).
"""

from __future__ import annotations

import logging
from typing import Callable

from fs_bus.control import upgrade
from fs_bus.control.history import revision_of
from fs_bus.control.records import FunctionRecord
from fs_bus.control.store import ControlState, write_record, write_revision
from fs_bus.kafka.types import Producer

log = logging.getLogger(__name__)


class AutoRollback:
    def __init__(self, producer: Callable[[], Producer], topic: str, node_id: str):
        self._producer = producer
        self._topic = topic
        self._node_id = node_id
        self._written: set[tuple[str, int]] = set()  # (function, revision) rolled back by this node

    def consider(self, control: ControlState, record: FunctionRecord, failed: bool, ever_ran: bool,
                 error: str | None) -> FunctionRecord | None:
        """Write the rollback of ``record`` if its new code failed before it ran here; the record written."""
        if not upgrade.should_roll_back(record, failed, ever_ran):
            return None
        current = control.table.get(record.name)
        if current is None or current.revision != record.revision or (record.name, record.revision) in self._written:
            return None  # someone moved on already (a rollback, a new replace, a DROP)
        assert record.upgrade_from is not None
        previous = control.history.get(record.name, record.upgrade_from)
        if previous is None:
            log.warning("node %s: %s revision %d failed, but revision %d is not in its history: no rollback",
                        self._node_id, record.name, record.code_revision, record.upgrade_from)
            return None
        rollback = upgrade.auto_rollback(record, previous, error or "failed", control.history)
        changes = upgrade.describe_changes(record, rollback.artifact.sha256, rollback.config_yaml)
        producer = self._producer()
        # The history entry first: a record whose revision is not in the history never exists.
        write_revision(producer, self._topic, revision_of(rollback, changes))
        write_record(producer, self._topic, rollback)
        self._written.add((record.name, record.revision))
        log.warning("node %s: %s: %s", self._node_id, record.name, rollback.reason)
        return rollback
