"""The commit point's order, without a broker: checkpoints, changelogs written, everything
acknowledged, local state committed, input offsets committed; and nothing committed past a
step that failed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, strategies as st

from fs_bus.node.commit import commit_point
from fs_bus.node.worker import PartitionWorker
from fs_bus.runtime.base import Emitted
from fs_bus.state.changelog import Change, encode_key


@dataclass
class Journal:
    """Every step of a commit point, in the order it happened."""

    steps: list[tuple] = field(default_factory=list)


@dataclass
class Processor:
    journal: Journal
    label: str

    def take_checkpoint(self, checkpoint_id: int) -> Emitted:
        self.journal.steps.append(("checkpoint", self.label, checkpoint_id))
        return Emitted([(0, f"checkpoint {self.label}".encode())])


@dataclass
class Changelog:
    """A partition's changelog side: what the last checkpoint sealed, and the confirmation."""

    journal: Journal
    label: str
    changes: list[Change]

    def sealed(self) -> list[Change]:
        return list(self.changes)

    def confirm(self, next_offset: int, now_ms: int) -> None:
        self.journal.steps.append(("confirm", self.label, next_offset, now_ms))


@dataclass
class Outputs:
    """The instance's outputs as the commit point sees them; ``fail`` makes acknowledge raise."""

    journal: Journal
    fail: bool = False

    def emit(self, emitted, where, key=None) -> None:
        if emitted is not None and emitted.records:
            self.journal.steps.append(("emit", where))

    def produce(self, topic, partition, key, value, headers=None) -> None:
        self.journal.steps.append(("produce", topic, partition, key, value))

    def acknowledge(self, offsets) -> None:
        self.journal.steps.append(("acknowledge", tuple(offsets)))
        if self.fail:
            raise RuntimeError("the brokers did not acknowledge")

    def commit_offsets(self, offsets) -> None:
        self.journal.steps.append(("commit_offsets", tuple(offsets)))


# A worker: (processed since the last commit point?, its next offset or None, its changelog's changes or None)
workers_spec = st.lists(
    st.tuples(st.booleans(), st.one_of(st.none(), st.integers(0, 10**6)),
              st.one_of(st.none(), st.lists(st.binary(max_size=3), max_size=3))),
    max_size=5)


def build(journal: Journal, spec) -> list[PartitionWorker]:
    workers = []
    for n, (dirty, next_offset, changes) in enumerate(spec):
        changelog = None
        if changes is not None:
            changelog = Changelog(journal, f"in:{n}", [Change("s", k, b"v") for k in changes])
        w = PartitionWorker("in", n, 0, Processor(journal, f"in:{n}"), changelog=changelog, changelog_next=100 + n)
        w.dirty, w.next_offset = dirty, next_offset
        workers.append(w)
    return workers


def kinds(journal: Journal) -> list[str]:
    return [s[0] for s in journal.steps]


@given(workers_spec)
def test_each_step_comes_after_the_one_before_it(spec) -> None:
    journal = Journal()
    workers = build(journal, spec)
    commit_point(workers, Outputs(journal), {"in": "cl"}, lambda: 42)
    order = ["checkpoint", "emit", "produce", "acknowledge", "confirm", "commit_offsets"]
    seen = kinds(journal)
    # checkpoint/emit interleave (each checkpoint's output goes out at once); the rest is strictly ordered
    ranks = [0 if k in ("checkpoint", "emit") else order.index(k) for k in seen]
    assert ranks == sorted(ranks), seen
    assert seen.count("acknowledge") == 1 and seen[-1] == "commit_offsets"


@given(workers_spec)
def test_what_is_committed_is_what_ran(spec) -> None:
    journal = Journal()
    workers = build(journal, spec)
    commit_point(workers, Outputs(journal), {"in": "cl"}, lambda: 42)
    offsets = tuple(("in", n, o) for n, (_, o, _) in enumerate(spec) if o is not None)
    assert ("acknowledge", offsets) in journal.steps and journal.steps[-1] == ("commit_offsets", offsets)
    # only workers that processed records are checkpointed, and only those with a changelog write to it
    assert [s[1] for s in journal.steps if s[0] == "checkpoint"] == [f"in:{n}" for n, s in enumerate(spec) if s[0]]
    written = [s[1:] for s in journal.steps if s[0] == "produce"]
    assert written == [("cl", n, encode_key("s", k), b"v") for n, (dirty, _, changes) in enumerate(spec)
                       if dirty and changes is not None for k in changes]
    # local state is committed with the changelog's next offset: what it was plus what was written
    confirms = [s[1:] for s in journal.steps if s[0] == "confirm"]
    assert confirms == [(f"in:{n}", 100 + n + len(changes), 42) for n, (dirty, _, changes) in enumerate(spec)
                        if dirty and changes is not None]
    assert not any(w.sealed or w.dirty for w in workers)


@given(workers_spec)
def test_nothing_is_committed_when_outputs_are_not_acknowledged(spec) -> None:
    journal = Journal()
    workers = build(journal, spec)
    with pytest.raises(RuntimeError):
        commit_point(workers, Outputs(journal, fail=True), {"in": "cl"}, lambda: 42)
    assert "confirm" not in kinds(journal) and "commit_offsets" not in kinds(journal)
    # sealed changes stay sealed: they are confirmed only once written and acknowledged
    assert all(w.sealed for w, (dirty, _, changes) in zip(workers, spec) if dirty and changes is not None)
