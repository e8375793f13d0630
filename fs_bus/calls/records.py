"""Call request and reply records (Avro single-object encoding, like every fs-bus record)."""

from __future__ import annotations

from dataclasses import dataclass

from fs_bus.control import codec
from fs_bus.errors import DecodeError


@dataclass(frozen=True, slots=True)
class CallRequest:
    id: str
    function: str
    payload: bytes
    issued_at: int
    deadline: int


@dataclass(frozen=True, slots=True)
class CallReply:
    id: str
    function: str
    node_id: str
    partition: str
    ok: bool
    payload: bytes
    error: str | None = None


def encode_request(r: CallRequest) -> bytes:
    return codec.encode("CallRequest", {"id": r.id, "function": r.function, "payload": r.payload,
                                        "issued_at": r.issued_at, "deadline": r.deadline})


def encode_reply(r: CallReply) -> bytes:
    return codec.encode("CallReply", {"id": r.id, "function": r.function, "node_id": r.node_id,
                                      "partition": r.partition, "ok": r.ok, "payload": r.payload, "error": r.error})


def decode_request(value: bytes | None) -> CallRequest:
    name, d = codec.decode(value)
    if name != "CallRequest":
        raise DecodeError(f"expected a CallRequest, found a {name}")
    return CallRequest(d["id"], d["function"], d["payload"], codec.millis(d["issued_at"]), codec.millis(d["deadline"]))


def decode_reply(value: bytes | None) -> CallReply:
    name, d = codec.decode(value)
    if name != "CallReply":
        raise DecodeError(f"expected a CallReply, found a {name}")
    return CallReply(d["id"], d["function"], d["node_id"], d["partition"], d["ok"], d["payload"], d["error"])
