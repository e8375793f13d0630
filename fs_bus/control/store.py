"""The control log on Kafka: read it whole into a ``DesiredTable``, write records durably.

Shared by the client (which reads, then writes one record) and the node (which
follows it forever). Bad records are reported with their coordinates and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


from fs_bus.control import history as revisions
from fs_bus.control import table as desired
from fs_bus.control.history import FunctionRevision, History, encode_revision, history_key
from fs_bus.control.records import FunctionRecord, encode_function
from fs_bus.control.spec import FunctionSpec
from fs_bus.control.table import DesiredTable, Rejected
from fs_bus.errors import DecodeError
from fs_bus.kafka.clients import produce_durably
from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.types import Message, Producer

log = logging.getLogger(__name__)


@dataclass
class ControlState:
    """The table folded so far, plus what a client needs beyond it."""

    table: DesiredTable = field(default_factory=DesiredTable)
    # Highest revision ever seen per name, tombstoned ones included, so a function
    # created again after DROP gets a revision its old status records never had.
    max_revision: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    # Each function's record with its config parsed (once, on first use), beside the table.
    specs: dict[str, FunctionSpec] = field(default_factory=dict)
    # Every function's code revisions (history/<name>/<rev> keys), which outlive compaction.
    history: History = field(default_factory=History)

    def fold(self, msg: Message) -> Rejected | None:
        try:
            if revisions.is_history_key(msg.key()):
                revisions.fold(self.history, msg.key(), msg.value())
                return None
            name = desired.fold(self.table.functions, msg.key(), msg.value())
        except DecodeError as exc:
            rej = Rejected(msg.topic(), msg.partition(), msg.offset(),
                           (msg.key() or b"").decode("utf-8", "replace"), str(exc))
            self.rejected.append(rej)
            return rej
        rec = self.table.get(name)
        if rec is None:
            self.specs.pop(name, None)
        elif (known := self.specs.get(name)) is None:
            self.specs[name] = FunctionSpec(rec)
        elif known.record is not rec:
            self.specs[name] = known.succeeded_by(rec)
        if msg.value() is not None and rec is not None:
            self.max_revision[rec.name] = max(self.max_revision.get(rec.name, 0), rec.revision)
        return None

    def spec(self, name: str) -> FunctionSpec | None:
        return self.specs.get(name)


def read_control(reader: TopicReader, timeout: float = 30.0) -> ControlState:
    state = ControlState()
    reader.read_to_end(state.fold, timeout)
    return state


def write_record(producer: Producer, topic: str, record: FunctionRecord, timeout: float = 30.0) -> None:
    produce_durably(producer, topic, record.name.encode(), encode_function(record), timeout)


def write_tombstone(producer: Producer, topic: str, name: str, timeout: float = 30.0) -> None:
    produce_durably(producer, topic, name.encode(), None, timeout)


def write_revision(producer: Producer, topic: str, rev: FunctionRevision, timeout: float = 30.0) -> None:
    produce_durably(producer, topic, history_key(rev.name, rev.code_revision), encode_revision(rev), timeout)


def forget_history(producer: Producer, topic: str, name: str, code_revisions: list[int],
                   timeout: float = 30.0) -> None:
    """Tombstone a dropped function's history keys."""
    for rev in code_revisions:
        produce_durably(producer, topic, history_key(name, rev), None, timeout)
