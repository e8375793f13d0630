"""The binary framing of the fast path (``wit/fs-bus/batch.wit``): pure, no I/O.

A batch of input records goes to the guest as one *input batch*; what the guest
emitted comes back as one *output batch*. Both are little-endian:

Input batch (host -> guest)::

    magic     4 bytes  b"FSBI"
    count     u32      number of records
    count times:
      timestamp i64    ms since the epoch; -1 when the record has none
      offset    i64    the record's offset in its partition
      partition i32    the record's input partition
      key_len   i32    -1: no key
      value_len i32    -1: no value (a tombstone)
      headers   u32    number of headers
      key bytes, value bytes, then each header (see below)

Output batch (guest -> host)::

    magic     4 bytes  b"FSBO"
    count     u32      number of emitted records
    count times:
      target    u32    index into the function's ``outputs``
      key_len   i32    -1: no key
      value_len i32    -1: no value
      headers   u32    number of headers
      key bytes, value bytes, then each header
    failed    i32      -1: every input record ran; else the index of the input
                       record that failed (the records before it emitted the
                       records above; it and the records after it did not run)
    error_len u32, error bytes (UTF-8): why it failed (empty when failed = -1)

A header: ``name_len u32, value_len i32 (-1: no value), name (UTF-8), value``.

The SDKs (``sdk/python/fs_bus_guest.py``, ``sdk/go/fsbus``) implement the guest's
side; a function written with them is just ``process(record) -> records``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Protocol

INPUT_MAGIC = b"FSBI"
OUTPUT_MAGIC = b"FSBO"

Headers = list[tuple[str, bytes | None]]
# An emitted record as the node produces it: (target, value, key, headers).
Output = tuple[int, bytes | None, bytes | None, Headers | None]

_COUNT = struct.Struct("<4sI")
_IN = struct.Struct("<qqiiiI")  # timestamp, offset, partition, key_len, value_len, headers
_OUT = struct.Struct("<IiiI")  # target, key_len, value_len, headers
_HEADER = struct.Struct("<Ii")  # name_len, value_len
_TRAILER = struct.Struct("<iI")  # failed, error_len
_pack_in = _IN.pack
_pack_out = _OUT.pack
_unpack_out = _OUT.unpack_from


class FramingError(ValueError):
    """A batch that does not follow the framing (names what is wrong and where)."""


class InputRecord(Protocol):
    """What a record offers the framing: confluent_kafka.Message has exactly these."""

    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...


class Record:
    """An input record outside Kafka (tests, tools), with Message's accessors."""

    __slots__ = ("_key", "_value", "_headers", "_timestamp", "_partition", "_offset")

    def __init__(self, value: bytes | None, key: bytes | None = None, headers: Headers | None = None,
                 timestamp: int = -1, partition: int = 0, offset: int = 0) -> None:
        self._value, self._key, self._headers = value, key, headers
        self._timestamp, self._partition, self._offset = timestamp, partition, offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Headers | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        # (type, ms) as Message gives it; type 0 means "no timestamp".
        return (0, -1) if self._timestamp < 0 else (1, self._timestamp)

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        return (f"Record(value={self._value!r}, key={self._key!r}, headers={self._headers!r}, "
                f"timestamp={self._timestamp}, partition={self._partition}, offset={self._offset})")


def _headers_bytes(headers: Sequence[tuple[str, bytes | None]]) -> bytes:
    parts = []
    for name, value in headers:
        raw = name.encode()
        if value is None:
            parts += (_HEADER.pack(len(raw), -1), raw)
        else:
            if isinstance(value, str):  # Kafka clients accept str header values; they travel as UTF-8
                value = value.encode()
            parts += (_HEADER.pack(len(raw), len(value)), raw, value)
    return b"".join(parts)


def encode_input(records: Sequence[InputRecord]) -> bytes:
    """An input batch of ``records``. This runs once per record on the node's hot path:
    a handful of C calls per record, one join at the end."""
    parts = [_COUNT.pack(INPUT_MAGIC, len(records))]
    append = parts.append
    for r in records:
        key, value, headers = r.key(), r.value(), r.headers()
        kind, ts = r.timestamp()
        append(_pack_in(ts if kind else -1, r.offset(), r.partition(),
                        -1 if key is None else len(key), -1 if value is None else len(value),
                        len(headers) if headers else 0))
        if key:
            append(key)
        if value:
            append(value)
        if headers:
            append(_headers_bytes(headers))
    return b"".join(parts)


