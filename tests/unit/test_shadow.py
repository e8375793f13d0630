"""Shadows, the pure parts: the shadow's config, the source header, and the diff's counts."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, strategies as st

from fs_bus.api.emitted import Emitted
from fs_bus.config.validate import parse_config
from fs_bus.control import shadow

CONFIG = """\
name: counter
type: python
input-groups:
  - inputs:
      - {input-type: kafka, bootstrap_servers: "k:9092", topic: events, group_id: events-counter}
outputs:
  - {output-type: kafka, bootstrap_servers: "k:9092", topic: counts}
  - {output-type: kafka, bootstrap_servers: "k:9092", topic: totals}
errors.policy: dead-letter
errors.deadletterqueue.topic.name: failed
init_config: {a: "1"}
"""


def test_a_shadow_config_has_its_own_name_group_and_outputs_and_the_same_rest():
    cfg = parse_config(shadow.shadow_config(CONFIG, "counter", 3))
    assert cfg.name == "counter.shadow"
    assert cfg.group_id == "events-counter.shadow.3"
    assert [o.topic for o in cfg.outputs] == ["counts.shadow.3", "totals.shadow.3"]
    assert cfg.dead_letter_topic == "failed.shadow.3"
    assert [i.topic for i in cfg.inputs] == ["events"] and cfg.init_config == {"a": "1"}


@given(st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True), st.integers(0, 2**31), st.integers(0, 2**62))
def test_a_source_header_parses_back(topic, partition, offset):
    assert shadow.parse_source(shadow.source_header(topic, partition, offset)) == (topic, partition, offset)


def test_anything_else_is_no_source():
    for junk in (None, b"", b"t/1", b"t/x/1", b"/1/2", "t/1/-2"):
        assert shadow.parse_source(junk) is None


def test_outputs_carry_the_source_and_keep_their_key():
    emitted = Emitted([(0, b"a"), (1, b"b", b"k2", [("h", b"v")]), (0, b"c", None, None)], [(0, 5)])
    tagged = shadow.with_source(emitted, "in", 2, 40, b"key")
    src = ("fs-bus.source", b"in/2/40")
    assert tagged.records == [(0, b"a", b"key", [src]), (1, b"b", b"k2", [("h", b"v"), src]), (0, b"c", None, [src])]
    assert tagged.watermarks == [(0, 5)]
    assert shadow.with_source(None, "in", 0, 0, None) is None


answers = st.dictionaries(st.tuples(st.just("in"), st.integers(0, 1), st.integers(0, 30)),
                          st.lists(st.sampled_from([b"x", b"y"]), min_size=1, max_size=2).map(
                              lambda vs: tuple((0, None, v) for v in vs)), max_size=25)


@given(answers, answers, st.integers(0, 30))
def test_every_input_record_after_the_start_is_counted_once(live, shadowed, start):
    d = shadow.diff("f", 1, 2, live, shadowed, {("in", 0): start, ("in", 1): start})
    sources = {s for s in set(live) | set(shadowed) if s[2] >= start}
    assert d.identical + d.different + d.only_live + d.only_shadow == len(sources)
    assert d.identical == sum(1 for s in sources if live.get(s) is not None and live.get(s) == shadowed.get(s))
    assert d.only_shadow == len(sources - set(live)) and d.only_live == len(sources - set(shadowed))
    assert len(d.examples) == min(d.different, shadow.EXAMPLES)


def test_a_hand_counted_diff():
    live = {("in", 0, n): ((0, None, b"%d" % n),) for n in range(10)}
    shadowed = {s: v for s, v in live.items() if s[2] % 5}  # no answer to 0 and 5
    shadowed[("in", 0, 1)] = ((0, None, b"changed"),)
    shadowed[("in", 0, 11)] = ((0, None, b"new"),)
    d = shadow.diff("f", 1, 2, live, shadowed, {("in", 0): 1})
    assert Counter(identical=d.identical, different=d.different, only_live=d.only_live,
                   only_shadow=d.only_shadow) == Counter(identical=7, different=1, only_live=1, only_shadow=1)
    assert d.examples == [{"source": "in/0/1", "offset": 1, "old": ["1"], "new": ["changed"]}]


def test_the_shadow_start_round_trips():
    assert shadow.parse_start(["a.b:0:12", "x:1:0"]) == {("a.b", 0): 12, ("x", 1): 0}
