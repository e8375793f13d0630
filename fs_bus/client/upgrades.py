"""The client's upgrade calls: replace, rollback, history; shadows in ``fs_bus.client.shadows``.

Mixed into ``FsClient``. A replace is one function record written whole (new code
revision, same group, offsets, state generation and changelogs) plus its history
entry under ``history/<name>/<rev>``, written first; the nodes switch at a commit
point. The decisions are ``fs_bus.control.upgrade``'s; this is the I/O around them.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from fs_bus.artifacts import store as artifact_store
from fs_bus.clock import now_ms
from fs_bus.config.model import FunctionConfig
from fs_bus.control import upgrade
from fs_bus.control.history import revision_of
from fs_bus.control.records import ArtifactKind, ArtifactManifest, DesiredState, FunctionRecord
from fs_bus.control.shadow import shadow_name
from fs_bus.control.store import ControlState, forget_history, write_record, write_revision
from fs_bus.client.models import RevisionInfo
from fs_bus.errors import FsBusError, FunctionFailed, FunctionNotFound, RolledBack, UpgradeRefused
from fs_bus.status.records import FunctionStatus, ObservedState

if TYPE_CHECKING:
    from fs_bus.client.client import FsClient as _Base
else:
    _Base = object

# How long a client that saw its new revision FAILED waits for a node's auto-rollback record.
ROLLBACK_WAIT_S = 15.0


class Upgrades(_Base):
    """``replace=True``, ``rollback_function``, ``function_history``."""

    def rollback_function(self, name: str, revision: int | None = None, *, wait: bool = True,
                          timeout: float | None = None) -> bool:
        """Re-apply an earlier revision's artifact and config (default: the one before the current),
        as a new revision, the way a replace does. ``SQL: ROLLBACK FUNCTION name [TO REVISION n]``."""
        state = self._read_control()
        current = state.table.get(name)
        if current is None:
            raise FunctionNotFound(name)
        target = upgrade.rollback_target(state.history, current, revision)
        if target.artifact.sha256 not in upgrade.kept_artifacts(state.history, state.table.functions.values()):
            raise FsBusError(
                f"function {name!r}: revision {target.code_revision}'s artifact was collected (the newest "
                f"{upgrade.KEEP_REVISIONS} revisions keep theirs); CREATE OR REPLACE the function from its file")
        record = upgrade.replaced(
            current, config_yaml=target.config_yaml, artifact=target.artifact,
            code_revision=upgrade.next_code_revision(state.history, current),
            revision=state.max_revision.get(name, 0) + 1, now=now_ms(), by=self.user,
            reason=f"rollback to {target.code_revision}")
        self._write_revision(state, current, record)
        if wait:
            self._await_upgrade(record, timeout)
        return True

    def function_history(self, name: str) -> list[RevisionInfo]:
        """The function's code revisions, oldest first. ``SQL: SHOW FUNCTION HISTORY name``."""
        state = self._read_control()
        current = state.table.get(name)
        revisions = state.history.of(name)
        if current is None and not revisions:
            raise FunctionNotFound(name)
        live = current.code_revision if current is not None else None
        return [RevisionInfo(rev=r.code_revision, control_revision=r.control_revision, created_at=r.created_at,
                             created_by=r.created_by, artifact_sha256=r.artifact.sha256,
                             config_digest=r.config_digest, changes=r.changes, reason=r.reason,
                             current=r.code_revision == live)
                for _, r in sorted(revisions.items())]

    # --- internals ---

    def _replace(self, state: ControlState, config: FunctionConfig, text: str, artifact: bytes,
                 kind: ArtifactKind, wait: bool, timeout: float | None) -> bool:
        """CREATE OR REPLACE of an existing function: a new code revision in place."""
        name = config.name
        current = state.table.get(name)
        assert current is not None
        self._check_replace(state, current, config)
        manifest = self._signed(name, text, self._upload(artifact, kind, state))
        if upgrade.describe_changes(current, manifest.sha256, text) == "no change":
            return True  # the same code and config: nothing to switch
        record = upgrade.replaced(current, config_yaml=text, artifact=manifest,
                                  code_revision=upgrade.next_code_revision(state.history, current),
                                  revision=state.max_revision.get(name, 0) + 1, now=now_ms(), by=self.user)
        self._write_revision(state, current, record)
        if wait:
            self._await_upgrade(record, timeout)
        return True

    def _check_replace(self, state: ControlState, current: FunctionRecord, config: FunctionConfig) -> None:
        if current.shadow_of is not None:
            raise UpgradeRefused(f"function {current.name!r} is the shadow of {current.shadow_of!r}: PROMOTE "
                                 f"FUNCTION {current.shadow_of} or DROP SHADOW {current.shadow_of}")
        old = state.spec(current.name)
        if old is not None and old.config is not None:  # a record no node could run may be replaced by anything
            upgrade.check_replace(current.name, old.config, config)

    def _signed(self, name: str, text: str, manifest: ArtifactManifest) -> ArtifactManifest:
        # A signature covers one function's name and config, never another's.
        signature, signed_by = self._signer.sign(name, text, manifest) if self._signer else (None, None)
        return dataclasses.replace(manifest, signature=signature, signed_by=signed_by)

    def _write_revision(self, state: ControlState, previous: FunctionRecord | None, record: FunctionRecord,
                        reason: str | None = None) -> None:
        """The history entry first (a record whose revision has no history never exists), then the record;
        then the artifact that fell out of the kept revisions goes."""
        changes = upgrade.describe_changes(previous, record.artifact.sha256, record.config_yaml)
        rev = revision_of(record, changes, reason)
        write_revision(self._producer_(), self.topics.control, rev)
        write_record(self._producer_(), self.topics.control, record)
        history = dataclasses.replace(state.history, revisions={
            **state.history.revisions, record.name: {**state.history.of(record.name), rev.code_revision: rev}})
        functions = {**state.table.functions, record.name: record}
        kept = upgrade.kept_artifacts(history, functions.values())
        before = state.history.of(record.name)  # only those the window kept until now: older ones went already
        dropped = {before[r].artifact.sha256: before[r].artifact for r in sorted(before)[-upgrade.KEEP_REVISIONS - 1:]}
        if previous is not None:
            dropped[previous.artifact.sha256] = previous.artifact
        for sha, manifest in dropped.items():
            if sha not in kept:
                artifact_store.tombstone(self._producer_(), manifest)

    def _kept_manifests(self, state: ControlState) -> list[ArtifactManifest]:
        """The artifacts on the artifacts topic: the current records' and the kept revisions'."""
        kept = upgrade.kept_artifacts(state.history, state.table.functions.values())
        revisions = (r for h in state.history.revisions.values() for r in h.values())
        return [r.artifact for r in [*state.table.functions.values(), *revisions] if r.artifact.sha256 in kept]

    def _forget(self, state: ControlState, name: str) -> None:
        """DROP FUNCTION: its history keys, its kept revisions' artifacts and its shadow go too."""
        forget_history(self._producer_(), self.topics.control, name, sorted(state.history.of(name)))
        others = {n: r for n, r in state.table.functions.items() if n != name and r.shadow_of != name}
        history = dataclasses.replace(state.history, revisions={
            n: h for n, h in state.history.revisions.items() if n != name})
        kept = upgrade.kept_artifacts(history, others.values())
        current = state.table.get(name)
        gone = {r.artifact.sha256: r.artifact for r in state.history.of(name).values()}
        for sha, manifest in gone.items():
            if sha not in kept and (current is None or sha != current.artifact.sha256):  # DROP takes that one
                artifact_store.tombstone(self._producer_(), manifest)
        shadowed = state.table.get(shadow_name(name))
        if shadowed is not None and shadowed.shadow_of == name:
            self._drop_shadow_record(state, shadowed)

    def _await_upgrade(self, record: FunctionRecord, timeout: float | None) -> None:
        """Wait as for any record; a revision the nodes rolled back raises ``RolledBack``."""
        want = ObservedState.RUNNING if record.desired_state is DesiredState.RUNNING else ObservedState.STOPPED

        def done(st: FunctionStatus | None) -> bool:
            return st is not None and st.revision >= record.revision and st.state in (want, ObservedState.FAILED)
        try:
            self._await(record.name, done, want.value, timeout, record.revision)
        except FunctionFailed as failed:
            self._raise_if_rolled_back(record, ROLLBACK_WAIT_S)
            raise failed
        self._raise_if_rolled_back(record, 0)
        self._settle(record)

    def _settle(self, record: FunctionRecord) -> None:
        """Every live node runs the new revision: it is no longer one a failure rolls back (a node
        restarted later, or one that was down, may fail for reasons of its own). Same code and
        config, so nodes only acknowledge it."""
        current = self._read_control().table.get(record.name)
        if current is not None and current.revision == record.revision and current.upgrade_from is not None:
            write_record(self._producer_(), self.topics.control,
                         dataclasses.replace(current, upgrade_from=None, revision=current.revision + 1))

    def _raise_if_rolled_back(self, record: FunctionRecord, patience: float) -> None:
        deadline = time.monotonic() + patience
        while True:
            current = self._read_control().table.get(record.name)
            if (current is not None and current.revision > record.revision and current.reason
                    and current.updated_by == upgrade.AUTO_ROLLBACK_BY and current.updated_at == record.updated_at):
                raise RolledBack(record.name, record.code_revision, current.reason)
            if time.monotonic() >= deadline:
                return
            time.sleep(0.5)
