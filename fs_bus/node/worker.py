"""A partition worker: one input partition's own instance of user code, in order.

State belongs to a partition, so each assigned partition gets its own Store and
component instance (or process) and its own state back end, created on assignment
and closed on revocation.

Event time and checkpoints, as the guest sees them:

- the *watermark* of a source (an input topic) is the lowest, over the partitions
  of it this instance holds and has seen records on, of the highest Kafka record
  timestamp seen on each; when a consumed batch moves it forward, every worker of
  that source gets ``fs-process-watermark(source-id, ms)`` once for the batch;
- at every input-offset commit a worker that processed records since the last one
  gets ``fs-take-checkpoint(id)``, with ids growing by one per partition and kept
  in the partition's state, so they keep growing across restarts.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from fs_bus.errors import BatchFailed
from fs_bus.kafka.types import KafkaError, Message
from fs_bus.runtime.base import Emitted, Processor
from fs_bus.state.backend import StateBackend
from fs_bus.state.changelog import Change

# fs-bus's own bookkeeping inside a partition's state, beside the guest's stores.
INTERNAL_STORE = "__fs_bus__"
CHECKPOINT_KEY = b"checkpoint-id"


class Changelogged(Protocol):
    """The changelog side of a partition's state: a ``ChangelogBackend`` in this
    process, or a Python function's process that owns its state."""

    def sealed(self) -> list[Change]:
        """What the last checkpoint sealed, to be written to the changelog."""
        ...

    def confirm(self, next_offset: int, now_ms: int) -> None:
        """The sealed changes are in the changelog before ``next_offset``: commit local state."""
        ...


@dataclass(slots=True)
class PartitionRuntime:
    """What a partition worker runs: user code, the state it sees, and that state's changelog side."""

    processor: Processor
    state: StateBackend | None  # None: the state lives with the processor (a Python function's process)
    changelog: Changelogged | None = None
    changelog_next: int = 0  # the changelog partition's offset after what the state holds


# Given the function's code (the loader prepares it), build each partition worker's
# runtime, its state restored: called with the partition's topic and number.
ProcessorFactory = Callable[[str, int], PartitionRuntime]


@dataclass
class PartitionWorker:
    topic: str
    partition: int
    source_id: int  # index of the input in the function's config, passed to fs-process
    processor: Processor
    state: StateBackend | None = None
    next_offset: int | None = None  # first offset not yet processed (what to commit)
    dirty: bool = False  # processed records since the last checkpoint
    max_timestamp: int = -1
    watermark_sent: int = -1
    last_checkpoint_id: int = 0
    changelog: Changelogged | None = None  # None: the state is local only
    changelog_next: int = 0  # the changelog partition's offset after the last change written
    sealed: bool = False  # checkpointed, its changes not yet confirmed

    def process_batch(self, msgs: list[Message]) -> list[Emitted]:
        """Run consecutive records of this partition; on failure, what ran before it counts."""
        try:
            # fast path: engines that take whole records get the messages themselves
            # (one Emitted for the batch, its records keyed by the function)
            process_records = getattr(self.processor, "process_records", None)
            if process_records is not None:
                results = [process_records(self.source_id, msgs)]
            else:
                results = self.processor.process_batch(self.source_id, [m.value() or b"" for m in msgs])
        except BatchFailed as exc:
            self._advance(msgs[:exc.index])
            raise
        self._advance(msgs)
        return results

    def skip(self, msg: Message) -> None:
        """Move past a record its error policy settled (skipped or dead-lettered) without running it."""
        self._advance([msg])

    def _advance(self, done: list[Message]) -> None:
        if not done:
            return
        self.next_offset = done[-1].offset() + 1
        self.dirty = True
        for m in done:
            ts_type, ts = m.timestamp()
            if ts_type and ts > self.max_timestamp:
                self.max_timestamp = ts

    def advance_watermark(self, watermark: int) -> Emitted | None:
        """Tell user code its source's watermark moved to ``watermark`` (ms); None if it did not."""
        if watermark <= self.watermark_sent:
            return None
        self.watermark_sent = watermark
        return self.processor.process_watermark(self.source_id, watermark)

    def checkpoint(self) -> Emitted | None:
        if not self.dirty:
            return None
        checkpoint_id = self.last_checkpoint_id + 1  # engines keeping state themselves count per instance
        if self.state is not None:
            raw = self.state.get(INTERNAL_STORE, CHECKPOINT_KEY)
            checkpoint_id = (struct.unpack(">Q", raw)[0] if raw else 0) + 1
            self.state.put(INTERNAL_STORE, CHECKPOINT_KEY, struct.pack(">Q", checkpoint_id))
        # The guest's hook, then the state made durable (locally) or sealed for its changelog.
        emitted = self.processor.take_checkpoint(checkpoint_id)
        self.last_checkpoint_id = checkpoint_id
        self.dirty = False
        self.sealed = self.changelog is not None
        return emitted

    def close(self) -> None:
        try:
            self.processor.close()
        finally:
            if self.state is not None:
                self.state.close()

    @property
    def label(self) -> str:
        return f"{self.topic}:{self.partition}"


def source_watermarks(partitions: list[tuple[int, int]]) -> dict[int, int]:
    """Each source's watermark from its partitions' ``(source_id, highest timestamp seen)``:
    the lowest over the partitions that have seen a record (-1: none yet), so an event
    time is only promised once every busy partition of the source has passed it. Pure."""
    marks: dict[int, int] = {}
    for source, ts in partitions:
        if ts >= 0:
            marks[source] = min(marks.get(source, ts), ts)
    return marks


def timed(run: Callable[[list[Message]], list[Emitted]], msgs: list[Message]) -> tuple[list[Emitted], float]:
    """Run a partition's batch and say how long it took (for the batch-duration histogram)."""
    started = time.perf_counter()
    results = run(msgs)
    return results, time.perf_counter() - started


def by_partition(msgs: list[Message], on_error: Callable[[KafkaError], None]) -> dict[tuple[str, int], list[Message]]:
    """Split a consumed batch by partition, keeping each partition's order."""
    groups: dict[tuple[str, int], list[Message]] = {}
    for msg in msgs:
        err = msg.error()
        if err is not None:
            on_error(err)
            continue
        groups.setdefault((msg.topic(), msg.partition()), []).append(msg)
    return groups
