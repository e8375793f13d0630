"""Avro single-object encoding of every record fs-bus writes to Kafka.

A value is ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint
(little-endian) + the Avro binary body. A reader therefore knows which schema
wrote a record without any registry, and can refuse what it does not know
instead of misreading it. Pure: no I/O beyond loading the schemas once.

Schemas evolve the Avro way: a new version only adds fields with defaults (or
removes fields that had one), and the version it replaces is kept, byte for
byte, in ``schemas/history/<name>.v<N>.avsc``. A record written with an older
schema is read with its own schema as the writer's and the current one as the
reader's, so compacted control topics written by older nodes stay readable.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from fs_bus.errors import DecodeError

MAGIC = b"\xc3\x01"
HEADER_LEN = 10
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
HISTORY_DIR = SCHEMA_DIR / "history"


@dataclass(frozen=True, slots=True)
class Schema:
    name: str  # full name, e.g. io.fsbus.control.v1.FunctionRecord
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO of the canonical form

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def _load(path: Path) -> Schema:
    raw = json.loads(path.read_text())
    parsed = parse_schema(raw)
    canonical = to_parsing_canonical_form(parsed)
    fp = int(fingerprint(canonical, "CRC-64-AVRO"), 16)
    return Schema(name=parsed["name"], parsed=parsed, fingerprint=struct.pack("<Q", fp))


@cache
def schemas() -> dict[str, Schema]:
    """All schemas in ``schemas/``, by short name (``FunctionRecord``, ...)."""
    loaded = (_load(p) for p in sorted(SCHEMA_DIR.glob("*.avsc")))
    return {s.short_name: s for s in loaded}


@cache
def _by_fingerprint() -> dict[bytes, tuple[Schema, Schema]]:
    """Every schema a record may have been written with -> (writer, current reader)."""
    current = schemas()
    readers = {s.fingerprint: (s, s) for s in current.values()}
    for path in sorted(HISTORY_DIR.glob("*.avsc")):
        old = _load(path)
        if old.short_name not in current:
            raise RuntimeError(f"{path}: no current schema named {old.short_name}")
        readers.setdefault(old.fingerprint, (old, current[old.short_name]))
    return readers


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def millis(value: Any) -> int:
    """Epoch milliseconds from what fastavro returns for timestamp-millis (an aware datetime).

    Integer arithmetic: ``datetime.timestamp() * 1000`` loses a millisecond to float rounding.
    """
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return int(value)


def encode(schema_name: str, datum: dict[str, Any]) -> bytes:
    schema = schemas()[schema_name]
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(schema.fingerprint)
    fastavro.schemaless_writer(buf, schema.parsed, datum)
    return buf.getvalue()


def decode(data: bytes | None) -> tuple[str, dict[str, Any]]:
    """Return ``(schema short name, datum)``; raise ``DecodeError`` on anything else.

    Every failure is a ``DecodeError`` (never a fastavro or struct exception), so
    a caller reading a topic can report and skip one bad record and go on.
    """
    if data is None:
        raise DecodeError("record has no value (a tombstone is not a record)")
    if len(data) < HEADER_LEN or data[:2] != MAGIC:
        raise DecodeError(
            f"not Avro single-object encoding: starts with {bytes(data[:4]).hex() or 'nothing'}, expected c301"
        )
    known = _by_fingerprint().get(bytes(data[2:HEADER_LEN]))
    if known is None:
        raise DecodeError(
            f"written with an unknown schema (fingerprint {bytes(data[2:HEADER_LEN]).hex()}); "
            "a newer fs-bus may have written it"
        )
    writer, schema = known
    buf = io.BytesIO(data[HEADER_LEN:])
    try:
        datum = fastavro.schemaless_reader(buf, writer.parsed, None if writer is schema else schema.parsed)
    except Exception as exc:  # fastavro raises many types on truncated or garbled input
        raise DecodeError(f"body does not match schema {schema.short_name}: {type(exc).__name__}: {exc}") from None
    if buf.tell() != len(data) - HEADER_LEN:
        raise DecodeError(
            f"{len(data) - HEADER_LEN - buf.tell()} trailing bytes after a {schema.short_name} record"
        )
    return schema.short_name, datum
