"""Shadow revisions from the client: start one, diff it against the live revision, promote or drop it.

Mixed into ``FsClient``. Starting a shadow of ``f`` (``CREATE OR REPLACE ... 'mode'='shadow'``):

1. the live function's outputs start carrying ``fs-bus.source`` (its record is rewritten
   with ``source_headers``: its nodes switch at a commit point, as for a replace);
2. the live group's committed offsets are read and the live changelogs copied into the
   shadow's, so the shadow starts with the live state at those offsets (exact when the
   live function is idle meanwhile; records in flight while the copy runs may be counted
   by the copy and again by the shadow);
3. the shadow's group gets those offsets, and ``f.shadow`` is written (its own group,
   changelogs and ``<output>.shadow.<rev>`` outputs); its revision enters ``f``'s history.

The pure parts are ``fs_bus.control.shadow``'s.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING

from fs_bus.clock import now_ms
from fs_bus.config.model import FunctionConfig
from fs_bus.config.validate import parse_config
from fs_bus.control import shadow, upgrade
from fs_bus.control.history import revision_of
from fs_bus.control.records import ArtifactKind, DesiredState, FunctionRecord
from fs_bus.control.spec import FunctionSpec
from fs_bus.control.store import ControlState, write_record, write_revision, write_tombstone
from fs_bus.errors import FsBusError, FunctionNotFound, UpgradeRefused
from fs_bus.kafka import clients, groups
from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.topics import ensure_changelog_topics, ensure_data_topics, partition_counts
from fs_bus.state.changelog import DELETE_RETENTION_MS
from fs_bus.status.records import ObservedState

if TYPE_CHECKING:
    from fs_bus.client.client import FsClient as _Base
else:
    _Base = object


class Shadows(_Base):
    """``shadow=True``, ``function_diff``, ``promote_function``, ``drop_shadow``."""

    def function_diff(self, name: str, timeout: float | None = None) -> shadow.ShadowDiff:
        """How the live and the shadow revision answered the same input records: identical,
        different (the first few, with offset, old and new output), or only one of them.
        ``SQL: SHOW FUNCTION DIFF name``."""
        state = self._read_control()
        live, shadowed = self._live_and_shadow(state, name)
        budget = self.default_timeout if timeout is None else timeout
        answers = [self._answers(FunctionSpec(rec).valid, budget) for rec in (live, shadowed)]
        return shadow.diff(name, live.code_revision, shadowed.code_revision, answers[0], answers[1],
                           shadow.parse_start(shadowed.shadow_from))

    def promote_function(self, name: str, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Make the shadow's revision the live one: a replace with its code and config, then the
        shadow is dropped. ``SQL: PROMOTE FUNCTION name``."""
        state = self._read_control()
        live, shadowed = self._live_and_shadow(state, name)
        target = state.history.get(name, shadowed.code_revision)
        if target is None:
            raise FsBusError(f"function {name!r}: the shadow's revision {shadowed.code_revision} is not in the "
                             "history; DROP SHADOW and start it again")
        record = dataclasses.replace(
            upgrade.replaced(live, config_yaml=target.config_yaml, artifact=target.artifact,
                             code_revision=shadowed.code_revision, revision=state.max_revision.get(name, 0) + 1,
                             now=now_ms(), by=self.user, reason="promoted shadow"),
            source_headers=False)
        self._write_revision(state, live, record)
        self._drop_shadow_record(state, shadowed)
        if wait:
            self._await_upgrade(record, timeout)
        return True

    def drop_shadow(self, name: str, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Discard the shadow: its record and changelogs go (its output topics stay, for a look);
        the live outputs stop carrying ``fs-bus.source``. ``SQL: DROP SHADOW name``."""
        state = self._read_control()
        live = state.table.get(name)
        if live is not None and live.source_headers and shadow.shadow_name(name) not in state.table:
            shadowed = None  # a shadow start that failed half-way: only the header to turn off
        else:
            live, shadowed = self._live_and_shadow(state, name)
            self._drop_shadow_record(state, shadowed)
        assert live is not None
        record = dataclasses.replace(live, source_headers=False, revision=state.max_revision.get(name, 0) + 1,
                                     updated_at=now_ms(), updated_by=self.user, upgrade_from=None)
        write_record(self._producer_(), self.topics.control, record)
        if wait:
            self._await_state(record, ObservedState(record.desired_state.value), timeout)
        return True

    # --- internals ---

    def _live_and_shadow(self, state: ControlState, name: str) -> tuple[FunctionRecord, FunctionRecord]:
        live = state.table.get(name)
        if live is None:
            raise FunctionNotFound(name)
        shadowed = state.table.get(shadow.shadow_name(name))
        if shadowed is None or shadowed.shadow_of != name:
            raise FsBusError(f"function {name!r} has no shadow; start one with CREATE OR REPLACE FUNCTION WITH "
                             "(..., 'mode'='shadow')")
        return live, shadowed

    def _drop_shadow_record(self, state: ControlState, shadowed: FunctionRecord) -> None:
        write_tombstone(self._producer_(), self.topics.control, shadowed.name)
        spec = state.spec(shadowed.name)
        if spec is not None:
            self._delete_changelogs(spec, shadowed.state_generation)

    def _start_shadow(self, state: ControlState, config: FunctionConfig, text: str, artifact: bytes,
                      kind: ArtifactKind, wait: bool, timeout: float | None) -> bool:
        name = config.name
        live = state.table.get(name)
        if live is None:
            raise FunctionNotFound(name)
        self._check_replace(state, live, config)
        if shadow.shadow_name(name) in state.table:
            raise UpgradeRefused(f"function {name!r} has a shadow already: SHOW FUNCTION DIFF {name}, then PROMOTE "
                                 f"FUNCTION {name} or DROP SHADOW {name}")
        rev = upgrade.next_code_revision(state.history, live)
        manifest = self._upload(artifact, kind, state)
        planned = upgrade.replaced(live, config_yaml=text, artifact=self._signed(name, text, manifest),
                                   code_revision=rev, revision=live.revision, now=now_ms(), by=self.user,
                                   reason="shadow")
        changes = upgrade.describe_changes(live, manifest.sha256, text)
        write_revision(self._producer_(), self.topics.control, revision_of(planned, changes))
        if not live.source_headers:  # the live outputs say which input they answer, from a commit point on
            live = dataclasses.replace(live, source_headers=True, revision=state.max_revision.get(name, 0) + 1,
                                       updated_at=now_ms(), updated_by=self.user, upgrade_from=None)
            write_record(self._producer_(), self.topics.control, live)
            self._await_state(live, ObservedState(live.desired_state.value), timeout)
        shadow_text = shadow.shadow_config(text, name, rev)
        shadow_config = parse_config(shadow_text)
        record = FunctionRecord(
            name=shadow_config.name, task_type=config.type.value, config_yaml=shadow_text,
            artifact=self._signed(shadow_config.name, shadow_text, manifest), desired_state=DesiredState.RUNNING,
            revision=state.max_revision.get(shadow_config.name, 0) + 1, updated_at=now_ms(), updated_by=self.user,
            code_revision=rev, reason="shadow", shadow_of=name, source_headers=True)
        start = self._seed_shadow(state.spec(name), FunctionSpec(record))
        record = dataclasses.replace(record, shadow_from=tuple(f"{t}:{p}:{o}" for (t, p), o in sorted(start.items())))
        write_record(self._producer_(), self.topics.control, record)
        if wait:
            self._await_state(record, ObservedState.RUNNING, timeout)
        return True

    def _seed_shadow(self, live: FunctionSpec | None, shadowed: FunctionSpec) -> dict[tuple[str, int], int]:
        """The live group's committed offsets, given to the shadow's group with a copy of the live state."""
        assert live is not None
        settings = self.settings.for_servers(live.input_servers)
        admin = clients.admin(settings)
        start = {(pl.topic, pl.partition): pl.committed for pl in groups.lag(admin, live.valid.group_id,
                                                                              live.input_topics)
                 if pl.committed is not None}
        ensure_data_topics(clients.admin(self.settings.for_servers(shadowed.valid.outputs[0].bootstrap_servers)),
                           sorted({o.topic for o in shadowed.valid.outputs}))
        counts = partition_counts(admin, live.input_topics)
        sources = live.changelog_topics(self.namespace)
        targets = shadowed.changelog_topics(self.namespace)
        ensure_changelog_topics(admin, {targets[t]: n for t, n in counts.items()}, DELETE_RETENTION_MS)
        existing = partition_counts(admin, list(sources.values()))
        producer = clients.producer(settings, "client-shadow", **{"enable.idempotence": False})
        for topic, source in sources.items():
            if source in existing:
                _copy(settings, source, targets[topic], producer)
        groups.reset(admin, shadowed.valid.group_id, start)
        return start

    def _answers(self, config: FunctionConfig, budget: float) -> dict[shadow.Source, shadow.Answer]:
        """Every output record that carries ``fs-bus.source``, by the input record it answers."""
        found: dict[shadow.Source, list] = defaultdict(list)
        for index, out in enumerate(config.outputs):
            reader = TopicReader(clients.changelog_reader(self.settings.for_servers(out.bootstrap_servers)), out.topic)
            try:
                def take(msg, index=index) -> None:
                    for key, value in msg.headers() or ():
                        if key == shadow.SOURCE_HEADER and (source := shadow.parse_source(value)) is not None:
                            found[source].append((index, msg.key(), msg.value()))
                reader.read_to_end(take, budget)
            finally:
                reader.close()
        return {s: tuple(v) for s, v in found.items()}


def _copy(settings, source: str, target: str, producer) -> None:
    """Every committed record of ``source``, partition by partition, into ``target``."""
    reader = TopicReader(clients.changelog_reader(settings), source)
    try:
        reader.read_to_end(lambda m: producer.produce(target, m.value(), m.key(), m.partition()), 60.0)
    finally:
        reader.close()
    if producer.flush(60) != 0:
        raise FsBusError(f"copying {source} into {target}: not every record was acknowledged within 60 s")
