"""Where the client expects a function to run: the nodes' own placement, computed alike.

Nodes not chosen for a function open nothing for it and report nothing, so a client
waiting for RUNNING waits for the chosen nodes only; ``SHOW FUNCTIONS`` and
``describe`` show the choice and why (``fs_bus.placement``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from fs_bus.control.spec import FunctionSpec
from fs_bus.errors import NoLiveNodes
from fs_bus.kafka.partitions import PartitionCounts
from fs_bus.placement import Placement, label_text, place
from fs_bus.status.records import StatusTable

T = TypeVar("T")


def live_labels(table: StatusTable, now_ms: int) -> dict[str, dict[str, str]]:
    """Live node id -> its labels."""
    return {n: dict(hb.labels) for n, hb in table.live_nodes(now_ms).items()}


def placement_of(spec: FunctionSpec, table: StatusTable, now_ms: int, counts: PartitionCounts) -> Placement:
    """The nodes ``spec``'s function runs on, as every node computes it."""
    nodes = live_labels(table, now_ms)
    config = spec.config
    if config is None:  # one node reports an unusable record
        return place(spec.name, nodes, parallelism=1)
    partitions = None if config.parallelism else counts.for_config(config)
    return place(spec.name, nodes, parallelism=config.parallelism, partitions=partitions,
                 labels=config.placement_labels)


def placement_row(spec: FunctionSpec, pl: Placement) -> dict:
    """``describe``'s placement: the nodes, the parallelism asked and found, the labels, and why."""
    config = spec.config
    asked = config.parallelism if config is not None else None
    labels = dict(config.placement_labels) if config is not None else {}
    return {"nodes": list(pl.nodes), "parallelism": len(pl.nodes), "wanted": pl.wanted,
            "wanted_from": "config" if asked else "input partitions", "labels": labels,
            "labels_text": label_text(labels), "reason": pl.reason, "summary": pl.summary()}


def awaited(name: str, pl: Placement, what: str, revision: int, live: Mapping[str, T]) -> dict[str, T]:
    """The live nodes a client waiting for ``what`` waits on: those the function is placed on.
    A function that cannot be placed never runs: waiting for RUNNING says why at once."""
    if not pl.nodes and what == "RUNNING":
        raise NoLiveNodes(f"function {name!r}: the record is durable (revision {revision}), but it cannot be "
                          f"placed: {pl.reason}; start a node that can run it (fs-bus node --label ...)")
    return {n: hb for n, hb in live.items() if n in pl.nodes}
