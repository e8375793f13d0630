"""What ``fs-bus test`` reads and prints (pure: text in, values out).

Input, one record per line:

- ``lines`` (default): the line is the value (UTF-8, without its newline); no key.
- ``json``: each line a JSON object ``{"value": ..., "key": ..., "headers": ...,
  "timestamp": ms, "source_id": 0, "partition": 0}``, every field optional. Bytes
  (value, key, a header's value) are a string (taken as UTF-8), ``null``, or
  ``{"base64": "..."}`` for anything else; headers are ``[[name, value], ...]`` or
  ``{name: value}``.

Outputs are printed as the node would produce them: the output's index and topic,
the key and the value; with ``-o json`` one object per line, bytes as above.

The state file (``--state``) holds ``{store: {key: value}}`` for simple keys (UTF-8
strings), or ``{store: [{"key": ..., "value": ...}, {"complex_key": {"key_group": ...,
"key": ..., "namespace": ..., "user_key": ...}, "value": ...}]}``, the form written
when a store holds complex keys or keys that are not UTF-8.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from fs_bus.errors import FsBusError
from fs_bus.state.kv import ComplexKey
from fs_bus.testing.harness import Input, Output

INPUT_FORMATS = ("lines", "json")
_RECORD_FIELDS = ("value", "key", "headers", "timestamp", "source_id", "partition")
_COMPLEX_FIELDS = ("key_group", "key", "namespace", "user_key")


class InputError(FsBusError):
    """A line of ``fs-bus test``'s input, or its state file, is not what it should be."""


def parse_record(line: str, fmt: str, where: str) -> Input:
    """The record on one input line (without its newline); ``where`` names it in errors."""
    if fmt == "lines":
        return Input(line.encode())
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc.msg} at column {exc.colno}); with --input-format json "
                         "each line is an object such as {\"value\": \"hello\", \"key\": \"k\"}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: a record is a JSON object, not {type(doc).__name__}")
    unknown = sorted(set(doc) - set(_RECORD_FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)} (a record has {', '.join(_RECORD_FIELDS)})")
    timestamp = doc.get("timestamp")
    for name in ("timestamp", "source_id", "partition"):
        value = doc.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InputError(f"{where}: {name} must be a whole number >= 0, not {value!r}")
    return Input(value=from_json_bytes(doc.get("value"), f"{where}: value"),
                 key=from_json_bytes(doc.get("key"), f"{where}: key"),
                 headers=_headers(doc.get("headers"), where), timestamp=timestamp,
                 source_id=doc.get("source_id") or 0, partition=doc.get("partition") or 0)


def _headers(raw: Any, where: str) -> list[tuple[str, bytes | None]] | None:
    if raw is None:
        return None
    pairs = raw.items() if isinstance(raw, dict) else raw
    if not isinstance(pairs, (list, type({}.items()))):
        raise InputError(f"{where}: headers are [[name, value], ...] or {{name: value}}, not {type(raw).__name__}")
    out = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise InputError(f"{where}: a header is [name, value] with a string name, not {pair!r}")
        out.append((pair[0], from_json_bytes(pair[1], f"{where}: header {pair[0]!r}")))
    return out


def from_json_bytes(raw: Any, where: str) -> bytes | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.encode()
    if isinstance(raw, dict) and set(raw) == {"base64"} and isinstance(raw["base64"], str):
        try:
            return base64.b64decode(raw["base64"], validate=True)
        except ValueError:
            raise InputError(f"{where}: {raw['base64']!r} is not base64") from None
    raise InputError(f"{where}: bytes are a string (UTF-8), null or {{\"base64\": \"...\"}}, not {raw!r}")


def to_json_bytes(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def output_json(out: Output) -> dict[str, Any]:
    return {"output": out.output, "topic": out.topic, "key": to_json_bytes(out.key),
            "value": to_json_bytes(out.value),
            "headers": None if out.headers is None else [[n, to_json_bytes(v)] for n, v in out.headers]}


def output_text(out: Output) -> str:
    """``<output index> <topic>  key=<key>  <value>``; bytes that are not UTF-8 as a Python bytes literal."""
    def show(data: bytes | None) -> str:
        if data is None:
            return "(none)"
        try:
            return data.decode()
        except UnicodeDecodeError:
            return repr(data)

    headers = "" if not out.headers else "  headers=" + ",".join(f"{n}:{show(v)}" for n, v in out.headers)
    return f"{out.output} {out.topic}\tkey={show(out.key)}{headers}\t{show(out.value)}"


def state_to_json(state: Mapping[str, Mapping[bytes | ComplexKey, bytes]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for store, entries in state.items():
        simple = all(isinstance(k, bytes) and _utf8(k) for k in entries)
        if simple:
            doc[store] = {k.decode(): to_json_bytes(v) for k, v in entries.items()}  # type: ignore[union-attr]
            continue
        items = []
        for k, v in entries.items():
            if isinstance(k, ComplexKey):
                items.append({"complex_key": {f: to_json_bytes(getattr(k, f)) for f in _COMPLEX_FIELDS},
                              "value": to_json_bytes(v)})
            else:
                items.append({"key": to_json_bytes(k), "value": to_json_bytes(v)})
        doc[store] = items
    return doc


def state_from_json(doc: Any, where: str) -> dict[str, dict[bytes | ComplexKey, bytes]]:
    if not isinstance(doc, dict):
        raise InputError(f"{where}: the state is a JSON object {{store: {{key: value}}}}, not {type(doc).__name__}")
    state: dict[str, dict[bytes | ComplexKey, bytes]] = {}
    for store, entries in doc.items():
        at = f"{where}: store {store!r}"
        out: dict[bytes | ComplexKey, bytes] = {}
        if isinstance(entries, dict):
            for k, v in entries.items():
                out[k.encode()] = _value(v, f"{at}, key {k!r}")
        elif isinstance(entries, list):
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or "value" not in entry or len(set(entry) & {"key", "complex_key"}) != 1:
                    raise InputError(f"{at}[{i}]: an entry is {{\"key\": ..., \"value\": ...}} or "
                                     "{\"complex_key\": {...}, \"value\": ...}")
                if "key" in entry:
                    key: bytes | ComplexKey | None = from_json_bytes(entry["key"], f"{at}[{i}].key")
                else:
                    ck = entry["complex_key"]
                    if not isinstance(ck, dict) or set(ck) != set(_COMPLEX_FIELDS):
                        raise InputError(f"{at}[{i}].complex_key: has exactly {', '.join(_COMPLEX_FIELDS)}")
                    parts = [from_json_bytes(ck[f], f"{at}[{i}].complex_key.{f}") or b"" for f in _COMPLEX_FIELDS]
                    key = ComplexKey(*parts)
                if key is None:
                    raise InputError(f"{at}[{i}].key: a key cannot be null")
                out[key] = _value(entry["value"], f"{at}[{i}].value")
        else:
            raise InputError(f"{at}: is {{key: value}} or a list of entries, not {type(entries).__name__}")
        state[store] = out
    return state


def _value(raw: Any, where: str) -> bytes:
    value = from_json_bytes(raw, where)
    if value is None:
        raise InputError(f"{where}: a stored value cannot be null (leave the key out)")
    return value


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
