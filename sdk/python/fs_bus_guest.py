"""fs-bus's fast path for Python guests (componentize-py): write ``process(record)``,
never the framing.

A function's ``app.py``::

    from fs_bus_guest import Batch, Output, WitWorld, function   # Batch and WitWorld: the exports

    @function
    def process(record):
        return Output(record.value.upper())      # or bytes, or a list of them, or None

and ``componentize-py -d <fs-bus>/wit/fs-bus -w fast-processor componentize app -p .
-p <fs-bus>/sdk/python -o processor.wasm`` (see examples/python-fast). The component
exports fs-bus's ``fs-bus:batch/batch@0.1.0`` interface: the node hands it a
thousand records per call as bytes, through files (wit/fs-bus/batch.wit), instead
of one ``list<u8>`` call per record.

``process(record)`` gets a :class:`Record` (``value``, ``key``, ``headers``,
``timestamp``, ``partition``, ``offset``, ``source_id``) and returns what to emit:
``None``, ``bytes`` (to output 0, with the input record's key), an :class:`Output`
(choose ``target``, ``key``, ``headers``), or a list of these. An exception fails
the record: the node reports it with the record's topic, partition and offset and
retries from the last commit. ``@init`` marks an optional ``init(config: dict)``
that receives the function's ``init_config``.

The framing (fs_bus/runtime/framing.py has the specification) is implemented here
again with the standard library only, so a guest needs nothing of fs-bus but this file.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterable

__all__ = ["Batch", "WitWorld", "Record", "Output", "INPUT_KEY", "function", "init"]

BATCH_DIR = "/fs-bus"
_COUNT = struct.Struct("<4sI")
_IN = struct.Struct("<qqiiiI")
_OUT = struct.Struct("<IiiI")
_HEADER = struct.Struct("<Ii")
_TRAILER = struct.Struct("<iI")


class _InputKey:
    def __repr__(self) -> str:
        return "INPUT_KEY"


INPUT_KEY: Any = _InputKey()  # Output's default key: the key of the record being processed


class Record:
    """An input record. ``timestamp`` is ms since the epoch, -1 if it has none;
    ``headers`` a list of ``(name, value)``; ``source_id`` the input's index in the config."""

    __slots__ = ("value", "key", "headers", "timestamp", "partition", "offset", "source_id")

    def __init__(self, value: bytes | None, key: bytes | None = None, headers: list | None = None,
                 timestamp: int = -1, partition: int = 0, offset: int = 0, source_id: int = 0) -> None:
        self.value, self.key, self.headers = value, key, headers or []
        self.timestamp, self.partition, self.offset, self.source_id = timestamp, partition, offset, source_id

    def __repr__(self) -> str:
        return (f"Record(value={self.value!r}, key={self.key!r}, headers={self.headers!r}, "
                f"timestamp={self.timestamp}, partition={self.partition}, offset={self.offset})")


class Output:
    """A record to emit: ``value`` to ``outputs[target]``, with ``key`` (default: the
    input record's; None: no key) and ``headers`` (a list of ``(name, bytes)``)."""

    __slots__ = ("value", "target", "key", "headers")

    def __init__(self, value: bytes | None, target: int = 0, key: Any = INPUT_KEY, headers: list | None = None) -> None:
        self.value, self.target, self.key, self.headers = value, target, key, headers


_process: Callable[[Record], Any] | None = None
_init: Callable[[dict], None] | None = None


def function(fn: Callable[[Record], Any]) -> Callable[[Record], Any]:
    """Mark ``fn(record)`` as the function's ``process``."""
    global _process
    _process = fn
    return fn


def init(fn: Callable[[dict], None]) -> Callable[[dict], None]:
    """Mark ``fn(config)`` to receive ``init_config`` once, before any record."""
    global _init
    _init = fn
    return fn


# --- the framing ------------------------------------------------------------------------


def decode_input(data: bytes, source_id: int = 0) -> list[Record]:
    magic, count = _COUNT.unpack_from(data, 0)
    if magic != b"FSBI":
        raise ValueError(f"input batch starts with {magic!r}, expected b'FSBI'")
    pos, out, unpack = _COUNT.size, [], _IN.unpack_from
    for _ in range(count):
        ts, offset, partition, key_len, value_len, n_headers = unpack(data, pos)
        pos += 32
        key = None
        if key_len >= 0:
            key = data[pos:pos + key_len]
            pos += key_len
        value = None
        if value_len >= 0:
            value = data[pos:pos + value_len]
            pos += value_len
        headers = []
        for _h in range(n_headers):
            name_len, hv_len = _HEADER.unpack_from(data, pos)
            pos += 8
            name = data[pos:pos + name_len].decode("utf-8", "replace")
            pos += name_len
            hv = None
            if hv_len >= 0:
                hv = data[pos:pos + hv_len]
                pos += hv_len
            headers.append((name, hv))
        out.append(Record(value, key, headers, ts, partition, offset, source_id))
    return out


def _headers_bytes(headers: Iterable) -> bytes:
    parts = []
    for name, value in headers:
        raw = name.encode()
        if value is None:
            parts += (_HEADER.pack(len(raw), -1), raw)
        else:
            if isinstance(value, str):
                value = value.encode()
            parts += (_HEADER.pack(len(raw), len(value)), raw, value)
    return b"".join(parts)


def _append(parts: list, value: bytes | None, target: int, key: bytes | None, headers: list | None) -> None:
    parts.append(_OUT.pack(target, -1 if key is None else len(key), -1 if value is None else len(value),
                           len(headers) if headers else 0))
    if key:
        parts.append(key)
    if value:
        parts.append(value)
    if headers:
        parts.append(_headers_bytes(headers))


def run_batch(records: list[Record], process: Callable[[Record], Any]) -> bytes:
    """Run ``process`` on each record; the output batch (what they emitted, then the trailer)."""
    parts: list = [b""]
    n = 0
    failed, error = -1, b""
    for i, record in enumerate(records):
        try:
            result = process(record)
            if result is None:
                continue
            if isinstance(result, (bytes, bytearray, Output)):
                result = (result,)
            for out in result:
                if isinstance(out, Output):
                    key = record.key if out.key is INPUT_KEY else out.key
                    _append(parts, out.value, out.target, key, out.headers)
                else:
                    _append(parts, bytes(out), 0, record.key, None)
                n += 1
        except Exception as e:  # noqa: BLE001 - the node reports it, naming the record
            failed, error = i, f"{type(e).__name__}: {e}".encode()
            break
    parts[0] = _COUNT.pack(b"FSBO", n)
    parts += (_TRAILER.pack(failed, len(error)), error)
    return b"".join(parts)


# --- the exports (componentize-py finds them in the app module, which imports them) ----


class WitWorld:
    def fs_init(self, config: list[tuple[str, str]]) -> None:
        if _init is not None:
            _init(dict(config))


class Batch:
    def process_batch(self, source_id: int, input_size: int) -> int:
        if _process is None:
            raise RuntimeError("no function: decorate `def process(record)` with @fs_bus_guest.function")
        with open(f"{BATCH_DIR}/in", "rb") as f:
            data = f.read(input_size)
        out = run_batch(decode_input(data, source_id), _process)
        with open(f"{BATCH_DIR}/out", "r+b") as f:
            f.write(out)
        return len(out)
