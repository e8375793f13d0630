"""A function's code revisions, kept on the control topic under their own keys.

The function's record (key ``<name>``) is its whole desired state, and compaction
keeps only the newest one: the history would go with it. So every code revision
(a CREATE, a replace, a rollback, a promotion, a shadow) is also written once as a
``FunctionRevision`` under ``history/<name>/<code_revision>``, a key nothing
overwrites, holding what a rollback re-applies (artifact manifest, config) and
what ``SHOW FUNCTION HISTORY`` shows. A function name never contains ``/``, so
these keys never meet a function's. A reader that knows only function records
reports them as records it cannot read and skips them. Pure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from fs_bus.control import codec
from fs_bus.control.records import ArtifactManifest, FunctionRecord, manifest_datum, manifest_from_datum
from fs_bus.errors import DecodeError

PREFIX = "history/"


@dataclass(frozen=True, slots=True)
class FunctionRevision:
    name: str
    code_revision: int
    control_revision: int
    task_type: str
    config_yaml: str
    artifact: ArtifactManifest
    created_at: int  # epoch milliseconds
    created_by: str
    config_digest: str
    changes: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class History:
    """Every function's revisions: name -> code revision -> FunctionRevision."""

    revisions: dict[str, dict[int, FunctionRevision]] = field(default_factory=dict)

    def of(self, name: str) -> dict[int, FunctionRevision]:
        return self.revisions.get(name, {})

    def get(self, name: str, code_revision: int) -> FunctionRevision | None:
        return self.of(name).get(code_revision)


def config_digest(config_yaml: str) -> str:
    return hashlib.sha256(config_yaml.encode()).hexdigest()


def revision_of(record: FunctionRecord, changes: str, reason: str | None = None) -> FunctionRevision:
    """The history entry of the code revision ``record`` introduces."""
    return FunctionRevision(
        name=record.name, code_revision=record.code_revision, control_revision=record.revision,
        task_type=record.task_type, config_yaml=record.config_yaml, artifact=record.artifact,
        created_at=record.updated_at, created_by=record.updated_by, config_digest=config_digest(record.config_yaml),
        changes=changes, reason=reason if reason is not None else record.reason)


def history_key(name: str, code_revision: int) -> bytes:
    return f"{PREFIX}{name}/{code_revision}".encode()


def is_history_key(key: bytes | None) -> bool:
    return key is not None and key.startswith(PREFIX.encode())


def encode_revision(rev: FunctionRevision) -> bytes:
    return codec.encode("FunctionRevision", {
        "name": rev.name, "code_revision": rev.code_revision, "control_revision": rev.control_revision,
        "task_type": rev.task_type, "config_yaml": rev.config_yaml, "artifact": manifest_datum(rev.artifact),
        "created_at": rev.created_at, "created_by": rev.created_by, "config_digest": rev.config_digest,
        "changes": rev.changes, "reason": rev.reason,
    })


def revision_from_datum(d: dict[str, Any]) -> FunctionRevision:
    return FunctionRevision(
        name=d["name"], code_revision=d["code_revision"], control_revision=d["control_revision"],
        task_type=d["task_type"], config_yaml=d["config_yaml"], artifact=manifest_from_datum(d["artifact"], d["name"]),
        created_at=codec.millis(d["created_at"]), created_by=d["created_by"], config_digest=d["config_digest"],
        changes=d["changes"], reason=d["reason"])


def apply(history: History, key: bytes, value: bytes | None) -> History:
    """Fold one ``history/<name>/<rev>`` record into a new history; raise ``DecodeError`` if it can't be."""
    copy = History({n: dict(r) for n, r in history.revisions.items()})
    fold(copy, key, value)
    return copy


def fold(history: History, key: bytes, value: bytes | None) -> None:
    """``apply`` in place, for a reader that owns its history (the node, a client replaying the
    log): a copy per record would cost n² for n records. ``DecodeError`` leaves it untouched."""
    name, code_revision, rev = decode(key, value)
    revisions = history.revisions.get(name)
    if rev is not None:
        if revisions is None:
            revisions = history.revisions[name] = {}
        revisions[code_revision] = rev
    elif revisions is not None:
        revisions.pop(code_revision, None)
        if not revisions:
            del history.revisions[name]


def decode(key: bytes, value: bytes | None) -> tuple[str, int, FunctionRevision | None]:
    """The function and code revision a history record is about, and the revision (None: a tombstone)."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"history key is not UTF-8: {key[:32].hex()}") from None
    name, _, rev_text = text[len(PREFIX):].rpartition("/")
    if not name or not rev_text.isdigit():
        raise DecodeError(f"history key {text!r} is not history/<function>/<code revision>")
    code_revision = int(rev_text)
    if value is None:
        return name, code_revision, None
    schema, datum = codec.decode(value)
    if schema != "FunctionRevision":
        raise DecodeError(f"expected a FunctionRevision under key {text!r}, found a {schema}")
    rev = revision_from_datum(datum)
    if rev.name != name or rev.code_revision != code_revision:
        raise DecodeError(f"history key {text!r} does not match the revision inside it "
                          f"({rev.name!r}, {rev.code_revision})")
    return name, code_revision, rev
