"""Split what ``kcat -C -f FORMAT`` printed back into records. Pure: bytes in, records out.

kcat writes each message through its ``-f`` format (``%k`` key, ``%s`` value, ``%t``
topic, ``%p`` partition, ``%o`` offset, ``%K``/``%S`` key/value length, ``%T``
timestamp, backslash escapes). Given the same format string, ``split`` finds
each record again. Values are binary (Avro) and may contain the very separators
the format uses (a config's newlines), so a value's end is found either from
``%S`` when the format has it, or by trying each place where the format's next
separator occurs and keeping the first at which ``accept`` recognises a whole
record (Avro bodies are self-delimiting: a cut-short or overlong slice does not
decode). A value nothing accepts ends at the first separator and is passed on
for the caller to report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fs_bus.errors import FsBusError

DEFAULT_FORMAT = "%s\\n"  # what kcat -C prints without -f: each value on its own line
FIELDS = "tpokKsST"
_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0", "\\": b"\\"}
MAX_CANDIDATES = 256  # separators tried per value before giving up on finding its end


class FormatError(FsBusError):
    """The -f format cannot be read back (an unknown %-field, two fields with nothing between)."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # one of FIELDS


@dataclass(frozen=True, slots=True)
class Literal:
    text: bytes


Token = Field | Literal


@dataclass(frozen=True, slots=True)
class KcatRecord:
    """One record as kcat printed it; coordinates are None when the format lacks them."""

    index: int  # 0-based position in the input
    key: bytes | None
    value: bytes | None  # None: a tombstone (kcat prints an empty value and %S = -1)
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    timestamp: int | None = None

    def where(self) -> str:
        """Where the record came from, as fs-bus reports bad records: ``topic[partition]@offset``."""
        if self.topic is not None and self.partition is not None and self.offset is not None:
            return f"{self.topic}[{self.partition}]@{self.offset}"
        coords = [f"{n}={v}" for n, v in (("topic", self.topic), ("partition", self.partition),
                                          ("offset", self.offset)) if v is not None]
        return f"record #{self.index + 1} of the input" + (f" ({', '.join(coords)})" if coords else "")


def parse_format(fmt: str) -> list[Token]:
    """kcat's -f string (as typed, with ``\\n`` escapes) as tokens."""
    tokens: list[Token] = []
    text = bytearray()
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "\\" and i + 1 < len(fmt) and fmt[i + 1] in _ESCAPES:
            text += _ESCAPES[fmt[i + 1]]
            i += 2
        elif c == "%" and i + 1 < len(fmt):
            f = fmt[i + 1]
            if f == "%":
                text += b"%"
            elif f in FIELDS:
                if text:
                    tokens.append(Literal(bytes(text)))
                    text.clear()
                elif tokens and isinstance(tokens[-1], Field) and not (
                        tokens[-1].name in "ks" and Field(tokens[-1].name.upper()) in tokens):
                    raise FormatError(f"format {fmt!r}: %{tokens[-1].name} and %{f} need something between them")
                tokens.append(Field(f))
            else:
                raise FormatError(f"format {fmt!r}: %{f} is not a field fs-bus decode reads "
                                  f"(it reads {', '.join('%' + x for x in FIELDS)})")
            i += 2
        else:
            text += c.encode()
            i += 1
    if text:
        tokens.append(Literal(bytes(text)))
    if Field("s") not in tokens:
        raise FormatError(f"format {fmt!r} has no %s: there is no value to decode")
    return tokens


def split(data: bytes, fmt: str, accept: Callable[[bytes], bool]) -> Iterator[KcatRecord]:
    """The records in ``data``, printed by kcat with format ``fmt``.

    ``accept(value)`` says whether ``value`` is one whole record (used to find where
    a value ends when the format gives no ``%S``). Input that does not follow the
    format at all raises ``FormatError`` naming the byte offset.
    """
    tokens = parse_format(fmt)
    pos, index = 0, 0
    while pos < len(data):
        fields: dict[str, bytes] = {}
        for n, tok in enumerate(tokens):
            if isinstance(tok, Literal):
                if pos == len(data) and all(isinstance(t, Literal) for t in tokens[n:]):
                    break  # the input's last record, printed without its closing separator
                if not data.startswith(tok.text, pos):
                    raise FormatError(f"byte {pos} of the input: expected {tok.text!r} as in the format {fmt!r}, "
                                      f"found {data[pos:pos + 20]!r}")
                pos += len(tok.text)
                continue
            sep = _next_literal(tokens, n)
            length = _length(fields, tok.name.upper()) if tok.name in "sk" else None
            if length is not None:  # %K / %S came first: the exact size (-1: null)
                fields[tok.name] = data[pos:pos + max(length, 0)]
                if length < 0:
                    fields[tok.name + "-null"] = b""
                pos += max(length, 0)
            elif tok.name == "s":
                end = _value_end(data, pos, sep, accept)
                fields["s"] = data[pos:end]
                pos = end
            else:
                end = data.find(sep, pos) if sep else len(data)
                if end < 0:
                    raise FormatError(f"byte {pos} of the input: no {sep!r} after %{tok.name}")
                fields[tok.name] = data[pos:end]
                pos = end
        yield _record(index, fields)
        index += 1


def _next_literal(tokens: list[Token], n: int) -> bytes:
    """The separator after token n: the next literal, or the format's first (the next record's) at the end."""
    for tok in tokens[n + 1:]:
        if isinstance(tok, Literal):
            return tok.text
    return tokens[0].text if isinstance(tokens[0], Literal) else b""


def _length(fields: dict[str, bytes], name: str) -> int | None:
    raw = fields.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise FormatError(f"%{name} is {raw[:20]!r}, not a number") from None


def _value_end(data: bytes, start: int, sep: bytes, accept: Callable[[bytes], bool]) -> int:
    if not sep:
        return len(data)
    candidates = []
    at = data.find(sep, start)
    while at >= 0 and len(candidates) < MAX_CANDIDATES:
        candidates.append(at)
        at = data.find(sep, at + 1)
    if len(candidates) < MAX_CANDIDATES and not data.endswith(sep):
        candidates.append(len(data))  # the last value, printed without its separator
    for end in candidates:
        if end == start or accept(data[start:end]):
            return end
    return candidates[0]  # nothing decodes: the value ends at the first separator, and is reported


def _record(index: int, f: dict[str, bytes]) -> KcatRecord:
    def number(name: str) -> int | None:
        raw = f.get(name)
        return int(raw) if raw not in (None, b"") and raw.lstrip(b"-").isdigit() else None

    key = None if "k-null" in f else f.get("k") or None  # without %K, kcat prints a null key as nothing
    value: bytes | None = f.get("s")
    if "s-null" in f or value == b"":
        value = None  # kcat prints a tombstone as an empty value
    return KcatRecord(index=index, key=key, value=value,
                      topic=f["t"].decode("utf-8", "replace") if "t" in f else None,
                      partition=number("p"), offset=number("o"), timestamp=number("T"))
