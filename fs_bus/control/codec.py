"""Avro single-object encoding of every record fs-bus writes to Kafka.

A value is ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint
(little-endian) + the Avro binary body. A reader therefore knows which schema
wrote a record without any registry, and can refuse what it does not know
instead of misreading it. Pure: no I/O beyond loading the schemas once.
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
def _by_fingerprint() -> dict[bytes, Schema]:
    return {s.fingerprint: s for s in schemas().values()}


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
    schema = _by_fingerprint().get(bytes(data[2:HEADER_LEN]))
    if schema is None:
        raise DecodeError(
            f"written with an unknown schema (fingerprint {bytes(data[2:HEADER_LEN]).hex()}); "
            "a newer fs-bus may have written it"
        )
    buf = io.BytesIO(data[HEADER_LEN:])
    try:
        datum = fastavro.schemaless_reader(buf, schema.parsed, None)
    except Exception as exc:  # fastavro raises many types on truncated or garbled input
        raise DecodeError(f"body does not match schema {schema.short_name}: {type(exc).__name__}: {exc}") from None
    if buf.tell() != len(data) - HEADER_LEN:
        raise DecodeError(
            f"{len(data) - HEADER_LEN - buf.tell()} trailing bytes after a {schema.short_name} record"
        )
    return schema.short_name, datum
