"""Placement: every node computes the same choice; joins and leaves move only what must move."""

from hypothesis import given, settings, strategies as st

from fs_bus.placement import Placement, matches, place, score

node_ids = st.lists(st.text("abcdefgh0123456789-", min_size=1, max_size=6), min_size=1, max_size=12, unique=True)
fn_names = st.text("abcdefghijklmnop._-0123456789", min_size=1, max_size=12)


def plain(ids):
    return {n: {} for n in ids}


def test_score_is_stable_across_processes():
    # blake2b of "f\0n1", not Python's salted hash(): a literal keeps every machine honest.
    assert score("f", "n1") == 0xd942ece30c207050
    assert score("f", "n1") != score("f", "n2")


@given(fn_names, node_ids, st.integers(1, 5))
def test_the_choice_ignores_the_order_nodes_are_seen_in(name, ids, p):
    forward = place(name, plain(ids), parallelism=p)
    backward = place(name, plain(list(reversed(ids))), parallelism=p)
    assert forward == backward
    assert len(forward.nodes) == min(p, len(ids)) and len(set(forward.nodes)) == len(forward.nodes)


@given(fn_names, node_ids, st.integers(1, 4), st.text("xyz", min_size=1, max_size=3))
def test_a_node_joining_takes_over_or_moves_nothing(name, ids, p, newcomer):
    if newcomer in ids:
        return
    before = set(place(name, plain(ids), parallelism=p).nodes)
    after = set(place(name, plain(ids + [newcomer]), parallelism=p).nodes)
    # Only the newcomer enters; at most one old node leaves (the one it displaced).
    assert after - before <= {newcomer}
    assert len(before - after) <= (1 if newcomer in after else 0)


@given(fn_names, node_ids, st.integers(1, 4), st.data())
def test_a_node_leaving_moves_only_its_own(name, ids, p, data):
    gone = data.draw(st.sampled_from(ids))
    before = set(place(name, plain(ids), parallelism=p).nodes)
    after = set(place(name, plain([n for n in ids if n != gone]), parallelism=p).nodes)
    if gone not in before:
        assert after == before
    else:
        assert before - after == {gone} and len(after - before) <= 1


@given(fn_names, st.dictionaries(st.sampled_from(["n1", "n2", "n3", "n4"]),
                                 st.dictionaries(st.sampled_from(["zone", "gpu"]), st.sampled_from(["a", "b", ""]))),
       st.dictionaries(st.sampled_from(["zone", "gpu"]), st.sampled_from(["a", "b", ""])), st.integers(1, 4))
def test_labels_constrain_the_choice(name, nodes, required, p):
    pl = place(name, nodes, parallelism=p, labels=required)
    eligible = {n for n, labels in nodes.items() if matches(labels, required)}
    assert set(pl.nodes) <= eligible
    assert len(pl.nodes) == min(p, len(eligible))
    assert (pl.reason is None) == (len(eligible) >= p)


def test_an_empty_label_value_asks_only_for_the_key():
    assert matches({"gpu": "", "zone": "a"}, {"gpu": ""})
    assert matches({"gpu": "a100"}, {"gpu": ""})
    assert not matches({"zone": "a"}, {"gpu": ""})
    assert not matches({"zone": "a"}, {"zone": "b"})


def test_parallelism_defaults_to_the_input_partitions_capped_by_the_nodes():
    nodes = plain(["n1", "n2", "n3"])
    assert len(place("f", nodes, partitions=2).nodes) == 2
    assert len(place("f", nodes, partitions=8).nodes) == 3
    assert len(place("f", nodes, partitions=None).nodes) == 1
    assert place("f", nodes, partitions=8).reason == "3 of 8 wanted: only 3 live nodes"


def test_an_unplaceable_function_says_why():
    pl = place("f", {"n1": {"zone": "a"}}, labels={"zone": "b", "gpu": ""})
    assert pl == Placement((), 1, "no live node with gpu, zone=b")
    assert pl.summary() == "unplaced: no live node with gpu, zone=b"
    assert place("f", {}).summary() == "unplaced: no live node"
    assert place("f", plain(["n2", "n1"]), parallelism=2).summary() == "n1,n2 (2/2)"


@settings(max_examples=20)
@given(st.integers(3, 6))
def test_many_functions_spread_evenly(n_nodes):
    nodes = plain([f"node-{i}" for i in range(n_nodes)])
    counts = dict.fromkeys(nodes, 0)
    for i in range(600):
        for n in place(f"fn-{i}", nodes, parallelism=1).nodes:
            counts[n] += 1
    mean = 600 / n_nodes
    assert max(counts.values()) <= 1.3 * mean and min(counts.values()) >= 0.7 * mean
