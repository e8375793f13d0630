"""The reconcile diff: the right verb for each difference, and nothing left after acting."""

from dataclasses import replace

from hypothesis import given, strategies as st

from fs_bus.control.records import DesiredState
from fs_bus.node.reconcile import Observed, Verb, reconcile
from fs_bus.status.records import ObservedState
from tests.unit.test_codec import SAMPLE

RUN = replace(SAMPLE, desired_state=DesiredState.RUNNING, revision=1)


def verbs(desired, observed):
    return [(a.verb, a.name) for a in reconcile(desired, observed)]


def test_new_running_function_starts():
    assert verbs({"f": RUN}, {}) == [(Verb.START, "f")]


def test_new_stopped_function_is_only_acknowledged():
    rec = replace(RUN, desired_state=DesiredState.STOPPED)
    assert verbs({"f": rec}, {}) == [(Verb.ACKNOWLEDGE, "f")]


def test_stop_request_stops_a_running_instance():
    rec = replace(RUN, desired_state=DesiredState.STOPPED, revision=2)
    assert verbs({"f": rec}, {"f": Observed(RUN, ObservedState.RUNNING)}) == [(Verb.STOP, "f")]


def test_new_code_restarts_a_running_instance():
    rec = replace(RUN, config_yaml="changed", revision=2)
    assert verbs({"f": rec}, {"f": Observed(RUN, ObservedState.RUNNING)}) == [(Verb.RESTART, "f")]


def test_dropped_function_is_removed():
    assert verbs({}, {"f": Observed(RUN, ObservedState.RUNNING)}) == [(Verb.REMOVE, "f")]


def test_failed_function_waits_for_a_new_record():
    assert verbs({"f": RUN}, {"f": Observed(RUN, ObservedState.FAILED)}) == []
    assert verbs({"f": replace(RUN, revision=2)}, {"f": Observed(RUN, ObservedState.FAILED)}) == [(Verb.START, "f")]


def _outcome(verb, rec, before):
    if verb is Verb.REMOVE:
        return None
    if verb in (Verb.START, Verb.RESTART):
        return Observed(rec, ObservedState.RUNNING)
    if verb is Verb.STOP:
        return Observed(rec, ObservedState.STOPPED)
    return Observed(rec, before.state if before and before.active else ObservedState.STOPPED)


states = st.sampled_from(list(ObservedState))
recs = st.builds(lambda r, s, c: replace(RUN, revision=r, desired_state=s, config_yaml=c),
                 st.integers(1, 3), st.sampled_from(list(DesiredState)), st.sampled_from(["x", "y"]))
names = st.sampled_from(["a", "b", "c"])


@given(st.dictionaries(names, recs), st.dictionaries(names, st.tuples(recs, states)))
def test_acting_on_the_diff_converges(desired, observed_raw):
    observed = {n: Observed(r, s) for n, (r, s) in observed_raw.items()}
    already = {n for n, o in observed.items() if desired.get(n) == o.record}  # acted on before: left alone
    for action in reconcile(desired, observed):
        after = _outcome(action.verb, action.record, observed.get(action.name))
        if after is None:
            observed.pop(action.name)
        else:
            observed[action.name] = after
    assert reconcile(desired, observed) == []
    for name, rec in desired.items():
        if name in already:
            continue
        if rec.desired_state is DesiredState.RUNNING:
            assert observed[name].active  # RUNNING, or STARTING: an instance is coming up
        else:
            assert observed[name].state is ObservedState.STOPPED
    assert set(observed) == set(desired)


def test_a_function_placed_elsewhere_is_let_go_and_one_never_run_here_is_left_alone():
    observed = {"f": Observed(RUN, ObservedState.RUNNING)}
    assert verbs({"f": RUN, "g": RUN}, observed) == [(Verb.START, "g")]
    assert [(a.verb, a.name) for a in reconcile({"f": RUN, "g": RUN}, observed, here={"g"})] == \
        [(Verb.UNPLACE, "f"), (Verb.START, "g")]
    assert reconcile({"f": RUN}, {}, here=set()) == []


@given(st.dictionaries(names, recs), st.dictionaries(names, st.tuples(recs, states)), st.sets(names))
def test_acting_on_the_diff_converges_to_what_is_placed_here(desired, observed_raw, here):
    observed = {n: Observed(r, s) for n, (r, s) in observed_raw.items()}
    for action in reconcile(desired, observed, here):
        after = None if action.verb is Verb.UNPLACE else _outcome(action.verb, action.record,
                                                                   observed.get(action.name))
        if after is None:
            observed.pop(action.name)
        else:
            observed[action.name] = after
    assert reconcile(desired, observed, here) == []
    assert set(observed) == set(desired) & set(here)  # placed elsewhere: nothing kept, nothing reported
