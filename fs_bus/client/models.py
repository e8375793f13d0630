"""What the client returns. ``FunctionInfo``'s first three fields match the reference client."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    host: str
    pid: int
    version: str
    alive: bool
    functions: int
    last_heartbeat_ms: int


@dataclass(frozen=True)
class ShowFunctionsResult:
    functions: list[FunctionInfo]
    nodes: list[NodeInfo] = field(default_factory=list, repr=False)
    status_code: int = 200
    message: str = ""
