"""Safe upgrades, decided: what a replace may change, what changed, which revision comes next,
what a rollback writes. Pure: records and configs in, records and messages out.

A replace keeps the function's consumer group, its committed offsets, its state
generation and its changelogs: the node closes the old instance at a commit point
and opens the new code exactly where it stopped (``fs_bus.node.reconcile`` sees a
new spec and restarts). That is only sound while the new revision reads the same
records in the same group with the same kind of code, so those are refused here,
with what to do instead.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Iterable, Mapping

import yaml

from fs_bus.config.model import FunctionConfig
from fs_bus.control.history import FunctionRevision, History
from fs_bus.control.records import ArtifactManifest, DesiredState, FunctionRecord
from fs_bus.errors import FsBusError, UpgradeRefused

# The artifacts of a function's newest revisions stay on the artifacts topic for rollbacks.
KEEP_REVISIONS = 5
AUTO_ROLLBACK_BY = "fs-bus (auto-rollback)"
_RETRY_SUFFIX = re.compile(r" \(retry \d+ in \d+ s\)$")
REASON_MAX = 300


def check_replace(name: str, old: FunctionConfig, new: FunctionConfig) -> None:
    """Refuse what a replace cannot change in place, saying what to do instead."""
    if new.type is not old.type:
        raise UpgradeRefused(
            f"function {name!r}: a replace cannot change type ({old.type.value} -> {new.type.value}): the state and "
            f"offsets belong to the old kind of code; DROP FUNCTION {name} and CREATE it again, or create the new "
            "one under another name")
    if new.group_id != old.group_id:
        raise UpgradeRefused(
            f"function {name!r}: a replace keeps the consumer group ({old.group_id!r}), and this config names "
            f"{new.group_id!r}; keep group_id as it is, or create a function under another name to start a new group")
    before, after = _inputs(old), _inputs(new)
    if before != after:
        raise UpgradeRefused(
            f"function {name!r}: a replace cannot change its inputs ({', '.join(before)} -> {', '.join(after)}): its "
            f"offsets and state belong to those topics; create a function under another name for other inputs, or "
            f"replace it and then reprocess with START FUNCTION {name} FROM EARLIEST (state starts empty)")


def _inputs(config: FunctionConfig) -> list[str]:
    return sorted(f"{i.bootstrap_servers}/{i.topic}" + ("" if i.partition is None else f":{i.partition}")
                  for i in config.inputs)


def changed_keys(old_yaml: str, new_yaml: str) -> list[str]:
    """The config's leaf keys (``outputs[0].topic``, ``init_config.x``) whose value differs."""
    try:
        old, new = yaml.safe_load(old_yaml), yaml.safe_load(new_yaml)
    except yaml.YAMLError:
        return ["config"] if old_yaml != new_yaml else []
    a, b = dict(_flatten(old)), dict(_flatten(new))
    return sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))


_MISSING = object()


def _flatten(value: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}[{i}]")
    else:
        yield path, value


def describe_changes(old: FunctionRecord | FunctionRevision | None, artifact_sha256: str, config_yaml: str) -> str:
    """What a new revision changes, in a line: ``artifact 1a2b3c4d -> 5e6f7a8b; config: init_config.x``."""
    if old is None:
        return "created"
    parts = []
    if old.artifact.sha256 != artifact_sha256:
        parts.append(f"artifact {old.artifact.sha256[:8]} -> {artifact_sha256[:8]}")
    keys = changed_keys(old.config_yaml, config_yaml)
    if keys:
        shown = ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")
        parts.append(f"config: {shown}")
    return "; ".join(parts) or "no change"


def next_code_revision(history: History, current: FunctionRecord) -> int:
    """One more than any code revision the function ever had (shadows included)."""
    return max([current.code_revision, *history.of(current.name)]) + 1


def replaced(current: FunctionRecord, *, config_yaml: str, artifact: ArtifactManifest, code_revision: int,
             revision: int, now: int, by: str, reason: str | None = None, upgrade: bool = True) -> FunctionRecord:
    """The record that replaces ``current``'s code and config; group, offsets, state generation stay.
    ``upgrade``: a failure of the new code before it ever ran rolls it back (not for a rollback's target)."""
    return replace(current, config_yaml=config_yaml, artifact=artifact, code_revision=code_revision,
                   revision=revision, updated_at=now, updated_by=by, reason=reason,
                   upgrade_from=current.code_revision if upgrade else None)


def rollback_target(history: History, current: FunctionRecord, revision: int | None) -> FunctionRevision:
    """The revision ``ROLLBACK FUNCTION name [TO REVISION n]`` re-applies: ``n``, or the one that ran
    before the current one."""
    name = current.name
    kept = sorted(history.of(name))
    if revision is None:
        earlier = [r for r in kept if r < current.code_revision and r != current.code_revision]
        revision = current.upgrade_from or (earlier[-1] if earlier else None)
        if revision is None:
            raise FsBusError(f"function {name!r} runs revision {current.code_revision} and has no earlier revision "
                             "to roll back to (SHOW FUNCTION HISTORY shows its revisions)")
    if revision == current.code_revision:
        raise FsBusError(f"function {name!r} already runs revision {revision}")
    target = history.get(name, revision)
    if target is None:
        raise FsBusError(f"function {name!r} has no revision {revision} in its history; known: "
                         f"{', '.join(map(str, kept)) or 'none'}")
    return target


def short_reason(error: str) -> str:
    """The first line of an instance's error, without the retry count: the same on every node."""
    line = (error or "failed").strip().splitlines()[0] if (error or "").strip() else "failed"
    line = _RETRY_SUFFIX.sub("", line)
    return line if len(line) <= REASON_MAX else line[:REASON_MAX - 3] + "..."


def should_roll_back(record: FunctionRecord, failed: bool, ever_ran: bool) -> bool:
    """A node rolls back a replace whose new code failed before it ever ran on that node."""
    return failed and not ever_ran and record.upgrade_from is not None and record.shadow_of is None


def auto_rollback(failed: FunctionRecord, previous: FunctionRevision, error: str,
                  history: History) -> FunctionRecord:
    """What a node writes when ``failed`` could not start: the previous revision again, as a new one.

    Derived from the failed record, the history and the error alone (no clock, no node id), so
    nodes that write it at the same time write the same bytes. ``upgrade_from`` is left empty:
    if the old code fails too, nothing rolls back in a loop.
    """
    return FunctionRecord(
        name=failed.name, task_type=previous.task_type, config_yaml=previous.config_yaml,
        artifact=previous.artifact, desired_state=failed.desired_state, revision=failed.revision + 1,
        updated_at=failed.updated_at, updated_by=AUTO_ROLLBACK_BY, state_generation=failed.state_generation,
        code_revision=next_code_revision(history, failed), upgrade_from=None,
        reason=f"auto-rollback to {previous.code_revision}: revision {failed.code_revision} failed: "
               f"{short_reason(error)}",
        shadow_of=failed.shadow_of, source_headers=failed.source_headers, shadow_from=failed.shadow_from)


def kept_artifacts(history: History, current: Iterable[FunctionRecord], keep: int = KEEP_REVISIONS) -> set[str]:
    """The artifacts that must stay: every current record's, and each function's newest ``keep`` revisions'."""
    kept = {r.artifact.sha256 for r in current}
    for revisions in history.revisions.values():
        for rev in sorted(revisions)[-keep:]:
            kept.add(revisions[rev].artifact.sha256)
    return kept


def wants_running(record: FunctionRecord) -> bool:
    return record.desired_state is DesiredState.RUNNING
