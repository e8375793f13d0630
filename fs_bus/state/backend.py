"""The small interface a partition worker's state lives behind, and its local back ends.

One :class:`StateBackend` per partition worker holds every named store of one
function on one input partition. It knows nothing of the guest world (simple vs
complex keys, merge, iterators: that is :mod:`fs_bus.state.kv`): it is an ordered
map of bytes per store name, with range scans, range deletes and a checkpoint.
The durable, changelog-backed store of the scale-out work implements the same
protocol and slots in without touching the host bindings.

Keys are ordered bytewise (``memcmp``, a shorter key before its extensions), the
order of Python's ``bytes`` comparison and of SQLite's BLOB comparison.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Protocol

from sortedcontainers import SortedDict

from fs_bus.errors import FsBusError

# Rows per backend fetch in scan(). Large enough that a scan is a handful of
# queries, small enough that an iterator the guest abandons early costs little.
SCAN_PAGE = 256


class StateError(FsBusError):
    """The state back end failed (disk full, corrupt file, closed, ...)."""


class StateBackend(Protocol):
    """All the named stores of one function on one input partition."""

    def get(self, store: str, key: bytes) -> bytes | None:
        """The value of ``key``, or None if it is absent."""
        ...

    def put(self, store: str, key: bytes, value: bytes) -> None: ...

    def delete(self, store: str, key: bytes) -> None:
        """Remove ``key``; absent keys are not an error."""
        ...

    def delete_range(self, store: str, start: bytes, end: bytes | None) -> None:
        """Remove every key in ``[start, end)``; ``end=None`` means to the end."""
        ...

    def scan(self, store: str, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` for every key in ``[start, end)``, ordered bytewise.

        The scan reads in pages and holds no cursor between them, so the store
        may be written between two ``next()`` calls: entries are read as they
        are when their page is fetched.
        """
        ...

    def items(self) -> Iterator[tuple[str, bytes, bytes]]:
        """Every ``(store, key, value)`` of every store, by store then key (tools and tests)."""
        ...

    def checkpoint(self) -> None:
        """Make every change so far durable (called at each input offset commit)."""
        ...

    def close(self) -> None:
        """Release the back end. Changes since the last checkpoint are not kept."""
        ...


