"""What a partition worker needs from an engine, whatever the engine is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fs_bus.api.emitted import Emitted, OutputRecord  # noqa: F401 - re-exported: the runtimes name them here
from fs_bus.errors import BatchFailed, GuestError
from fs_bus.runtime.framing import InputRecord


class Processor(Protocol):
    """One instance of user code, owned by one partition worker (its own state).

    Hooks the user code does not define are no-ops: ``process_watermark`` and
    ``take_checkpoint`` emit nothing, ``check_heartbeat`` is True, ``custom``
    raises ``GuestError`` saying the function has no such export.
    """

    def process(self, source_id: int, data: bytes) -> Emitted:
        """Run the function on one record; raise ``GuestError`` if user code fails."""
        ...

    def process_batch(self, source_id: int, records: list[bytes]) -> list[Emitted]:
        """Run the function on records of one partition, in order; one ``Emitted`` per record.

        If record ``i`` fails, raise ``BatchFailed(index=i, done=<the first i results>)``.
        Engines whose calls are cheap loop over ``process``; engines across a process
        boundary move the whole batch at once.
        """
        ...

    def process_watermark(self, source_id: int, watermark: int) -> Emitted:
        """The event time of input ``source_id`` advanced to ``watermark`` (ms)."""
        ...

    def take_checkpoint(self, checkpoint_id: int) -> Emitted:
        """Offsets up to here are about to be committed; ids grow by one per commit."""
        ...

    def check_heartbeat(self) -> bool:
        """False means the instance is unhealthy and must be replaced."""
        ...

    def custom(self, payload: bytes) -> bytes:
        """The function's own request/response entry point (``fs-custom``)."""
        ...

    def close(self) -> None:
        """Call the function's close hook if it has one, then free the instance."""
        ...


class RecordProcessor(Processor, Protocol):
    """An engine that takes whole records (key, headers, timestamp, partition,
    offset; ``confluent_kafka.Message`` qualifies) rather than values alone.
    A partition worker uses ``process_records`` instead of ``process_batch``
    when its processor has it."""

    def process_records(self, source_id: int, records: Sequence[InputRecord]) -> Emitted:
        """Run records of one partition, in order; return what the whole batch emitted,
        each record as ``(target_id, data, key, headers)``. If record ``i`` fails,
        raise ``BatchFailed(index=i, done=[what records 0..i-1 emitted])``."""
        ...


def process_one_by_one(processor: Processor, source_id: int, records: list[bytes]) -> list[Emitted]:
    """``process_batch`` for engines that take one record per call."""
    done: list[Emitted] = []
    for i, data in enumerate(records):
        try:
            done.append(processor.process(source_id, data))
        except GuestError as exc:
            raise BatchFailed(str(exc), i, done) from exc
    return done
