"""Safe upgrades, the pure parts: what a replace may change, what changed, revisions, rollbacks,
the history's fold (compaction keeps it), and the kept artifacts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from fs_bus.config.validate import parse_config
from fs_bus.control import history as revisions
from fs_bus.control import upgrade
from fs_bus.control.history import History, encode_revision, history_key, revision_of
from fs_bus.control.records import ArtifactManifest, FunctionRecord
from fs_bus.errors import DecodeError, FsBusError, UpgradeRefused
from tests.unit.test_codec import SAMPLE, records


def config(group: str = "g", topic: str = "in", out: str = "out", type_: str = "python", extra: str = "") -> str:
    return f"""\
name: f
type: {type_}
input-groups:
  - inputs:
      - {{input-type: kafka, bootstrap_servers: "k:9092", topic: {topic}, group_id: {group}}}
outputs:
  - {{output-type: kafka, bootstrap_servers: "k:9092", topic: {out}}}
{extra}"""


def record(code_revision: int = 1, sha: str = "a", cfg: str | None = None, **kw) -> FunctionRecord:
    return replace(SAMPLE, name="f", config_yaml=cfg or config(), code_revision=code_revision,
                   artifact=replace(SAMPLE.artifact, sha256=sha * 64), **kw)


def history_of(*recs: FunctionRecord) -> History:
    h = History()
    for r in recs:
        h = revisions.apply(h, history_key(r.name, r.code_revision), encode_revision(revision_of(r, "x")))
    return h


# --- what a replace may change -------------------------------------------------------------------------------------


def test_outputs_init_config_and_code_may_change():
    upgrade.check_replace("f", parse_config(config()), parse_config(config(out="elsewhere", extra="init_config: {a: 1}\n")))


@pytest.mark.parametrize("new, says", [
    (config(group="g2"), "keep group_id as it is"),
    (config(topic="other"), "START FUNCTION f FROM EARLIEST"),
    (config(type_="processor"), "DROP FUNCTION f and CREATE it again"),
])
def test_what_cannot_change_in_place_is_refused_with_what_to_do(new, says):
    with pytest.raises(UpgradeRefused, match=says):
        upgrade.check_replace("f", parse_config(config()), parse_config(new))


def test_changed_keys_are_leaf_paths():
    assert upgrade.changed_keys(config(), config(out="o2", extra="init_config: {a: 1}\n")) == [
        "init_config.a", "outputs[0].topic"]
    assert upgrade.changed_keys(config(), config()) == []
    assert upgrade.changed_keys("a: [", "b: 1") == ["config"]


def test_describe_changes():
    old = record(sha="a")
    assert upgrade.describe_changes(None, "b" * 64, config()) == "created"
    assert upgrade.describe_changes(old, "a" * 64, old.config_yaml) == "no change"
    assert upgrade.describe_changes(old, "b" * 64, config(out="o2")) == "artifact aaaaaaaa -> bbbbbbbb; config: outputs[0].topic"


# --- revisions and rollbacks ---------------------------------------------------------------------------------------


def test_the_next_code_revision_is_past_every_one_seen_shadows_included():
    live = record(2)
    assert upgrade.next_code_revision(History(), live) == 3
    assert upgrade.next_code_revision(history_of(record(1), record(2), record(5)), live) == 6


def test_a_replace_keeps_group_state_generation_and_says_what_it_replaced():
    cur = record(3, state_generation=4, source_headers=True)
    new = upgrade.replaced(cur, config_yaml=config(out="x"), artifact=cur.artifact, code_revision=4, revision=9,
                           now=5, by="me")
    assert (new.code_revision, new.upgrade_from, new.revision, new.state_generation, new.source_headers) == (
        4, 3, 9, 4, True)
    stopped = new.with_state(new.desired_state, updated_at=6, updated_by="me")
    assert stopped.upgrade_from is None  # a START or STOP is never rolled back


def test_rollback_targets():
    h = history_of(record(1, "a"), record(2, "b"), record(3, "c"))
    cur = record(3, "c", upgrade_from=2)
    assert upgrade.rollback_target(h, cur, None).code_revision == 2
    assert upgrade.rollback_target(h, cur, 1).artifact.sha256 == "a" * 64
    assert upgrade.rollback_target(h, record(3, "c"), None).code_revision == 2  # no upgrade_from: the one before
    with pytest.raises(FsBusError, match="already runs revision 3"):
        upgrade.rollback_target(h, cur, 3)
    with pytest.raises(FsBusError, match="no revision 7 in its history; known: 1, 2, 3"):
        upgrade.rollback_target(h, cur, 7)
    with pytest.raises(FsBusError, match="no earlier revision"):
        upgrade.rollback_target(history_of(record(1)), record(1), None)


def test_an_auto_rollback_is_the_same_bytes_on_every_node_and_never_loops():
    h = history_of(record(1, "a"), record(2, "b"))
    failed = record(2, "b", upgrade_from=1, revision=7)
    previous = h.get("f", 1)
    one = upgrade.auto_rollback(failed, previous, "trap in fs-init (retry 1 in 1 s)", h)
    two = upgrade.auto_rollback(failed, previous, "trap in fs-init (retry 3 in 4 s)\nwasm backtrace...", h)
    from fs_bus.control.records import encode_function
    assert encode_function(one) == encode_function(two)
    assert (one.revision, one.code_revision, one.artifact.sha256, one.upgrade_from) == (8, 3, "a" * 64, None)
    assert one.reason == "auto-rollback to 1: revision 2 failed: trap in fs-init"
    assert not upgrade.should_roll_back(one, failed=True, ever_ran=False)
    assert upgrade.should_roll_back(failed, failed=True, ever_ran=False)
    assert not upgrade.should_roll_back(failed, failed=True, ever_ran=True)
    assert not upgrade.should_roll_back(failed, failed=False, ever_ran=False)


def test_the_artifacts_of_the_newest_five_revisions_are_kept():
    recs = [record(n, "0123456789"[n]) for n in range(1, 9)]
    kept = upgrade.kept_artifacts(history_of(*recs), [recs[1]])
    assert kept == {c * 64 for c in "2" "45678"}


# --- the history's fold ----------------------------------------------------------------------------------------------


entries = st.tuples(st.sampled_from(["f", "g"]), st.integers(1, 6), st.booleans(), records)


def _log(picks):
    log = []
    for name, rev, tomb, r in picks:
        rev_ = revision_of(replace(r, name=name, code_revision=rev), "changes")
        log.append((history_key(name, rev), None if tomb else encode_revision(rev_)))
    return log


def _fold(log):
    h = History()
    for k, v in log:
        h = revisions.apply(h, k, v)
    return {n: dict(r) for n, r in h.revisions.items() if r}


@given(st.lists(entries, max_size=30))
def test_a_compacted_history_folds_to_the_same_revisions(picks):
    log = _log(picks)
    newest = {}
    for i, (k, v) in enumerate(log):
        newest[k] = (i, v)
    compacted = [(k, v) for _, k, v in sorted((i, k, v) for k, (i, v) in newest.items())]
    assert _fold(compacted) == _fold(log)


def test_history_keys_are_checked():
    rev = encode_revision(revision_of(record(2), "x"))
    with pytest.raises(DecodeError, match="does not match"):
        revisions.apply(History(), history_key("f", 3), rev)
    with pytest.raises(DecodeError, match="history/<function>/<code revision>"):
        revisions.apply(History(), b"history/f/two", rev)
    with pytest.raises(DecodeError, match="expected a FunctionRevision"):
        from fs_bus.control.records import encode_function
        revisions.apply(History(), history_key("f", 1), encode_function(record()))
    assert revisions.is_history_key(b"history/f/1") and not revisions.is_history_key(b"f")


def test_a_history_record_round_trips():
    rev = revision_of(record(4, "d", reason="rollback to 1"), "artifact a -> d")
    got = revisions.apply(History(), history_key("f", 4), encode_revision(rev)).get("f", 4)
    assert got == rev and len(got.config_digest) == 64
    assert isinstance(got.artifact, ArtifactManifest) and got.reason == "rollback to 1"
