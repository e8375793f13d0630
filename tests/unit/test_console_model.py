"""The console's pure core: rates from counters, the history of revisions, the node view."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fs_bus.console.model import HISTORY_KEPT, Sample, Samples, counter_rate, fold_history, node_views
from fs_bus.control.records import ArtifactKind, ArtifactManifest, DesiredState, FunctionRecord, encode_function
from fs_bus.status.records import FunctionStatus, NodeHeartbeat, ObservedState, StatusTable


def test_a_steady_counter_gives_its_rate_per_second():
    samples = [(t * 1000, 50 * t) for t in range(20)]  # 50 records a second
    assert counter_rate(samples) == 50.0


def test_one_sample_or_none_gives_no_rate():
    assert counter_rate([]) is None
    assert counter_rate([(0, 10)]) is None


def test_only_the_last_window_counts():
    samples = [(0, 0), (1000, 1000), (20_000, 1000), (21_000, 1010)]  # a burst long ago, then 10/s
    assert counter_rate(samples, window_ms=10_000) == 10.0
    assert counter_rate(samples, window_ms=30_000) == 1010 / 21  # the burst is in this window


@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(-1000, 1000)), min_size=2, max_size=40))
def test_a_rate_is_never_negative_even_when_offsets_go_back(steps):
    t, v, samples = 0, 0, []
    for dt, dv in steps:
        t, v = t + dt, max(0, v + dv)  # START ... FROM moves a group's offsets back
        samples.append((t, v))
    rate = counter_rate(samples)
    assert rate is None or rate >= 0


@given(st.integers(1, 10_000), st.integers(2, 30), st.integers(100, 3000))
def test_a_counter_growing_evenly_gives_exactly_its_rate(per_tick, ticks, tick_ms):
    samples = [(i * tick_ms, i * per_tick) for i in range(ticks)]
    rate = counter_rate(samples, window_ms=10**9)
    assert abs(rate - per_tick * 1000 / tick_ms) < 1e-6


def test_samples_forget_what_is_older_than_their_span_and_draw_one_point_per_sample():
    s = Samples(kept_ms=10_000)
    for t in range(0, 30_000, 1000):
        s.add(Sample(t, t // 100, 0, 3))
    assert s.items[0].at_ms == 19_000
    assert s.rate("records_in") == 10.0
    assert len(s.rates("records_in")) == len(s.lags()) == len(s.items)
    assert s.lags()[-1] == 3


def record(name: str, revision: int, state: DesiredState = DesiredState.RUNNING) -> FunctionRecord:
    manifest = ArtifactManifest("ab" * 32, 10, ArtifactKind.WASM_COMPONENT, "ns.artifacts", ())
    return FunctionRecord(name, "processor", "name: f\n", manifest, state, revision, 1000 * revision, "alice")


def test_history_keeps_each_revision_then_the_drop_and_ignores_garbage():
    h: dict = {}
    h = fold_history(h, b"f", encode_function(record("f", 1)), 0, 1)
    h = fold_history(h, b"f", encode_function(record("f", 2, DesiredState.STOPPED)), 1, 2)
    h = fold_history(h, b"f", b"not avro", 2, 3)
    h = fold_history(h, b"f", None, 3, 4000)
    assert [(r.revision, r.desired, r.offset) for r in h["f"]] == [(1, "RUNNING", 0), (2, "STOPPED", 1),
                                                                   (2, "DROPPED", 3)]
    assert h["f"][0].updated_by == "alice" and h["f"][-1].updated_at == 4000


def test_history_keeps_the_newest_revisions_only():
    h: dict = {}
    for i in range(1, HISTORY_KEPT + 11):
        h = fold_history(h, b"f", encode_function(record("f", i)), i, i)
    assert len(h["f"]) == HISTORY_KEPT and h["f"][-1].revision == HISTORY_KEPT + 10


def test_a_node_shows_what_it_holds_and_dies_after_missed_heartbeats():
    hb = NodeHeartbeat("n1", "host", 7, "0.1.0", 0, 10_000, 1000, 2)
    table = StatusTable(
        nodes={"n1": hb},
        functions={("f", "n1"): FunctionStatus("f", "n1", 1, ObservedState.RUNNING, None, ("t:0", "t:1"), 0),
                   ("g", "n1"): FunctionStatus("g", "n1", 1, ObservedState.STOPPED, None, (), 0)})
    (view,) = node_views(table, now_ms=11_000)
    assert (view["alive"], view["instances"], view["partitions"], view["heartbeat_age_ms"]) == (True, 2, 2, 1000)
    assert view["functions"] == [{"name": "f", "state": "RUNNING", "partitions": ["t:0", "t:1"]},
                                 {"name": "g", "state": "STOPPED", "partitions": []}]
    assert node_views(table, now_ms=20_000)[0]["alive"] is False  # 3 missed beats, and over 3 s


def test_errors_per_second_is_the_growth_of_the_summed_node_counters():
    s = Samples()
    for i, errors in enumerate([0, 0, 4, 10, 10]):  # 10 errors over 4 s
        s.add(Sample(i * 1000, 0, 0, 0, errors))
    assert s.rate("errors") == 2.5
    assert s.rates("errors")[-1] == 2.5 and s.rates("errors")[0] == 0.0


def test_a_history_key_is_not_taken_for_a_function_named_like_it():
    from fs_bus.control.history import encode_revision, history_key, revision_of
    rev = revision_of(record("f", 1), "created")
    h = fold_history({}, history_key("f", 1), encode_revision(rev), 0, 1)
    assert h == {}


def test_a_functions_page_lists_its_code_revisions_newest_first_and_marks_the_live_one():
    from dataclasses import replace

    from fs_bus.console.model import function_detail
    from fs_bus.control.history import revision_of
    first = record("f", 1)
    second = replace(record("f", 2), code_revision=2, config_yaml="name: f\nparallelism: 1\n")
    revisions = {1: revision_of(first, "created"), 2: revision_of(second, "config: parallelism", "replace")}
    status = FunctionStatus("f", "n1", 2, ObservedState.RUNNING, None, ("t:0",), 5, code_revision=2)
    detail = function_detail(second, {}, {"n1": status}, {}, (), revisions)
    assert [(r["code_revision"], r["running"], r["changes"]) for r in detail["revisions"]] == \
        [(2, True, "config: parallelism"), (1, False, "created")]
    assert detail["revisions"][0]["config_digest"] != detail["revisions"][1]["config_digest"]
    assert detail["node_reports"][0]["code_revision"] == 2


def test_a_node_shows_its_labels_memory_and_threads_and_unknown_ones_as_none():
    hb = NodeHeartbeat("n1", "host", 7, "0.1.0", 0, 10_000, 1000, 0, labels={"zone": "a", "gpu": ""},
                       rss_bytes=64 << 20, threads=23)
    old = NodeHeartbeat("n0", "host", 8, "0.0.9", 0, 10_000, 1000, 0)  # a node from before labels and memory
    views = {v["node_id"]: v for v in node_views(StatusTable(nodes={"n1": hb, "n0": old}), now_ms=11_000)}
    assert (views["n1"]["labels"], views["n1"]["rss_bytes"], views["n1"]["threads"]) == \
        ({"gpu": "", "zone": "a"}, 64 << 20, 23)
    assert (views["n0"]["labels"], views["n0"]["rss_bytes"], views["n0"]["threads"]) == ({}, None, None)
