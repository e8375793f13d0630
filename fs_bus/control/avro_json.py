"""Avro's JSON encoding of fs-bus records, for people and standard tools.

The wire format is Avro single-object binary (``codec``). This module is the other
encoding the Avro specification defines, so that a record can be read and written
with kcat and a text editor:

- ``to_json`` renders a decoded datum as one line of Avro JSON (what ``fs-bus
  decode`` prints);
- ``to_single_object`` turns a JSON record back into the binary encoding, which is
  how the control topic accepts a record produced by hand (``kcat -P``): the JSON
  is checked against the reader's schema, fields with a default may be left out,
  and what comes out is decoded by exactly the path a binary record takes.

JSON carries no schema fingerprint, so a JSON record is read with the schema the
topic expects (``FunctionRecord`` on the control topic). Pure: no I/O.
"""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from fs_bus.control import codec
from fs_bus.errors import DecodeError


def is_json(value: bytes | None) -> bool:
    """Whether a record value is JSON text rather than Avro binary (which starts with ``C3 01``)."""
    return value is not None and value.lstrip(b" \t\r\n")[:1] == b"{"


def to_json(schema_name: str, datum: dict[str, Any]) -> str:
    """One line of Avro JSON encoding (unions as ``{"type": value}``, timestamps as epoch ms)."""
    buf = io.StringIO()
    fastavro.json_writer(buf, codec.schemas()[schema_name].parsed, [datum])
    return buf.getvalue().strip()


def from_json(value: bytes | str, schema_name: str) -> dict[str, Any]:
    """Read one Avro-JSON record of ``schema_name``; raise ``DecodeError`` on anything else.

    Unknown field names are refused (a misspelt field would otherwise be dropped
    silently and its default used); missing fields take their schema default.
    """
    schema = codec.schemas()[schema_name].parsed
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        raw = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DecodeError(f"a {schema_name} in JSON must be an object, not {type(raw).__name__}")
    _check_shape(raw, schema, schema_name)
    try:
        (datum,) = fastavro.json_reader(io.StringIO(json.dumps(raw)), schema)
    except Exception as exc:  # fastavro raises many types for a missing field or a wrong enum symbol
        raise DecodeError(f"JSON does not match schema {schema_name}: {_reason(exc)}") from None
    try:
        validate(datum, schema, raise_errors=True)
    except ValidationError as exc:
        raise DecodeError(f"JSON does not match schema {schema_name}: {_reason(exc)}") from None
    return datum


def to_single_object(value: bytes | str, schema_name: str) -> bytes:
    """A JSON record as the Avro single-object binary encoding ``codec.decode`` reads."""
    return codec.encode(schema_name, from_json(value, schema_name))


def _check_shape(raw: Any, schema: Any, where: str) -> None:
    """Name the field at fault where fastavro's own messages would not."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "record" and isinstance(raw, dict):
        fields = {f["name"]: f for f in schema["fields"]}
        for key, value in raw.items():
            if key not in fields:
                raise DecodeError(f"{where}: unknown field {key!r} (the fields are: {', '.join(fields)})")
            _check_shape(value, fields[key]["type"], f"{where}.{key}")
        for name, f in fields.items():
            if name not in raw and "default" not in f:
                raise DecodeError(f"{where}: missing field {name!r}, which has no default")
    elif kind == "array" and isinstance(raw, list):
        for i, item in enumerate(raw):
            _check_shape(item, schema["items"], f"{where}[{i}]")
    elif kind == "enum" and raw not in schema["symbols"]:
        raise DecodeError(f"{where}: {raw!r} is not one of {', '.join(schema['symbols'])}")


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:500]
