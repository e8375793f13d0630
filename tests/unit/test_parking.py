"""Parking idle instances: when an instance may park, where it parks at, and what wakes it. Pure."""

from __future__ import annotations

from hypothesis import given, strategies as st

from fs_bus.config.validate import parse_config
from fs_bus.node.parking import Berth, park_baselines, wake_reason

parts = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3))


@st.composite
def situations(draw):
    """Every input partition's (low, high), and the held ones' positions (None: not known)."""
    marks = {}
    for part in draw(st.sets(parts, min_size=1, max_size=6)):
        low = draw(st.integers(0, 50))
        marks[part] = (low, low + draw(st.integers(0, 50)))
    held = draw(st.sets(st.sampled_from(sorted(marks)), max_size=len(marks)))
    positions = {}
    for part in held:
        low, high = marks[part]
        positions[part] = draw(st.none() | st.integers(low, high))
    return positions, marks


def caught_up(positions, marks) -> bool:
    return all((marks[p][0] == marks[p][1]) if pos is None else pos >= marks[p][1] for p, pos in positions.items())


@given(situations())
def test_an_instance_parks_only_with_nothing_left_to_read(situation):
    positions, marks = situation
    baselines = park_baselines(positions, marks)
    assert (baselines is not None) == caught_up(positions, marks)


@given(situations())
def test_it_parks_at_its_positions_and_at_the_ends_of_what_others_held(situation):
    positions, marks = situation
    baselines = park_baselines(positions, marks)
    if baselines is None:
        return
    assert set(baselines) == set(marks)
    for part, (_low, high) in marks.items():
        assert baselines[part] == (high if positions.get(part) is None else positions[part])


@given(situations(), st.data())
def test_only_a_new_record_wakes_it(situation, data):
    positions, marks = situation
    baselines = park_baselines(positions, marks)
    if baselines is None:
        return
    highs = {part: high for part, (_low, high) in marks.items()}
    assert wake_reason(baselines, highs, {}) is None  # nothing new: it stays parked
    assert wake_reason(baselines, {}, {}) is None  # no answer this time: ask again, stay parked
    part = data.draw(st.sampled_from(sorted(highs)))
    grown = {**highs, part: highs[part] + data.draw(st.integers(1, 10))}
    assert f"{part[0]}[{part[1]}]" in wake_reason(baselines, grown, {})


def test_a_held_partition_whose_marks_were_not_read_keeps_it_running():
    assert park_baselines({("a", 0): 5}, {("a", 1): (0, 3)}) is None


def test_a_partition_gone_or_moved_back_wakes_it():
    baselines = {("a", 0): 5}
    assert "gone" in wake_reason(baselines, {}, {("a", 0): "gone"})
    assert "went back" in wake_reason(baselines, {("a", 0): 2}, {})


def test_parking_is_due_after_idle_park_ms_and_never_without_a_node_probe():
    lot = object()
    assert Berth("f", lot, 1000, None).due(1.0)  # type: ignore[arg-type]
    assert not Berth("f", lot, 1000, None).due(0.9)  # type: ignore[arg-type]
    assert not Berth("f", lot, 0, None).due(3600)  # type: ignore[arg-type]  # 0: never
    assert not Berth("f", None, 1000, None).due(3600)  # type: ignore[arg-type]


def test_idle_park_ms_is_a_processor_runtime_key_with_a_minute_by_default():
    text = """\
name: f
type: processor
input-groups: [{inputs: [{bootstrap_servers: "k:9092", topic: t, group_id: g}]}]
outputs: [{bootstrap_servers: "k:9092", topic: o}]
"""
    assert parse_config(text).processor_runtime.idle_park_ms == 60_000
    assert parse_config(text + "processor-runtime: {idle-park-ms: 0}\n").processor_runtime.idle_park_ms == 0