def _read_headers(buf: memoryview, pos: int, n: int, where: str) -> tuple[Headers, int]:
    headers: Headers = []
    for _ in range(n):
        if pos + _HEADER.size > len(buf):
            raise FramingError(f"{where}: header cut short at byte {pos}")
        name_len, value_len = _HEADER.unpack_from(buf, pos)
        pos += _HEADER.size
        end = pos + name_len + max(value_len, 0)
        if end > len(buf):
            raise FramingError(f"{where}: header runs past the end of the batch (byte {pos})")
        name = bytes(buf[pos:pos + name_len]).decode("utf-8", "replace")
        pos += name_len
        value = None if value_len < 0 else bytes(buf[pos:pos + value_len])
        pos += max(value_len, 0)
        headers.append((name, value))
    return headers, pos


def _check_magic(buf: memoryview, magic: bytes, what: str) -> int:
    if len(buf) < _COUNT.size:
        raise FramingError(f"{what} of {len(buf)} bytes is too short for its header")
    got, count = _COUNT.unpack_from(buf, 0)
    if got != magic:
        raise FramingError(f"{what} starts with {bytes(got)!r}, expected {magic!r}")
    return count


def decode_input(data: bytes) -> list[Record]:
    """The records of an input batch (the guest's side; tests)."""
    buf = memoryview(data)
    count = _check_magic(buf, INPUT_MAGIC, "input batch")
    pos, out = _COUNT.size, []
    for i in range(count):
        if pos + _IN.size > len(buf):
            raise FramingError(f"input batch: record {i} cut short at byte {pos}")
        ts, offset, partition, key_len, value_len, n_headers = _IN.unpack_from(buf, pos)
        pos += _IN.size
        end = pos + max(key_len, 0) + max(value_len, 0)
        if end > len(buf):
            raise FramingError(f"input batch: record {i} runs past the end of the batch")
        key = None if key_len < 0 else bytes(buf[pos:pos + key_len])
        pos += max(key_len, 0)
        value = None if value_len < 0 else bytes(buf[pos:pos + value_len])
        pos += max(value_len, 0)
        headers, pos = _read_headers(buf, pos, n_headers, f"input batch: record {i}")
        out.append(Record(value, key, headers or None, ts, partition, offset))
    if pos != len(buf):
        raise FramingError(f"input batch: {len(buf) - pos} bytes after its {count} records")
    return out


def encode_output(records: Iterable[Output], failed: int = -1, error: str = "") -> bytes:
    """An output batch (the guest's side; tests)."""
    parts: list[bytes] = []
    n = 0
    for target, value, key, headers in records:
        parts.append(_pack_out(target, -1 if key is None else len(key), -1 if value is None else len(value),
                               len(headers) if headers else 0))
        parts += (key or b"", value or b"", _headers_bytes(headers) if headers else b"")
        n += 1
    raw_error = error.encode()
    return b"".join([_COUNT.pack(OUTPUT_MAGIC, n), *parts, _TRAILER.pack(failed, len(raw_error)), raw_error])


def decode_output(data: bytes) -> tuple[list[Output], int, str]:
    """``(records, failed, error)`` of an output batch: the node's hot path.

    ``failed`` is -1 when every input record ran, else the index of the input
    record that failed, ``error`` saying why.
    """
    buf = data if isinstance(data, bytes) else bytes(data)
    count = _check_magic(memoryview(buf), OUTPUT_MAGIC, "output batch")
    pos, size, out = _COUNT.size, len(buf), []
    append_out = out.append
    for i in range(count):
        if pos + 16 > size:
            raise FramingError(f"output batch: record {i} cut short at byte {pos}")
        target, key_len, value_len, n_headers = _unpack_out(buf, pos)
        pos += 16
        if key_len < 0:
            key = None
        else:
            key = buf[pos:pos + key_len]
            pos += key_len
        if value_len < 0:
            value = None
        else:
            value = buf[pos:pos + value_len]
            pos += value_len
        if pos > size:
            raise FramingError(f"output batch: record {i} runs past the end of the batch")
        headers = None
        if n_headers:
            headers, pos = _read_headers(memoryview(buf), pos, n_headers, f"output batch: record {i}")
        append_out((target, value, key, headers))
    if pos + _TRAILER.size > size:
        raise FramingError(f"output batch: trailer missing after {count} records (byte {pos})")
    failed, error_len = _TRAILER.unpack_from(buf, pos)
    pos += _TRAILER.size
    if pos + error_len != size:
        raise FramingError(f"output batch: {size - pos} bytes after the trailer, its error says {error_len}")
    return out, failed, buf[pos:].decode("utf-8", "replace")
