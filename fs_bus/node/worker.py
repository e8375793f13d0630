"""A partition worker: one input partition's own instance of user code, in order.

State belongs to a partition, so each assigned partition gets its own Store and
component instance (or process) and its own state back end, created on assignment
and closed on revocation.

Event time and checkpoints, as the guest sees them:

- the *watermark* of a partition is the highest Kafka record timestamp seen on it;
  when a consumed batch moves it forward, ``fs-process-watermark(source-id, ms)`` is
  called once for the batch (not once per record);
- at every input-offset commit a worker that processed records since the last one
  gets ``fs-take-checkpoint(id)``, with ids growing by one per partition and kept
  in the partition's state, so they keep growing across restarts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from confluent_kafka import Message

from fs_bus.errors import BatchFailed
from fs_bus.runtime.base import Emitted, Processor
from fs_bus.state.backend import StateBackend

# fs-bus's own bookkeeping inside a partition's state, beside the guest's stores.
INTERNAL_STORE = "__fs_bus__"
CHECKPOINT_KEY = b"checkpoint-id"


@dataclass
class PartitionWorker:
    topic: str
    partition: int
    source_id: int  # index of the input in the function's config, passed to fs-process
    processor: Processor
    state: StateBackend | None = None
    next_offset: int | None = None  # first offset not yet processed (what to commit)
    processed: int = 0
    dirty: bool = False  # processed records since the last checkpoint
    max_timestamp: int = -1
    watermark_sent: int = -1
    last_checkpoint_id: int = 0

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

    def _advance(self, done: list[Message]) -> None:
        if not done:
            return
        self.next_offset = done[-1].offset() + 1
        self.processed += len(done)
        self.dirty = True
        for m in done:
            ts_type, ts = m.timestamp()
            if ts_type and ts > self.max_timestamp:
                self.max_timestamp = ts

    def advance_watermark(self) -> Emitted | None:
        if self.max_timestamp <= self.watermark_sent:
            return None
        self.watermark_sent = self.max_timestamp
        return self.processor.process_watermark(self.source_id, self.max_timestamp)

    def checkpoint(self) -> Emitted | None:
        if not self.dirty:
            return None
        checkpoint_id = self.last_checkpoint_id + 1  # engines keeping state themselves count per instance
        if self.state is not None:
            raw = self.state.get(INTERNAL_STORE, CHECKPOINT_KEY)
            checkpoint_id = (struct.unpack(">Q", raw)[0] if raw else 0) + 1
            self.state.put(INTERNAL_STORE, CHECKPOINT_KEY, struct.pack(">Q", checkpoint_id))
        emitted = self.processor.take_checkpoint(checkpoint_id)  # the guest's hook, then state made durable
        self.last_checkpoint_id = checkpoint_id
        self.dirty = False
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