def key_successor(key: bytes) -> bytes:
    """The smallest key greater than ``key``: scans resume from here."""
    return key + b"\x00"


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix``, or None
    when there is none (``prefix`` empty or all ``0xff``): then the range runs
    to the end."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class MemoryBackend:
    """State in memory: one ``SortedDict`` per store. Nothing survives ``close()``.

    For tests, and for callers that want no disk. ``checkpoint()`` does nothing.
    ``fetches`` counts the pages ``scan()`` has read.
    """

    def __init__(self, *, page_size: int = SCAN_PAGE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.page_size = page_size
        self.fetches = 0
        self._stores: dict[str, SortedDict] = {}
        self._closed = False

    def _store(self, store: str) -> SortedDict:
        if self._closed:
            raise StateError("state back end is closed")
        data = self._stores.get(store)
        if data is None:
            data = self._stores[store] = SortedDict()
        return data

    def get(self, store: str, key: bytes) -> bytes | None:
        return self._store(store).get(key)

    def put(self, store: str, key: bytes, value: bytes) -> None:
        self._store(store)[bytes(key)] = bytes(value)

    def delete(self, store: str, key: bytes) -> None:
        self._store(store).pop(key, None)

    def delete_range(self, store: str, start: bytes, end: bytes | None) -> None:
        data = self._store(store)
        # irange walks only the keys in range (a bisection, then a slice).
        for key in list(data.irange(start, end, inclusive=(True, False))):
            del data[key]

    def scan(self, store: str, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        data = self._store(store)
        if end is not None and end <= start:
            return
        while True:
            # A page is copied out before it is yielded: SortedDict iterators
            # must not live across mutations, and the caller may mutate.
            page = [(k, data[k]) for k in islice(data.irange(start, end, inclusive=(True, False)), self.page_size)]
            self.fetches += 1
            yield from page
            if len(page) < self.page_size:
                return
            start = key_successor(page[-1][0])

    def items(self) -> Iterator[tuple[str, bytes, bytes]]:
        """Every ``(store, key, value)``, by store then key: the whole state, for tools and tests."""
        for name in sorted(self._stores):
            for key, value in self.scan(name, b"", None):
                yield name, key, value

    def checkpoint(self) -> None:
        if self._closed:
            raise StateError("state back end is closed")

    def close(self) -> None:
        self._closed = True
        self._stores.clear()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    store TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
) WITHOUT ROWID
"""


# Every statement that touches a range names both bounds of the primary key, so
# SQLite answers it with an index seek (tests check the query plans).
_GET = "SELECT value FROM kv WHERE store = ? AND key = ?"
_PUT = "INSERT OR REPLACE INTO kv (store, key, value) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM kv WHERE store = ? AND key = ?"
_DELETE_RANGE = "DELETE FROM kv WHERE store = ? AND key >= ? AND key < ?"
_DELETE_FROM = "DELETE FROM kv WHERE store = ? AND key >= ?"
_SCAN_RANGE = "SELECT key, value FROM kv WHERE store = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?"
_SCAN_FROM = "SELECT key, value FROM kv WHERE store = ? AND key >= ? ORDER BY key LIMIT ?"


class SqliteBackend:
    """State in one SQLite file per partition, durable exactly at checkpoints.

    Changes accumulate in one open transaction and ``checkpoint()`` commits it,
    so after a crash the file holds the state as of the last offset commit: state
    and committed offsets agree, and the records after them are processed again
    against the state they first saw. ``close()`` without a checkpoint rolls the
    open transaction back, exactly as a crash would.

    WAL mode with ``synchronous=NORMAL``: a commit survives the process dying;
    on power loss or an OS crash the last few commits may roll back (``FULL``
    would fsync at every commit). The changelog of the scale-out work is what
    makes state survive losing the machine.

    The table is a ``WITHOUT ROWID`` B-tree keyed by ``(store, key)``: gets,
    range scans and range deletes are index seeks (``key >= ? AND key < ?``),
    never full scans. ``fetches`` counts the pages ``scan()`` has read.
    """

    def __init__(self, path: str | Path, *, page_size: int = SCAN_PAGE) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.path = Path(path)
        self.page_size = page_size
        self.fetches = 0
        self._in_txn = False
        try:
            # isolation_level=None: we open and commit transactions ourselves
            # (the sqlite3 module's implicit ones would commit at odd moments).
            # check_same_thread=False: one worker owns it, but may hand it over
            # between threads (never used by two at once).
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as e:
            raise StateError(f"cannot open state file {self.path}: {e}") from e

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError(f"state file {self.path} is closed")
        return self._db

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        db = self._conn()
        try:
            if not self._in_txn:
                db.execute("BEGIN")
                self._in_txn = True
            db.execute(sql, args)
        except sqlite3.Error as e:
            raise StateError(f"state file {self.path}: {e}") from e

    def get(self, store: str, key: bytes) -> bytes | None:
        try:
            row = self._conn().execute(_GET, (store, key)).fetchone()
        except sqlite3.Error as e:
            raise StateError(f"state file {self.path}: {e}") from e
        return None if row is None else row[0]

    def put(self, store: str, key: bytes, value: bytes) -> None:
        self._write(_PUT, (store, bytes(key), bytes(value)))

    def delete(self, store: str, key: bytes) -> None:
        self._write(_DELETE, (store, key))

    def delete_range(self, store: str, start: bytes, end: bytes | None) -> None:
        if end is None:
            self._write(_DELETE_FROM, (store, start))
        else:
            self._write(_DELETE_RANGE, (store, start, end))

    def scan(self, store: str, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        if end is not None and end <= start:
            return
        sql, tail = (_SCAN_FROM, ()) if end is None else (_SCAN_RANGE, (end,))
        while True:
            # fetchall: no cursor stays open across the yields, so writes
            # between them are safe; the next page starts after the last key.
            try:
                rows = self._conn().execute(sql, (store, start, *tail, self.page_size)).fetchall()
            except sqlite3.Error as e:
                raise StateError(f"state file {self.path}: {e}") from e
            self.fetches += 1
            yield from rows
            if len(rows) < self.page_size:
                return
            start = key_successor(rows[-1][0])

    def items(self) -> Iterator[tuple[str, bytes, bytes]]:
        """Every ``(store, key, value)``, by store then key, the open transaction's writes
        included: the whole state, for tools and tests."""
        try:
            stores = [row[0] for row in self._conn().execute("SELECT DISTINCT store FROM kv ORDER BY store")]
        except sqlite3.Error as e:
            raise StateError(f"state file {self.path}: {e}") from e
        for name in stores:
            for key, value in self.scan(name, b"", None):
                yield name, key, value

    def checkpoint(self) -> None:
        db = self._conn()
        if not self._in_txn:
            return
        try:
            db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StateError(f"cannot commit state file {self.path}: {e}") from e
        self._in_txn = False

    def close(self) -> None:
        """Close the file, discarding changes since the last checkpoint."""
        db, self._db = self._db, None
        if db is None:
            return
        try:
            if self._in_txn:
                db.execute("ROLLBACK")
        finally:
            self._in_txn = False
            db.close()
