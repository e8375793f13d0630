"""The frames a :class:`~fs_bus.runtime.python.PythonProcessor` and its child process exchange.

Pure: bytes in, values out, no I/O. Both sides import it; only the parent's
decoders face untrusted bytes (the child runs user code, which can write
anything to its end of the pipe), so they parse a fixed binary layout, check
every length against the frame and never evaluate anything (no pickle, no eval).

Every frame is ``u32 length`` (big-endian, like every integer here) and a body
of that many bytes. ``str`` is ``u32 length`` + UTF-8. ``results`` is what n
calls into user code emitted, in columns, so that each side packs and unpacks
whole arrays at once instead of a field at a time:

    u32 n
    n x u32          record ends: call i emitted records [end(i-1), end(i)); R = end(n-1)
    n x u32          watermark ends, the same way; W = the last one
    R x (u32 target, u32 length)
    W x u32 target, then W x u64 watermark
    the R records' bytes, back to back (exactly the rest of the body)

Ends rather than counts because that is what the child has at hand: the
context's output lists only grow during a batch, and their lengths after each
record are the ends.

Requests (parent -> child), body = ``u8 op`` + fields:

    INIT        u32 header length, header (UTF-8 JSON, from the trusted parent), bundle zip (rest)
    PROCESS     u32 source_id, u32 n, n x u32 length, the n records back to back
    WATERMARK   u32 source_id, u64 watermark
    CHECKPOINT  u64 checkpoint_id
    CHANGES     (changelog-backed state only) the state changes sealed by the last CHECKPOINT
    CONFIRM     u64 next changelog offset, u64 now (ms): the sealed changes are in the changelog;
                commit the local state
    STATE       the whole state as it is now, uncommitted writes included (for fs_bus.testing)
    HEARTBEAT
    CUSTOM      payload (rest)
    CLOSE

Replies (child -> parent), exactly one per request, body = ``u8 status`` + fields.
Before any request the child sends one ``OK`` reply, ``u32 PROTOCOL``, once it
is ready to read INIT.

    OK     INIT: nothing; PROCESS: results (one per record); WATERMARK,
           CHECKPOINT, CLOSE: results (n = 1); HEARTBEAT: u8 (0/1); CUSTOM: payload (rest);
           CHANGES and STATE: u32 n, n x (str store, u32 key length, key, u8 has value, u32 value
           length, value); CONFIRM: nothing
    ERROR  u8 kind, u32 index (record of a PROCESS, else NO_INDEX), str exception type,
           str message, str traceback tail, str where, results (of the records done)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from fs_bus.runtime.base import Emitted
from fs_bus.state.changelog import Change

PROTOCOL = 2

# A reply frame longer than this is taken for garbage, not allocated.
MAX_FRAME = 1 << 30
NO_INDEX = 0xFFFF_FFFF

_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U32U32 = struct.Struct(">II")
_U32U64 = struct.Struct(">IQ")
_OP_U32 = struct.Struct(">BI")
_OP_U64 = struct.Struct(">BQ")
_OP_U32U32 = struct.Struct(">BII")
_OP_U32U64 = struct.Struct(">BIQ")
_OP_U64U64 = struct.Struct(">BQQ")


class Op(IntEnum):
    INIT = 1
    PROCESS = 2
    WATERMARK = 3
    CHECKPOINT = 4
    HEARTBEAT = 5
    CUSTOM = 6
    CLOSE = 7
    CHANGES = 8
    CONFIRM = 9
    STATE = 10


class Status(IntEnum):
    OK = 0
    ERROR = 1


class ErrorKind(IntEnum):
    USER = 1  # user code raised
    ARTIFACT = 2  # the bundle or its class is not a usable function
    STATE = 3  # the state back end failed
    INTERNAL = 4  # the child runtime itself failed (a bug, or a broken environment)
    MISSING = 5  # the driver does not define the hook called; nothing failed


class ProtocolError(Exception):
    """A frame does not follow the layout above."""


@dataclass(slots=True)
class Failure:
    """An ERROR reply."""

    kind: ErrorKind
    index: int | None
    exc_type: str
    message: str
    traceback: str
    where: str
    done: list[Emitted] = field(default_factory=list)


def frame(body: bytes) -> bytes:
    return _U32.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    length: int = _U32.unpack(header)[0]
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes announced (the limit is {MAX_FRAME})")
    return length


# --- requests (parent side encodes, child decodes) ----------------------------


def encode_init(header_json: bytes, bundle: bytes) -> bytes:
    return b"".join((_OP_U32.pack(Op.INIT, len(header_json)), header_json, bundle))


def encode_process(source_id: int, records: list[bytes]) -> bytes:
    n = len(records)
    return b"".join([_OP_U32U32.pack(Op.PROCESS, source_id, n), struct.pack(f">{n}I", *map(len, records)), *records])


def encode_watermark(source_id: int, watermark: int) -> bytes:
    return _OP_U32U64.pack(Op.WATERMARK, source_id, watermark)


def encode_checkpoint(checkpoint_id: int) -> bytes:
    return _OP_U64.pack(Op.CHECKPOINT, checkpoint_id)


def encode_custom(payload: bytes) -> bytes:
    return bytes((Op.CUSTOM,)) + payload


def encode_confirm(next_offset: int, now_ms: int) -> bytes:
    return _OP_U64U64.pack(Op.CONFIRM, next_offset, now_ms)


def decode_confirm(body: bytes) -> tuple[int, int]:
    next_offset, now_ms = _OP_U64U64.unpack_from(body)[1:]
    return next_offset, now_ms


def encode_changes(changes: list[Change]) -> bytes:
    parts = [bytes((Status.OK,)), _U32.pack(len(changes))]
    for c in changes:
        store = c.store.encode()
        parts += [_U32.pack(len(store)), store, _U32.pack(len(c.key)), c.key]
        if c.value is None:
            parts.append(b"\x00" + _U32.pack(0))
        else:
            parts += [b"\x01" + _U32.pack(len(c.value)), c.value]
    return b"".join(parts)


HEARTBEAT = bytes((Op.HEARTBEAT,))
CHANGES = bytes((Op.CHANGES,))
STATE = bytes((Op.STATE,))
CLOSE = bytes((Op.CLOSE,))


def decode_init(body: bytes) -> tuple[bytes, bytes]:
    """``(header_json, bundle)``."""
    (n,) = _U32.unpack_from(body, 1)
    return body[5 : 5 + n], body[5 + n :]


def decode_process(body: bytes) -> tuple[int, list[bytes]]:
    source_id, n = _U32U32.unpack_from(body, 1)
    pos = 9 + 4 * n
    records: list[bytes] = []
    append = records.append
    for size in struct.unpack_from(f">{n}I", body, 9):
        end = pos + size
        append(body[pos:end])
        pos = end
    return source_id, records


def decode_u32_u64(body: bytes) -> tuple[int, int]:
    source_id, value = _U32U64.unpack_from(body, 1)
    return source_id, value


def decode_u64(body: bytes) -> int:
    value: int = _U64.unpack_from(body, 1)[0]
    return value


# --- replies (child side encodes, parent decodes) -----------------------------


@dataclass(slots=True)
class Outputs:
    """What a run of calls emitted, as columns: call ``i`` emitted
    ``records[record_ends[i-1]:record_ends[i]]`` (from 0 for the first), and
    likewise for watermarks."""

    record_ends: list[int] = field(default_factory=list)
    watermark_ends: list[int] = field(default_factory=list)
    records: list[tuple[int, bytes]] = field(default_factory=list)
    watermarks: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def of_one_call(cls, records: list[tuple[int, bytes]], watermarks: list[tuple[int, int]]) -> Outputs:
        return cls([len(records)], [len(watermarks)], records, watermarks)

    def first(self, n: int) -> Outputs:
        """The outputs of the first ``n`` calls."""
        r = self.record_ends[n - 1] if n else 0
        w = self.watermark_ends[n - 1] if n else 0
        return Outputs(self.record_ends[:n], self.watermark_ends[:n], self.records[:r], self.watermarks[:w])


def encode_results(parts: list[bytes], outputs: Outputs) -> None:
    """Append the encoding of ``outputs`` to ``parts``."""
    n = len(outputs.record_ends)
    heads: list[int] = []
    data: list[bytes] = []
    add_head = heads.append
    add_data = data.append
    for target, payload in outputs.records:
        add_head(target)
        add_head(len(payload))
        add_data(payload)
    watermarks = outputs.watermarks
    parts.append(_U32.pack(n))
    parts.append(struct.pack(f">{n}I", *outputs.record_ends))
    parts.append(struct.pack(f">{n}I", *outputs.watermark_ends))
    parts.append(struct.pack(f">{len(heads)}I", *heads))
    parts.append(struct.pack(f">{len(watermarks)}I", *(target for target, _ in watermarks)))
    parts.append(struct.pack(f">{len(watermarks)}Q", *(value for _, value in watermarks)))
    parts.extend(data)


def ok(payload: bytes = b"") -> bytes:
    return bytes((Status.OK,)) + payload


def ok_results(outputs: Outputs) -> bytes:
    parts = [bytes((Status.OK,))]
    encode_results(parts, outputs)
    return b"".join(parts)


def ready() -> bytes:
    return ok(_U32.pack(PROTOCOL))


def error(failure: Failure, done: Outputs | None = None) -> bytes:
    """An ERROR reply; ``done``: the outputs of the records before ``failure.index``."""
    parts = [bytes((Status.ERROR, failure.kind)), _U32.pack(NO_INDEX if failure.index is None else failure.index)]
    for text in (failure.exc_type, failure.message, failure.traceback, failure.where):
        raw = text.encode("utf-8", "backslashreplace")
        parts.append(_U32.pack(len(raw)))
        parts.append(raw)
    encode_results(parts, done or Outputs())
    return b"".join(parts)


class Reply:
    """A reply body, read field by field; every read checks the bounds."""

    __slots__ = ("body", "pos")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.body):
            raise ProtocolError(f"reply ends after {len(self.body)} bytes, {end} needed")
        chunk = self.body[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def text(self) -> str:
        return self._take(self.u32()).decode("utf-8", "replace")

    def rest(self) -> bytes:
        chunk = self.body[self.pos :]
        self.pos = len(self.body)
        return chunk

    def end(self) -> None:
        if self.pos != len(self.body):
            raise ProtocolError(f"{len(self.body) - self.pos} unexpected bytes at the end of a reply")

    def _array(self, code: str, count: int) -> tuple[int, ...]:
        size = count * (8 if code == "Q" else 4)
        if self.pos + size > len(self.body):
            raise ProtocolError(f"reply ends inside an array of {count} integers")
        values = struct.unpack_from(f">{count}{code}", self.body, self.pos)
        self.pos += size
        return values

    def results(self, count: int | None = None) -> list[Emitted]:
        """What the calls emitted (the hot path: one per record of a batch); this
        is the end of the reply. ``count``: how many calls there must be."""
        n = self.u32()
        if count is not None and n != count:
            raise ProtocolError(f"{n} results for {count} calls")
        record_ends = self._array("I", n)
        watermark_ends = self._array("I", n)
        heads = self._array("I", 2 * (record_ends[-1] if n else 0))
        wm_targets = self._array("I", watermark_ends[-1] if n else 0)
        wm_values = self._array("Q", len(wm_targets))
        body = self.body
        pos = self.pos
        lengths = heads[1::2]
        if pos + sum(lengths) != len(body):
            raise ProtocolError("record lengths do not add up to the reply's size")
        records: list[tuple[int, bytes]] = []
        append = records.append
        for target, length in zip(heads[0::2], lengths):
            end = pos + length
            append((target, body[pos:end]))
            pos = end
        self.pos = pos
        if not wm_targets and record_ends == tuple(range(1, n + 1)):
            return [Emitted([record], []) for record in records]  # one record per call: the usual case
        watermarks = list(zip(wm_targets, wm_values))
        out = []
        r = w = 0
        for r_end, w_end in zip(record_ends, watermark_ends):
            if r_end < r or w_end < w:
                raise ProtocolError("output ends go backwards")
            out.append(Emitted(records[r:r_end], watermarks[w:w_end]))
            r, w = r_end, w_end
        return out

    def changes(self) -> list[Change]:
        """A CHANGES (or STATE) reply's state changes; this is the end of the reply."""
        out = []
        for _ in range(self.u32()):
            store = self.text()
            key = self._take(self.u32())
            has_value = self.u8()
            value = self._take(self.u32())
            out.append(Change(store, key, value if has_value else None))
        self.end()
        return out

    def failure(self) -> Failure:
        kind = self.u8()
        try:
            error_kind = ErrorKind(kind)
        except ValueError:
            raise ProtocolError(f"unknown error kind {kind}") from None
        index = self.u32()
        exc_type, message, tb, where = self.text(), self.text(), self.text(), self.text()
        done = self.results()
        return Failure(error_kind, None if index == NO_INDEX else index, exc_type, message, tb, where, done)
