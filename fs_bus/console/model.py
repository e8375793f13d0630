"""What the console shows, computed from what Kafka holds. Pure: no I/O, no clocks.

Throughput is measured from Kafka alone, so the console works wherever the CLI does
(no node's metrics port need be reachable): *records in* is the sum of the function
group's committed offsets over its input partitions — what it has processed — and
*records out* the sum of its output topics' end offsets, and *errors* the sum of the
error counters its nodes publish in their status records. A rate is the growth of
such a counter over the last seconds of samples.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from fs_bus.client.client import _function_info  # the observed-state rule SHOW FUNCTIONS uses
from fs_bus.control.history import FunctionRevision, is_history_key
from fs_bus.control.records import FunctionRecord, decode_function
from fs_bus.errors import DecodeError
from fs_bus.kafka.groups import PartitionLag
from fs_bus.status.records import FunctionStatus, NodeHeartbeat, StatusTable

HISTORY_KEPT = 50  # revisions per function remembered by the page
SAMPLES_KEPT_MS = 10 * 60 * 1000  # the sparklines' span
RATE_WINDOW_MS = 10_000


def counter_rate(samples: Sequence[tuple[int, int]], window_ms: int = RATE_WINDOW_MS) -> float | None:
    """Per-second growth of a counter over the samples ``(at_ms, value)`` in the last
    ``window_ms`` before the newest; None with fewer than two samples in it.

    Only growth counts: a counter that goes back (``START ... FROM`` moves a group's
    offsets back) counts from where it restarted, so a rate is never negative.
    """
    if len(samples) < 2:
        return None
    newest = samples[-1][0]
    recent = [s for s in samples if s[0] >= newest - window_ms]
    if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
        return None
    grown = sum(max(0, b[1] - a[1]) for a, b in zip(recent, recent[1:]))
    return grown * 1000.0 / (recent[-1][0] - recent[0][0])


@dataclass(frozen=True, slots=True)
class Sample:
    at_ms: int
    records_in: int  # the group's committed offsets, summed over its input partitions
    records_out: int  # its output topics' end offsets, summed
    lag: int | None  # total over its input partitions; None when it could not be read
    errors: int = 0  # the errors its nodes' status records count, summed


@dataclass
class Samples:
    """One function's recent samples: the rates and the sparklines come from here."""

    kept_ms: int = SAMPLES_KEPT_MS
    items: deque[Sample] = field(default_factory=deque)

    def add(self, sample: Sample) -> None:
        self.items.append(sample)
        while self.items and self.items[0].at_ms < sample.at_ms - self.kept_ms:
            self.items.popleft()

    def rate(self, attr: str) -> float | None:
        return counter_rate([(s.at_ms, getattr(s, attr)) for s in self.items])

    def rates(self, attr: str, points: int = 60) -> list[float]:
        """The rate at each of the last ``points`` samples, oldest first (for a sparkline)."""
        pairs = [(s.at_ms, getattr(s, attr)) for s in self.items]
        out = []
        for i in range(max(0, len(pairs) - points), len(pairs)):
            r = counter_rate(pairs[:i + 1])
            out.append(round(r, 2) if r is not None else 0.0)
        return out

    def lags(self, points: int = 60) -> list[int]:
        return [s.lag or 0 for s in list(self.items)[-points:]]


@dataclass(frozen=True, slots=True)
class Revision:
    """One record of a function on the control topic, as the history shows it."""

    revision: int
    desired: str  # RUNNING, STOPPED, or DROPPED for a tombstone
    updated_at: int
    updated_by: str
    offset: int
    artifact_sha256: str = ""


def fold_history(history: Mapping[str, tuple[Revision, ...]], key: bytes | None, value: bytes | None,
                 offset: int, timestamp_ms: int) -> dict[str, tuple[Revision, ...]]:
    """Add one control record to the revisions seen per function (newest last).

    The topic is compacted, so what a console started late sees is what the cleaner
    has left (at least the newest record per function); it keeps what it saw live. A
    record that is not a function record changes nothing, as on a node.
    """
    if key is None or is_history_key(key):
        return dict(history)
    try:
        name = key.decode("utf-8")
    except UnicodeDecodeError:
        return dict(history)
    if value is None:
        previous = history.get(name, ())
        last = previous[-1].revision if previous else 0
        entry = Revision(last, "DROPPED", timestamp_ms, "", offset)
    else:
        try:
            rec = decode_function(value)
        except DecodeError:
            return dict(history)
        entry = Revision(rec.revision, rec.desired_state.value, rec.updated_at, rec.updated_by, offset,
                         rec.artifact.sha256)
    out = dict(history)
    out[name] = (*history.get(name, ()), entry)[-HISTORY_KEPT:]
    return out


