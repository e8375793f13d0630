"""The commit point: where a function instance makes what its workers did durable.

In this order, which is what makes a crash safe at any step:

1. each worker's checkpoint (the guest's ``fs-take-checkpoint`` hook; its state
   changes sealed), what the hook emits produced like any output;
2. the sealed changes written to the changelogs (the partition of the changelog
   has the input partition's number);
3. outputs and changes acknowledged, or, under exactly-once, the transaction
   committed with the input offsets in it;
4. local state committed, with the changelog offset it is caught up to;
5. input offsets committed (at-least-once; exactly-once committed them in 3).

So a crash replays records onto state that may hold them (at-least-once), never
skips one. Pure over its arguments: the outputs and workers are the instance's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Callable, Protocol

from fs_bus.node.worker import PartitionWorker
from fs_bus.runtime.base import Emitted
from fs_bus.state.changelog import encode_key

# (topic, partition, next offset to read): what a commit point commits for one partition.
Offset = tuple[str, int, int]


class CommitTarget(Protocol):
    """What a commit point needs of the instance's outputs (``fs_bus.node.outputs.Outputs``)."""

    def emit(self, emitted: Emitted | None, where: str | Callable[[], str], key: bytes | None = None) -> None: ...

    def produce(self, topic: str, partition: int | None, key: bytes | None, value: bytes | None,
                headers: list | None = None) -> None: ...

    def acknowledge(self, offsets: list[Offset]) -> None: ...

    def commit_offsets(self, offsets: list[Offset]) -> None: ...


def commit_point(workers: Sequence[PartitionWorker], outputs: CommitTarget, changelogs: Mapping[str, str],
                 now_ms: Callable[[], int]) -> None:
    """Make durable what ``workers`` did since the last commit point, in the order above.

    ``changelogs`` maps an input topic to its changelog topic. If a step raises, the
    later ones do not happen: nothing is committed that is not acknowledged."""
    for w in workers:
        outputs.emit(w.checkpoint(), f"checkpoint of {w.label}")
    sealed = [(w, write_changelog(w, outputs, changelogs[w.topic])) for w in workers if w.sealed]
    offsets = [(w.topic, w.partition, w.next_offset) for w in workers if w.next_offset is not None]
    outputs.acknowledge(offsets)
    now = now_ms()
    for w, written in sealed:
        # The offset after our records is at least this: the partition's end when the
        # state was restored, plus what we wrote since (transaction markers and any
        # zombie's writes only add to it). A lower bound is all a restore needs: it
        # replays a few changes it already holds, never skips one.
        w.changelog_next += written
        assert w.changelog is not None
        w.changelog.confirm(w.changelog_next, now)
        w.sealed = False
    outputs.commit_offsets(offsets)


def write_changelog(worker: PartitionWorker, outputs: CommitTarget, topic: str) -> int:
    """Write what the worker's checkpoint sealed to its changelog partition (same number as
    its input's); return how many records that was."""
    assert worker.changelog is not None
    changes = worker.changelog.sealed()
    for change in changes:
        outputs.produce(topic, worker.partition, encode_key(change.store, change.key), change.value)
    return len(changes)
