"""Status records: node heartbeats and what each node observes of each function.

Keys on ``<ns>.status`` (compacted): ``node/<node_id>`` for heartbeats and
``function/<name>/<node_id>`` for function status. A node that stops cleanly, or
forgets a dropped function, writes tombstones, so the topic holds the present.
``StatusTable.apply`` folds the topic into a table; pure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from fs_bus.control import codec
from fs_bus.errors import DecodeError


class ObservedState(str, enum.Enum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class NodeHeartbeat:
    node_id: str
    host: str
    pid: int
    version: str
    started_at: int
    heartbeat_at: int
    interval_ms: int
    functions: int
    labels: dict[str, str] = field(default_factory=dict)  # fs-bus node --label; placement.labels match them
    rss_bytes: int = 0  # the node process's resident memory (0: unknown, e.g. an older node)
    threads: int = 0

    def alive(self, now_ms: int, missed_beats: int = 3) -> bool:
        """A node is alive until it has missed a few beats (it may be busy or GC-ing). Three:
        its functions are placed elsewhere that soon after a kill -9 (6 s at 2 s beats)."""
        return now_ms - self.heartbeat_at <= max(self.interval_ms * missed_beats, 3000)


@dataclass(frozen=True, slots=True)
class FunctionStatus:
    function: str
    node_id: str
    revision: int
    state: ObservedState
    error: str | None
    partitions: tuple[str, ...]
    updated_at: int
    errors: int = 0  # the function's errors on this node since its instance started (a counter)
    code_revision: int = 0  # the code revision acted on (0: a node older than code revisions)


def node_key(node_id: str) -> bytes:
    return f"node/{node_id}".encode()


def function_key(function: str, node_id: str) -> bytes:
    return f"function/{function}/{node_id}".encode()


def encode_heartbeat(hb: NodeHeartbeat) -> bytes:
    return codec.encode("NodeHeartbeat", {
        "node_id": hb.node_id, "host": hb.host, "pid": hb.pid, "version": hb.version,
        "started_at": hb.started_at, "heartbeat_at": hb.heartbeat_at,
        "interval_ms": hb.interval_ms, "functions": hb.functions, "labels": dict(hb.labels),
        "rss_bytes": hb.rss_bytes, "threads": hb.threads,
    })


def encode_status(st: FunctionStatus) -> bytes:
    return codec.encode("FunctionStatus", {
        "function": st.function, "node_id": st.node_id, "revision": st.revision,
        "state": st.state.value, "error": st.error, "partitions": list(st.partitions),
        "updated_at": st.updated_at, "errors": st.errors, "code_revision": st.code_revision,
    })


@dataclass(frozen=True, slots=True)
class StatusTable:
    nodes: dict[str, NodeHeartbeat] = field(default_factory=dict)
    functions: dict[tuple[str, str], FunctionStatus] = field(default_factory=dict)  # (function, node_id)

    def live_nodes(self, now_ms: int) -> dict[str, NodeHeartbeat]:
        return {n: hb for n, hb in self.nodes.items() if hb.alive(now_ms)}

    def of_function(self, name: str) -> dict[str, FunctionStatus]:
        return {node: st for (fn, node), st in self.functions.items() if fn == name}


def apply(table: StatusTable, key: bytes | None, value: bytes | None) -> StatusTable:
    """Fold one status record into the table; raise ``DecodeError`` if it can't be."""
    try:
        k = (key or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("status record key is not UTF-8") from None
    kind, _, rest = k.partition("/")
    if kind == "node" and rest:
        nodes = dict(table.nodes)
        if value is None:
            nodes.pop(rest, None)
        else:
            name, d = codec.decode(value)
            if name != "NodeHeartbeat":
                raise DecodeError(f"expected a NodeHeartbeat under key {k!r}, found a {name}")
            nodes[rest] = NodeHeartbeat(
                node_id=d["node_id"], host=d["host"], pid=d["pid"], version=d["version"],
                started_at=codec.millis(d["started_at"]), heartbeat_at=codec.millis(d["heartbeat_at"]),
                interval_ms=d["interval_ms"], functions=d["functions"], labels=d["labels"],
                rss_bytes=d["rss_bytes"], threads=d["threads"])
        return StatusTable(nodes, table.functions)
    if kind == "function" and "/" in rest:
        fn, _, node = rest.rpartition("/")
        functions = dict(table.functions)
        if value is None:
            functions.pop((fn, node), None)
        else:
            name, d = codec.decode(value)
            if name != "FunctionStatus":
                raise DecodeError(f"expected a FunctionStatus under key {k!r}, found a {name}")
            functions[(fn, node)] = FunctionStatus(
                function=d["function"], node_id=d["node_id"], revision=d["revision"],
                state=ObservedState(d["state"]), error=d["error"], partitions=tuple(d["partitions"]),
                updated_at=codec.millis(d["updated_at"]), errors=d["errors"],
                code_revision=d["code_revision"])
        return StatusTable(table.nodes, functions)
    raise DecodeError(f"unknown status key {k!r}")
