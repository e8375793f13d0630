"""The status topic as a store: nodes write their heartbeats and what they observe,
clients read it into a ``StatusTable`` and follow it while they wait.

``<ns>.status`` is compacted and keyed ``node/<id>`` or ``function/<name>/<node>``,
so reading it from offset 0 gives every node's latest report; a tombstone is a
node that said goodbye or a function it no longer runs. A record that cannot be
decoded is logged with where it is and skipped, on both sides: one bad record
never hides the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

from fs_bus.errors import DecodeError
from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.types import Message, Producer
from fs_bus.status import records as status
from fs_bus.status.records import FunctionStatus, NodeHeartbeat, StatusTable

log = logging.getLogger(__name__)


class StatusWriter:
    """A node's side: its heartbeat and its functions' observed states."""

    def __init__(self, producer: Producer, topic: str):
        self._producer = producer
        self.topic = topic

    def function(self, name: str, node_id: str, st: FunctionStatus | None) -> None:
        """Report what the node observes of ``name``; None: it no longer runs it."""
        self._write(status.function_key(name, node_id), None if st is None else status.encode_status(st))

    def heartbeat(self, node_id: str, hb: NodeHeartbeat | None) -> None:
        """The node is alive (``hb``), or has left (None)."""
        self._write(status.node_key(node_id), None if hb is None else status.encode_heartbeat(hb))

    def _write(self, key: bytes, value: bytes | None) -> None:
        self._producer.produce(self.topic, key=key, value=value)
        self._producer.poll(0)


def fold(table: StatusTable, msg: Message) -> StatusTable:
    """``table`` with one status record applied; a record that does not decode is logged and skipped."""
    try:
        return status.apply(table, msg.key(), msg.value())
    except DecodeError as exc:
        log.warning("skipped status record %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), exc)
        return table


def fold_into(table: StatusTable, msg: Message) -> StatusTable:
    """``fold`` for a reader that owns ``table``: a record's value goes into it in place.

    ``fold`` copies the table per record, so reading a status topic with n functions'
    records cost n² copied entries; a client's CREATE reads it whole to wait on the
    nodes. A tombstone (rare: a drop, a node's goodbye) still takes ``fold``'s road."""
    if msg.value() is None:
        return fold(table, msg)
    one = fold(StatusTable(), msg)  # just this record, decoded (or nothing, logged)
    table.nodes.update(one.nodes)
    table.functions.update(one.functions)
    return table


class StatusReader:
    """A client's side: the status table as the topic holds it now, kept current while followed."""

    def __init__(self, open_reader: Callable[[], TopicReader]):
        self._open_reader = open_reader
        self.table = StatusTable()
        self._reader: TopicReader | None = None

    def _fold(self, msg: Message) -> None:
        self.table = fold_into(self.table, msg)

    @classmethod
    def read(cls, open_reader: Callable[[], TopicReader]) -> StatusTable:
        """The whole status topic, read to its present end."""
        with cls(open_reader).following() as store:
            return store.table

    @contextmanager
    def following(self) -> Iterator[StatusReader]:
        """Read to the present end, then ``poll`` keeps ``table`` current until the block ends."""
        self._reader = self._open_reader()
        try:
            self._reader.read_to_end(self._fold)
            yield self
        finally:
            self._reader.close()
            self._reader = None

    def poll(self, timeout: float) -> None:
        """Fold what arrived within ``timeout``."""
        assert self._reader is not None, "poll() is for inside following()"
        for msg in self._reader.poll(timeout):
            self._fold(msg)
