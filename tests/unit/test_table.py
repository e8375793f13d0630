"""The desired-state table: folding a log, compaction equivalence, bad records change nothing."""

from hypothesis import given, strategies as st

from fs_bus.control import table as desired
from fs_bus.control.records import DesiredState, encode_function
from fs_bus.control.table import DesiredTable
from fs_bus.errors import DecodeError
from tests.unit.test_codec import SAMPLE, records

NAMES = ["a", "b", "c", "d"]

# A log entry: (key, value); value None is a tombstone.
entries = st.one_of(
    st.tuples(st.sampled_from(NAMES), records).map(lambda t: (t[0], _rename(t[1], t[0]))),
    st.sampled_from(NAMES).map(lambda n: (n, None)),
)


def _rename(record, name):
    from dataclasses import replace
    return replace(record, name=name)


def fold(log):
    t = DesiredTable()
    for key, rec in log:
        t = desired.apply(t, key.encode(), None if rec is None else encode_function(rec))
    return t


def compact(log, drop_tombstones):
    """What the log cleaner leaves: the newest entry per key (tombstones eventually gone)."""
    newest = {}
    for i, (key, rec) in enumerate(log):
        newest[key] = (i, rec)
    kept = sorted((i, key, rec) for key, (i, rec) in newest.items())
    return [(k, r) for _, k, r in kept if not (drop_tombstones and r is None)]


@given(st.lists(entries, max_size=40), st.booleans())
def test_replaying_a_compacted_log_gives_the_live_table(log, drop_tombstones):
    assert fold(compact(log, drop_tombstones)).functions == fold(log).functions


@given(st.lists(entries, max_size=20), st.binary(max_size=50))
def test_garbage_changes_nothing(log, garbage):
    before = fold(log)
    for key in NAMES:
        try:
            after = desired.apply(before, key.encode(), garbage)
        except DecodeError:
            after = before
        assert after.functions == before.functions


def test_key_must_match_the_name_inside():
    rec = _rename(SAMPLE, "a")
    try:
        desired.apply(DesiredTable(), b"b", encode_function(rec))
    except DecodeError as exc:
        assert "does not match" in str(exc)
    else:
        raise AssertionError("a record under the wrong key was applied")


def test_tombstone_of_unknown_function_is_harmless():
    assert len(desired.apply(DesiredTable(), b"ghost", None)) == 0


def test_newest_record_wins():
    from dataclasses import replace
    rec = _rename(SAMPLE, "a")
    t = desired.apply(DesiredTable(), b"a", encode_function(replace(rec, desired_state=DesiredState.RUNNING)))
    t = desired.apply(t, b"a", encode_function(replace(rec, desired_state=DesiredState.STOPPED)))
    assert t.get("a").desired_state is DesiredState.STOPPED


@given(st.lists(entries, max_size=40), st.binary(max_size=30))
def test_folding_in_place_gives_the_table_apply_gives(log, garbage):
    """The node and the client fold in place (no copy per record); same table as ``apply``,
    and a record that does not decode leaves the table as it was."""
    functions: dict = {}
    for key, rec in log:
        name = desired.fold(functions, key.encode(), None if rec is None else encode_function(rec))
        assert name == key
        before = dict(functions)
        try:
            desired.fold(functions, key.encode(), garbage)
        except DecodeError:
            assert functions == before
    assert functions == fold(log).functions
