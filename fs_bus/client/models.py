"""What the client returns. ``FunctionInfo``'s first three fields match the reference client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    task_type: str
    status: str  # observed across live nodes: RUNNING, STOPPED, STARTING, FAILED or PENDING
    desired: str = field(default="", repr=False)  # what the control record asks for
    revision: int = field(default=0, repr=False)
    nodes: tuple[str, ...] = field(default=(), repr=False)  # live nodes running it
    partitions: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)  # node -> topic:partition
    error: str | None = field(default=None, repr=False)
    artifact_sha256: str = field(default="", repr=False)
    updated_at: int = field(default=0, repr=False)
    updated_by: str = field(default="", repr=False)
    lag: int | None = field(default=None, repr=False)  # records its group has not processed yet (None: unknown)
    lag_error: str | None = field(default=None, repr=False)  # why lag is unknown (e.g. its cluster is unreachable)
    placement: str = field(default="", repr=False)  # "n1,n2 (2/2)" or "unplaced: no live node with zone=b"
    code_revision: int = field(default=1, repr=False)  # the code revision the record names
    reason: str | None = field(default=None, repr=False)  # why that revision (rollback to 1, auto-rollback: ...)


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    host: str
    pid: int
    version: str
    alive: bool
    functions: int
    last_heartbeat_ms: int
    labels: dict[str, str] = field(default_factory=dict)  # fs-bus node --label
    rss_bytes: int = 0  # the node's resident memory at its last beat (0: unknown)
    threads: int = 0


@dataclass(frozen=True)
class ShowFunctionsResult:
    functions: list[FunctionInfo]
    nodes: list[NodeInfo] = field(default_factory=list, repr=False)
    status_code: int = 200
    message: str = ""


@dataclass(frozen=True)
class StartPosition:
    """Where ``START FUNCTION ... FROM`` restarts a function's inputs (its state starts empty).

    ``kind`` is ``earliest``, ``latest``, ``offset`` (``value``: the offset, on every
    partition) or ``timestamp`` (``value``: epoch milliseconds).
    """

    kind: str
    value: int = 0

    KINDS = ("earliest", "latest", "offset", "timestamp")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"start position must be one of {', '.join(self.KINDS)}, not {self.kind!r}")
        if self.value < 0:
            raise ValueError(f"a start {self.kind} cannot be negative ({self.value})")

    @classmethod
    def parse(cls, spec: "StartPosition | str | int | datetime") -> "StartPosition":
        """``"earliest"``, ``"latest"``, an offset (``42`` or ``"offset:42"``), or a time
        (a ``datetime`` or ISO 8601 text such as ``"2026-11-30T00:00:00Z"``; no zone means UTC)."""
        if isinstance(spec, StartPosition):
            return spec
        if isinstance(spec, datetime):
            return cls("timestamp", _epoch_ms(spec))
        if isinstance(spec, int) and not isinstance(spec, bool):
            return cls("offset", spec)
        if not isinstance(spec, str):
            raise TypeError(f"a start position is a str, int or datetime, not {type(spec).__name__}")
        text = spec.strip()
        lowered = text.lower()
        if lowered in ("earliest", "latest"):
            return cls(lowered)
        if lowered.startswith("offset:") and lowered[7:].strip().isdigit():
            return cls("offset", int(lowered[7:]))
        if lowered.isdigit():
            return cls("offset", int(lowered))
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{spec!r} is not a start position: use earliest, latest, an offset or an ISO 8601 "
                             "time such as 2026-11-30T00:00:00Z") from None
        return cls("timestamp", _epoch_ms(when))

    def __str__(self) -> str:
        if self.kind == "offset":
            return f"OFFSET {self.value}"
        if self.kind == "timestamp":
            when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=self.value)
            return f"TIMESTAMP '{when.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}'"
        return self.kind.upper()


def _epoch_ms(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class FunctionDescription:
    """``describe_function``: the desired record, each node's report, and the group's lag."""

    name: str
    task_type: str
    desired: str
    status: str
    revision: int
    state_generation: int
    config_yaml: str
    artifact_sha256: str
    artifact_size: int
    artifact_kind: str
    signed_by: str | None
    updated_at: int
    updated_by: str
    group_id: str
    guarantee: str
    nodes: list[dict] = field(default_factory=list)  # node, state, revision, partitions, error, errors, alive
    lag: list[dict] = field(default_factory=list)  # topic, partition, node, committed, end, lag
    changelogs: list[str] = field(default_factory=list)
    lag_error: str | None = None  # why ``lag`` is empty (e.g. its input cluster cannot be reached)
    placement: dict = field(default_factory=dict)  # nodes, parallelism, wanted, wanted_from, labels, reason, summary
    code_revision: int = 1  # the code revision the record names (each node's is in ``nodes``)
    reason: str | None = None  # why that revision exists (rollback to 1, auto-rollback: ..., shadow)


@dataclass(frozen=True)
class RevisionInfo:
    """One code revision of a function (``function_history``, ``SHOW FUNCTION HISTORY``)."""

    rev: int  # the code revision
    control_revision: int  # the function record's revision that introduced it
    created_at: int  # epoch ms
    created_by: str
    artifact_sha256: str
    config_digest: str  # sha256 of the config text
    changes: str  # what changed from the revision before
    reason: str | None = None  # create, replace, rollback to N, auto-rollback ..., shadow, promoted shadow
    current: bool = False  # the revision the function record names now
