"""fs-bus records as readable JSON: what ``fs-bus decode`` prints for each record kcat read.

Pure: a ``KcatRecord`` in, a JSON-ready dict (or a ``BadRecord`` naming where the
record was and why it could not be read) out. Values are decoded by the same
codec the nodes use, so what decodes here is what a node would read, and what a
node would skip is reported here with the same coordinates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fs_bus.control import avro_json, codec
from fs_bus.errors import DecodeError
from fs_bus.inspect.kcat import KcatRecord, split

# A JSON value on the control topic is a FunctionRecord in Avro's JSON encoding:
# JSON carries no fingerprint, so the topic's one schema is assumed.
JSON_SCHEMA = "FunctionRecord"


@dataclass(frozen=True, slots=True)
class BadRecord:
    where: str  # topic[partition]@offset, or the record's place in the input
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where} key={self.key!r}: {self.reason}"


def accepts(value: bytes) -> bool:
    """Whether ``value`` is one whole record (binary or JSON): how the splitter finds a value's end."""
    try:
        decode_value(value)
    except DecodeError:
        return False
    return True


def decode_value(value: bytes) -> tuple[str, str, dict[str, Any]]:
    """``(schema short name, encoding, datum)`` of one record value; ``DecodeError`` otherwise."""
    if avro_json.is_json(value):
        return JSON_SCHEMA, "json", avro_json.from_json(value, JSON_SCHEMA)
    name, datum = codec.decode(value)
    return name, "avro", datum


def to_document(rec: KcatRecord) -> dict[str, Any]:
    """The record as a JSON-ready dict; raises ``DecodeError`` for a value fs-bus cannot read."""
    doc: dict[str, Any] = {}
    for field in ("topic", "partition", "offset", "timestamp"):
        if getattr(rec, field) is not None:
            doc[field] = getattr(rec, field)
    doc["key"] = None if rec.key is None else rec.key.decode("utf-8", "replace")
    if rec.value is None:
        doc.update(schema=None, value=None)  # a tombstone: DROP on the control topic
        return doc
    name, encoding, datum = decode_value(rec.value)
    doc.update(schema=name, encoding=encoding, value=json.loads(avro_json.to_json(name, datum)))
    return doc


def decode_stream(data: bytes, fmt: str) -> Iterator[dict[str, Any] | BadRecord]:
    """Every record kcat printed with format ``fmt``, decoded or reported."""
    for rec in split(data, fmt, accepts):
        try:
            yield to_document(rec)
        except DecodeError as exc:
            key = "" if rec.key is None else rec.key.decode("utf-8", "replace")
            yield BadRecord(rec.where(), key, str(exc))
