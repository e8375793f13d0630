"""The function record: the whole desired state of one function.

It is written whole every time (create, start, stop) because the control topic is
compacted: the cleaner keeps only the newest record per key, so a bare "START f"
would erase the "CREATE f" before it. DROP is a tombstone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from fs_bus.control import avro_json, codec
from fs_bus.errors import DecodeError


class DesiredState(str, enum.Enum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class ArtifactKind(str, enum.Enum):
    WASM_COMPONENT = "wasm-component"
    PYTHON_MODULES = "python-modules"


@dataclass(frozen=True, slots=True)
class ChunkRef:
    partition: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class ArtifactManifest:
    """Where an artifact's chunks are, so a node can seek straight to them."""

    sha256: str
    size: int
    kind: ArtifactKind
    topic: str
    chunks: tuple[ChunkRef, ...]
    signature: bytes | None = None  # ed25519, by the key signed_by names (see fs_bus.artifacts.signing)
    signed_by: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    name: str
    task_type: str
    config_yaml: str
    artifact: ArtifactManifest
    desired_state: DesiredState
    revision: int
    updated_at: int  # epoch milliseconds
    updated_by: str = ""
    # Bumped when the state is reset (reprocessing): older local state and changelogs are dead.
    state_generation: int = 0
    # Safe upgrades (fs_bus.control.upgrade): the code revision, what it replaced and why.
    code_revision: int = 1
    upgrade_from: int | None = None
    reason: str | None = None
    shadow_of: str | None = None  # a shadow's live function
    source_headers: bool = False  # outputs carry fs-bus.source while a shadow runs
    shadow_from: tuple[str, ...] = ()  # a shadow's start: topic:partition:offset

    def with_state(self, state: DesiredState, *, updated_at: int, updated_by: str) -> FunctionRecord:
        # A START or STOP is no upgrade: a failure after it is no reason to roll back.
        return replace(self, desired_state=state, revision=self.revision + 1,
                       updated_at=updated_at, updated_by=updated_by, upgrade_from=None)

    @property
    def spec_key(self) -> tuple[str, str, int, bool]:
        """What an instance is built from: a change here means a restart, not a resume."""
        return (self.artifact.sha256, self.config_yaml, self.state_generation, self.source_headers)


def manifest_datum(a: ArtifactManifest) -> dict[str, Any]:
    return {
        "sha256": a.sha256, "size": a.size, "kind": a.kind.value, "topic": a.topic,
        "chunks": [{"partition": c.partition, "offset": c.offset, "size": c.size} for c in a.chunks],
        "signature": a.signature, "signed_by": a.signed_by,
    }


def manifest_from_datum(a: dict[str, Any], name: str) -> ArtifactManifest:
    try:
        kind = ArtifactKind(a["kind"])
    except ValueError:
        raise DecodeError(f"function {name!r}: unknown artifact kind {a['kind']!r}") from None
    return ArtifactManifest(
        sha256=a["sha256"], size=a["size"], kind=kind, topic=a["topic"],
        chunks=tuple(ChunkRef(c["partition"], c["offset"], c["size"]) for c in a["chunks"]),
        signature=a["signature"], signed_by=a["signed_by"],
    )


def encode_function(record: FunctionRecord) -> bytes:
    return codec.encode("FunctionRecord", {
        "name": record.name,
        "task_type": record.task_type,
        "config_yaml": record.config_yaml,
        "artifact": manifest_datum(record.artifact),
        "desired_state": record.desired_state.value,
        "revision": record.revision,
        "updated_at": record.updated_at,
        "updated_by": record.updated_by,
        "state_generation": record.state_generation,
        "code_revision": record.code_revision,
        "upgrade_from": record.upgrade_from,
        "reason": record.reason,
        "shadow_of": record.shadow_of,
        "source_headers": record.source_headers,
        "shadow_from": list(record.shadow_from),
    })


def function_from_datum(d: dict[str, Any]) -> FunctionRecord:
    return FunctionRecord(
        name=d["name"],
        task_type=d["task_type"],
        config_yaml=d["config_yaml"],
        artifact=manifest_from_datum(d["artifact"], d["name"]),
        desired_state=DesiredState(d["desired_state"]),
        revision=d["revision"],
        updated_at=codec.millis(d["updated_at"]),
        updated_by=d["updated_by"],
        state_generation=d["state_generation"],
        code_revision=d["code_revision"],
        upgrade_from=d["upgrade_from"],
        reason=d["reason"],
        shadow_of=d["shadow_of"],
        source_headers=d["source_headers"],
        shadow_from=tuple(d["shadow_from"]),
    )


def decode_function(value: bytes) -> FunctionRecord:
    # A record produced by hand (kcat -P) may be in Avro's JSON encoding; it is read
    # with the current schema and then takes the binary path, so both mean the same.
    if avro_json.is_json(value):
        value = avro_json.to_single_object(value, "FunctionRecord")
    name, datum = codec.decode(value)
    if name != "FunctionRecord":
        raise DecodeError(f"expected a FunctionRecord on the control topic, found a {name}")
    return function_from_datum(datum)
