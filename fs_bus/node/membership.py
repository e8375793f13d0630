"""The node's view of the cluster's members: the live nodes and their labels.

Read from ``<ns>.status`` (the ``node/<id>`` heartbeats; function keys are skipped
undecoded), so every node sees the same members and places functions alike
(``fs_bus.placement``). A node is live while its last heartbeat is recent (a few
beats, ``NodeHeartbeat.alive``); one that stopped cleanly tombstoned its key and
leaves at once; one killed leaves when its beats stop coming.
"""

from __future__ import annotations

from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.types import Message
from fs_bus.status.records import NodeHeartbeat, StatusTable
from fs_bus.status.store import fold

_NODE_PREFIX = b"node/"


class Membership:
    def __init__(self, reader: TopicReader, node_id: str, labels: dict[str, str]):
        self._reader = reader
        self.node_id = node_id
        self.labels = labels
        self.table = StatusTable()

    def _fold(self, msg: Message) -> None:
        if (msg.key() or b"").startswith(_NODE_PREFIX):
            self.table = fold(self.table, msg)

    def read_to_end(self, timeout: float = 60.0) -> None:
        self._reader.read_to_end(self._fold, timeout=timeout)

    def poll(self) -> None:
        """Fold the heartbeats that have arrived, without waiting."""
        for msg in self._reader.poll(0):
            self._fold(msg)

    def live(self, now_ms: int) -> dict[str, dict[str, str]]:
        """Live node id -> its labels; this node always counts (its own beat may not be read back yet)."""
        nodes = {n: dict(hb.labels) for n, hb in self.table.nodes.items() if hb.alive(now_ms)}
        nodes[self.node_id] = dict(self.labels)
        return nodes

    def heartbeats(self) -> dict[str, NodeHeartbeat]:
        return dict(self.table.nodes)

    def close(self) -> None:
        self._reader.close()
