"""A partition worker: one input partition's own instance of user code, in order.

State belongs to a partition, so each assigned partition gets its own Store and
component instance (or process), created on assignment and closed on revocation.
"""

from __future__ import annotations

from dataclasses import dataclass

from fs_bus.runtime.base import Emitted, Processor


@dataclass
class PartitionWorker:
    topic: str
    partition: int
    source_id: int  # index of the input in the function's config, passed to fs-process
    processor: Processor
    next_offset: int | None = None  # first offset not yet processed (what to commit)
    processed: int = 0

    def process(self, offset: int, data: bytes) -> Emitted:
        emitted = self.processor.process(self.source_id, data)
        self.next_offset = offset + 1
        self.processed += 1
        return emitted

    def close(self) -> None:
        self.processor.close()

    @property
    def label(self) -> str:
        return f"{self.topic}:{self.partition}"
