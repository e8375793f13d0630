"""Bring a partition's local state up to date with its changelog before its first record.

The I/O half of :mod:`fs_bus.state.changelog`: open the local SQLite copy, decide
whether it can catch up (else discard it), and replay the changelog partition
from the copy's recorded offset to the partition's end. The replay reads
committed records only, so the changes of an aborted (exactly-once) transaction
never reach state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path


from fs_bus.clock import now_ms
from fs_bus.errors import DecodeError
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.types import KafkaError, TopicPartition
from fs_bus.state.backend import SqliteBackend, StateError
from fs_bus.state.changelog import Change, ChangelogBackend, decode_key, usable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Restored:
    records: int  # changelog records replayed
    discarded: bool  # the local copy could not catch up and was rebuilt
    seconds: float


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def open_durable(path: Path, settings: KafkaSettings, topic: str, partition: int, *,
                 timeout_s: float = 120.0) -> tuple[ChangelogBackend, Restored]:
    """The partition's state at ``path``, caught up with changelog ``topic``[``partition``]."""
    started = time.monotonic()
    consumer = clients.changelog_reader(settings)
    try:
        tp = TopicPartition(topic, partition)
        low, high = clients.watermarks(consumer, tp, timeout=30)
        state = ChangelogBackend(SqliteBackend(path))
        position = state.position()
        discarded = False
        if position is not None and not usable(position, low, high, now_ms()):
            log.warning("state %s holds changelog %s[%d] up to %d, which is not within [%d, %d] (or too old): "
                        "rebuilding it from the changelog", path, topic, partition, position[0], low, high)
            state.close()
            _remove(path)
            state = ChangelogBackend(SqliteBackend(path))
            position, discarded = None, True
        start = position[0] if position is not None else low
        replayed = 0
        try:
            if start < high:
                replayed = _replay(consumer, state, TopicPartition(topic, partition, start), high, timeout_s)
            state.confirm(max(start, high), now_ms())
        except BaseException:
            state.close()
            raise
        return state, Restored(replayed, discarded, time.monotonic() - started)
    finally:
        consumer.close()


def _replay(consumer, state: ChangelogBackend, start: TopicPartition, high: int, timeout_s: float) -> int:
    consumer.assign([start])
    deadline = time.monotonic() + timeout_s
    replayed = 0
    where = f"changelog {start.topic}[{start.partition}]"
    while True:
        for msg in consumer.consume(1000, 0.05):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise StateError(f"reading {where}: {err.str()}")
            try:
                store, key = decode_key(msg.key() or b"")
            except DecodeError as exc:
                # Only fs-bus writes here; a bad key is reported and skipped, never fatal.
                log.warning("skipped %s@%d: %s", where, msg.offset(), exc)
                continue
            state.apply(Change(store, key, msg.value()))
            replayed += 1
        # The position, not the last record: transaction markers take offsets too.
        position = consumer.position([TopicPartition(start.topic, start.partition)])[0].offset
        if position >= high:
            return replayed
        if time.monotonic() > deadline:
            raise StateError(f"restoring {where} timed out at offset {position} of {high} "
                             "(an open transaction of a lost node blocks it until it times out)")
