"""Durable state: every partition's stores backed by a compacted changelog partition.

Local state (the SQLite file of :mod:`fs_bus.state.backend`) is a cache of the
changelog. Each input partition ``p`` of a function has changelog partition ``p``
of one compacted topic per input topic; a record's key names the store and the
key, its value is the new value, and a tombstone a delete. Whoever processes the
partition next (this node after a restart, another after a failover) rebuilds the
same state by reading that partition.

A checkpoint happens in two steps so that local state is never ahead of what the
changelog (and, under exactly-once, the committed transaction) holds:

1. :meth:`ChangelogBackend.checkpoint` *seals* the changes since the last one
   (the latest value per key: the changelog is compacted anyway) and commits
   nothing locally;
2. the partition worker writes :meth:`sealed` to the changelog, and once the
   broker acknowledged them (or their transaction committed) calls
   :meth:`confirm` with (a lower bound of) the changelog offset after the last
   one: only then is the local file committed, together with that offset. A
   lower bound is enough: replaying a change the copy already holds is harmless
   (every record sets a key's value), skipping one is not.

A crash in between leaves the local file at the previous checkpoint, *behind*
the changelog; the next open reads the changelog from the recorded offset and
catches up. A local file that cannot be a prefix of the changelog (its offset
beyond the partition's end, or before its start: the topic was recreated) or
that is older than the changelog keeps tombstones is discarded and rebuilt.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from fs_bus.errors import DecodeError
from fs_bus.state.backend import StateBackend

# fs-bus's own bookkeeping store (also in fs_bus.node.worker); the position key is
# local-only: it says how much of the changelog this file holds.
INTERNAL_STORE = "__fs_bus__"
POSITION_KEY = b"changelog-next-offset"
STAMP_KEY = b"changelog-confirmed-at"
# Tombstones stay in a compacted changelog this long (the topic's delete.retention.ms);
# a local copy older than that may have missed deletes and is rebuilt from scratch.
DELETE_RETENTION_MS = 7 * 24 * 3600 * 1000
TOPIC_NAME_MAX = 249

_U16 = struct.Struct(">H")
_POSITION = struct.Struct(">QQ")  # next offset, confirmed-at (ms)


@dataclass(frozen=True, slots=True)
class Change:
    """One key's new value in one store; ``value`` None is a delete."""

    store: str
    key: bytes
    value: bytes | None


def changelog_topic(namespace: str, function: str, generation: int, input_topic: str) -> str:
    """The changelog of ``function``'s state for the partitions of ``input_topic``.

    The state generation is in the name: resetting a function's state (reprocessing)
    moves it to new, empty changelogs instead of racing to empty the old ones.
    """
    name = f"{namespace}.changelog.{function}.g{generation}.{input_topic}"
    if len(name) <= TOPIC_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[:TOPIC_NAME_MAX - 17]}.{digest}"


def encode_key(store: str, key: bytes) -> bytes:
    raw = store.encode()
    return _U16.pack(len(raw)) + raw + key


def decode_key(data: bytes) -> tuple[str, bytes]:
    if len(data) < 2:
        raise DecodeError(f"changelog key of {len(data)} bytes is shorter than its 2-byte store length")
    (n,) = _U16.unpack_from(data)
    if len(data) < 2 + n:
        raise DecodeError(f"changelog key announces a {n}-byte store name but has {len(data) - 2} bytes")
    try:
        store = data[2:2 + n].decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"changelog key's store name is not UTF-8: {exc.reason}") from None
    return store, bytes(data[2 + n:])


def read_position(local: StateBackend) -> tuple[int, int] | None:
    """``(next changelog offset, confirmed-at ms)`` recorded in ``local``, or None if never."""
    raw = local.get(INTERNAL_STORE, POSITION_KEY)
    if raw is None or len(raw) != _POSITION.size:
        return None
    next_offset, stamp = _POSITION.unpack(raw)
    return next_offset, stamp


def usable(position: tuple[int, int] | None, low: int, high: int, now_ms: int) -> bool:
    """Whether a local copy at ``position`` can catch up by reading ``[position, high)``.

    ``low``/``high`` are the changelog partition's first and next offsets. Pure.
    """
    if position is None:
        return False
    next_offset, stamp = position
    return low <= next_offset <= high and now_ms - stamp < DELETE_RETENTION_MS


class ChangelogBackend:
    """A :class:`StateBackend` recording every write for the changelog (see the module doc)."""

    def __init__(self, local: StateBackend) -> None:
        self.local = local
        self._pending: dict[tuple[str, bytes], bytes | None] = {}
        self._sealed: dict[tuple[str, bytes], bytes | None] = {}

    # --- reads go to the local copy ---

    def get(self, store: str, key: bytes) -> bytes | None:
        return self.local.get(store, key)

    def scan(self, store: str, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        return self.local.scan(store, start, end)

    def items(self) -> Iterator[tuple[str, bytes, bytes]]:
        return self.local.items()

    # --- writes go to the local copy and are remembered ---

    def put(self, store: str, key: bytes, value: bytes) -> None:
        key, value = bytes(key), bytes(value)
        self.local.put(store, key, value)
        self._pending[(store, key)] = value

    def delete(self, store: str, key: bytes) -> None:
        key = bytes(key)
        self.local.delete(store, key)
        self._pending[(store, key)] = None

    def delete_range(self, store: str, start: bytes, end: bytes | None) -> None:
        # A compacted topic knows keys, not ranges: one tombstone per key present.
        for key, _ in list(self.local.scan(store, start, end)):
            self._pending[(store, key)] = None
        self.local.delete_range(store, start, end)

    # --- the two-step checkpoint ---

    def checkpoint(self) -> None:
        """Seal the changes so far for the changelog; the local file is not committed yet."""
        self._sealed.update(self._pending)
        self._pending.clear()

    def sealed(self) -> list[Change]:
        return [Change(store, key, value) for (store, key), value in self._sealed.items()]

    def confirm(self, next_offset: int, now_ms: int) -> None:
        """The sealed changes are in the changelog, and none of them at or after ``next_offset``
        is missing from this copy: commit the local copy with that position."""
        self.local.put(INTERNAL_STORE, POSITION_KEY, _POSITION.pack(next_offset, now_ms))
        self.local.checkpoint()
        self._sealed.clear()

    # --- restore ---

    def apply(self, change: Change) -> None:
        """Replay one changelog record into the local copy (not recorded again)."""
        if change.value is None:
            self.local.delete(change.store, change.key)
        else:
            self.local.put(change.store, change.key, change.value)

    def position(self) -> tuple[int, int] | None:
        return read_position(self.local)

    def close(self) -> None:
        """Close the local copy; what was not confirmed is rolled back with it."""
        self._pending.clear()
        self._sealed.clear()
        self.local.close()