def function_view(rec: FunctionRecord, statuses: Mapping[str, FunctionStatus], live: Mapping[str, NodeHeartbeat],
                  lags: Sequence[PartitionLag] | None, samples: Samples) -> dict[str, Any]:
    """One row of the functions page (and the head of a function's page), as JSON."""
    info = _function_info(rec, dict(statuses), live)
    owners = {label: node for node, labels in info.partitions.items() for label in labels}
    partitions = [{"topic": pl.topic, "partition": pl.partition, "node": owners.get(f"{pl.topic}:{pl.partition}"),
                   "committed": pl.committed, "end": pl.end, "lag": pl.lag} for pl in (lags or [])]
    latest = samples.items[-1] if samples.items else None
    return {
        "name": rec.name, "type": rec.task_type, "desired": info.desired, "status": info.status,
        "revision": rec.revision, "code_revision": rec.code_revision, "nodes": {n: list(p) for n, p in info.partitions.items()},
        "error": info.error, "lag": None if lags is None else sum(pl.lag for pl in lags),
        "partitions": partitions,
        "records_in": latest.records_in if latest else None,
        "records_out": latest.records_out if latest else None,
        "in_per_s": _round(samples.rate("records_in")), "out_per_s": _round(samples.rate("records_out")),
        "errors": latest.errors if latest else None,
        "errors_per_s": _round(samples.rate("errors")),
        "spark": {"in_per_s": samples.rates("records_in"), "lag": samples.lags(),
                  "errors_per_s": samples.rates("errors")},
        "updated_at": rec.updated_at, "updated_by": rec.updated_by,
    }


def function_detail(rec: FunctionRecord, view: Mapping[str, Any], statuses: Mapping[str, FunctionStatus],
                    live: Mapping[str, NodeHeartbeat], history: Iterable[Revision],
                    code_revisions: Mapping[int, FunctionRevision] | None = None) -> dict[str, Any]:
    """A function's page: its row, plus config, artifact, each node's report, its code revisions
    (the ``history/<name>/<rev>`` records, which outlive compaction) and its control records."""
    return {
        **view,
        "config_yaml": rec.config_yaml, "state_generation": rec.state_generation,
        "artifact": {"sha256": rec.artifact.sha256, "size": rec.artifact.size, "kind": rec.artifact.kind.value,
                     "signed_by": rec.artifact.signed_by},
        "node_reports": [{"node": n, "state": st.state.value, "revision": st.revision,
                          "code_revision": st.code_revision,
                          "partitions": list(st.partitions), "error": st.error, "errors": st.errors,
                          "alive": n in live,
                          "updated_at": st.updated_at} for n, st in sorted(statuses.items())],
        "history": [{"revision": h.revision, "desired": h.desired, "updated_at": h.updated_at,
                     "updated_by": h.updated_by, "offset": h.offset, "artifact_sha256": h.artifact_sha256}
                    for h in history],
        "revisions": [{"code_revision": r.code_revision, "created_at": r.created_at, "created_by": r.created_by,
                       "artifact_sha256": r.artifact.sha256, "config_digest": r.config_digest,
                       "changes": r.changes, "reason": r.reason, "running": r.code_revision == rec.code_revision}
                      for _, r in sorted((code_revisions or {}).items(), reverse=True)],
    }


def node_views(table: StatusTable, now_ms: int) -> list[dict[str, Any]]:
    """The nodes page: every node with a heartbeat on the status topic, and what it holds."""
    live = table.live_nodes(now_ms)
    held: dict[str, dict[str, list[str]]] = {}
    for (fn, node), st in sorted(table.functions.items()):
        held.setdefault(node, {})[fn] = [st.state.value, *st.partitions]
    out = []
    for hb in sorted(table.nodes.values(), key=lambda h: h.node_id):
        functions = held.get(hb.node_id, {})
        out.append({
            "node_id": hb.node_id, "host": hb.host, "pid": hb.pid, "version": hb.version,
            "alive": hb.node_id in live, "started_at": hb.started_at, "heartbeat_at": hb.heartbeat_at,
            "heartbeat_age_ms": max(0, now_ms - hb.heartbeat_at), "interval_ms": hb.interval_ms,
            "instances": hb.functions, "labels": dict(sorted(hb.labels.items())),
            "rss_bytes": hb.rss_bytes or None, "threads": hb.threads or None,
            "functions": [{"name": fn, "state": v[0], "partitions": v[1:]} for fn, v in functions.items()],
            "partitions": sum(len(v) - 1 for v in functions.values()),
        })
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)
