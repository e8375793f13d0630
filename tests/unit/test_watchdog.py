"""The progress watchdog's decisions (fs_bus.node.watchdog), its progress feed and its shell, without Kafka."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from fs_bus.config import parse_config
from fs_bus.errors import InvalidConfig, Stalled
from fs_bus.node.progress import Progress
from fs_bus.node.stall_watch import StallWatch
from fs_bus.node.watchdog import STALL_WINDOW_S, STALLS_TO_FAIL, Sample, Verdict, Watch, judge
from fs_bus.status.records import ObservedState

TIMEOUT = 30.0
P0 = ("in:0",)

# One step of an instance's life, one sample a second apart: (made progress, has work, cluster answers).
steps = st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), max_size=300)


def drive(plan, timeout: float = TIMEOUT, interval: float = 1.0):
    """Run the watchdog as its shell does (probe when asked to), over ``plan``; the verdicts."""
    watch, progress_at, verdicts = Watch(), 0.0, []
    for i, (progressed, busy, answers) in enumerate(plan):
        now = (i + 1) * interval
        if progressed:
            progress_at = now
        sample = Sample(now, P0 if busy else (), progress_at)
        d = judge(watch, sample, timeout)
        if d.verdict is Verdict.PROBE:
            d = judge(watch, Sample(now, sample.behind, progress_at, answers), timeout)
        if d.verdict in (Verdict.RESTART, Verdict.FAIL):
            progress_at = now  # the instance reopens from its last commit
        verdicts.append((now, d))
        watch = d.watch
    return verdicts


@given(steps)
def test_the_watchdog_off_never_acts(plan):
    assert all(d.verdict is Verdict.OK for _, d in drive(plan, timeout=0))


@given(steps)
def test_an_instance_with_nothing_to_do_is_never_stalled(plan):
    idle = [(p, False, a) for p, _, a in plan]
    assert all(d.verdict is Verdict.OK for _, d in drive(idle))


@given(steps)
def test_a_cluster_that_does_not_answer_is_an_outage_not_a_stall(plan):
    down = [(p, b, False) for p, b, _ in plan]
    assert all(d.verdict in (Verdict.OK, Verdict.PROBE) for _, d in drive(down))


@given(st.lists(st.booleans(), max_size=300))
def test_progress_more_often_than_the_timeout_is_never_a_stall(gaps):
    # progress at least every 29 samples (1 s apart), with work all along
    plan, since = [], 0
    for g in gaps:
        since = 0 if g or since == 28 else since + 1
        plan.append((since == 0, True, True))
    assert all(d.verdict is Verdict.OK for _, d in drive(plan))


@given(st.integers(0, 100), st.integers(31, 200))
def test_work_without_progress_for_the_timeout_restarts_with_partitions_and_duration(before, quiet):
    plan = [(True, True, True)] * before + [(False, True, True)] * quiet
    acted = [(now, d) for now, d in drive(plan) if d.verdict is not Verdict.OK]
    assert acted, "a stall of more than the timeout went unnoticed"
    now, first = acted[0]
    assert first.verdict is Verdict.RESTART
    assert first.stalled_s == pytest.approx(TIMEOUT)  # not a sample later than due
    assert first.status == f"stalled: restarted (partitions in:0, stalled {TIMEOUT:.0f} s)"


@given(steps)
def test_a_stall_always_had_work_and_no_progress_for_the_timeout(plan):
    verdicts = drive(plan)
    for i, (now, d) in enumerate(verdicts):
        if d.verdict in (Verdict.RESTART, Verdict.FAIL):
            window = plan[max(0, i - int(TIMEOUT) + 1): i + 1]
            assert len(window) == TIMEOUT and all(busy and not p for p, busy, _ in window), window
            assert plan[i][2], "restarted while the cluster did not answer"


def test_the_third_stall_within_ten_minutes_fails_the_function_with_the_reason():
    stuck = [(False, True, True)] * 95  # three stalls of 30 s, back to back
    acted = [d for _, d in drive(stuck) if d.verdict is not Verdict.OK]
    assert [d.verdict for d in acted] == [Verdict.RESTART, Verdict.RESTART, Verdict.FAIL]
    assert [d.stalled_s for d in acted] == [TIMEOUT] * 3
    assert acted[-1].status.startswith(f"stalled {STALLS_TO_FAIL} times in 10 min: no progress for 30 s on "
                                       "partitions in:0")


def test_stalls_further_apart_than_the_window_never_fail():
    # a stall, then progress for 10 minutes, over and over
    plan = ([(False, True, True)] * 31 + [(True, True, True)] * int(STALL_WINDOW_S)) * 4
    verdicts = [d.verdict for _, d in drive(plan) if d.verdict is not Verdict.OK]
    assert verdicts == [Verdict.RESTART] * 4


def test_the_clock_starts_again_when_the_cluster_answers_again():
    # 100 s of work and no progress while the cluster is away, then it answers
    plan = [(False, True, False)] * 100 + [(False, True, True)] * 100
    acted = [(now, d) for now, d in drive(plan) if d.verdict is Verdict.RESTART]
    first_answer = min(now for now, d in drive(plan) if now > 100 and d.verdict is Verdict.OK
                       and d.watch.quiet_since == now and d.watch.down_at is None)
    assert acted and acted[0][0] - first_answer == TIMEOUT  # a whole timeout once it answers


def test_progress_after_an_outage_leaves_nothing_of_it_behind():
    # an outage, progress, then a real stall: restarted one timeout after the last progress
    plan = [(False, True, False)] * 60 + [(True, True, True)] * 10 + [(False, True, True)] * 40
    acted = [now for now, d in drive(plan) if d.verdict is Verdict.RESTART]
    assert acted == [70 + TIMEOUT]


def test_progress_feeds_samples_and_a_request_is_raised_where_the_instance_checks():
    clock = [100.0]
    p = Progress(lambda: clock[0])
    p.lagging(["in:1"])
    p.processed("in:0")
    clock[0] = 110.0
    assert p.sample() == Sample(110.0, ("in:0", "in:1"), 100.0)
    p.committed()
    p.forget(["in:1"])
    assert p.sample().behind == () and p.sample().progress_at == 110.0
    p.check()  # nothing asked
    d = judge(Watch(quiet_since=120.0), Sample(200.0, ("in:0",), 150.0, True), 30.0)
    p.request(d)
    with pytest.raises(Stalled, match=r"stalled: restarted \(partitions in:0, stalled 50 s\)") as raised:
        p.check()
    assert not raised.value.fail
    p.reset()
    p.check()


class _Instance:
    def __init__(self, timeout_ms: int, servers: str = "broker:9092"):
        self.name = "f"
        self.config = parse_config(CONFIG.format(servers=servers, timeout=timeout_ms))
        self.clock = [0.0]
        self.progress = Progress(lambda: self.clock[0])
        self.state = ObservedState.RUNNING


CONFIG = """\
name: f
type: processor
input-groups: [{{inputs: [{{input-type: kafka, bootstrap_servers: "{servers}", topic: in, group_id: g}}]}}]
outputs: [{{output-type: kafka, bootstrap_servers: "{servers}", topic: out}}]
processor-runtime: {{stall-timeout-ms: {timeout}}}
"""


def test_the_shell_probes_the_cluster_before_it_restarts_and_leaves_an_outage_alone():
    inst, down = _Instance(2000), [True]
    probed = []

    def probe(settings, timeout):
        probed.append(settings.bootstrap_servers)
        if down[0]:
            from fs_bus.errors import KafkaUnavailable
            raise KafkaUnavailable("no")

    from fs_bus.kafka.settings import KafkaSettings
    watch = StallWatch(KafkaSettings("broker:9092"), lambda: [inst], probe=probe)
    inst.progress.lagging(["in:0"])
    for t in range(1, 6):
        inst.clock[0] = float(t)
        watch.tick()
    assert probed and not inst.progress.asked  # the cluster did not answer: an outage
    down[0] = False
    for t in range(6, 17):
        inst.clock[0] = float(t)
        watch.tick()
    assert not inst.progress.asked  # it answers again: the timeout, and the consumer's session timeout (10 s)
    for t in range(17, 22):
        inst.clock[0] = float(t)
        watch.tick()
    assert inst.progress.asked
    with pytest.raises(Stalled, match="stalled: restarted"):
        inst.progress.check()


def test_stall_timeout_is_validated_and_defaults_to_30_s():
    assert parse_config(CONFIG.format(servers="b:1", timeout=0)).processor_runtime.stall_timeout_ms == 0
    assert parse_config(CONFIG.format(servers="b:1", timeout=1000)).processor_runtime.stall_timeout_ms == 1000
    plain = CONFIG.format(servers="b:1", timeout=1).replace("processor-runtime: {stall-timeout-ms: 1}\n", "")
    assert parse_config(plain).processor_runtime.stall_timeout_ms == 30_000
    with pytest.raises(InvalidConfig, match=r"processor-runtime.stall-timeout-ms: must be 0 \(no watchdog\) or at "
                                            r"least 1000 ms, not 999"):
        parse_config(CONFIG.format(servers="b:1", timeout=999))
    with pytest.raises(InvalidConfig, match="processor-runtime.stall-timeout-ms: must be a non-negative integer"):
        parse_config(CONFIG.format(servers="b:1", timeout=-5))


def test_after_an_outage_the_clients_get_their_recovery_time_on_top_until_progress():
    # 100 s away, then it answers: restarted only after the timeout plus the recovery time ...
    away = [(False, True, False)] * 100
    plan = away + [(False, True, True)] * 200
    restarts = [now for now, d in drive_recovering(plan, recover=20.0) if d.verdict is Verdict.RESTART]
    answered = [now for now, d in drive_recovering(plan, recover=20.0) if d.watch.back_at == now]
    assert answered and restarts[0] - answered[0] == TIMEOUT + 20.0
    # ... and a later stall, once it made progress, gets the timeout alone
    plan = away + [(True, True, True)] * 5 + [(False, True, True)] * 60
    assert [now for now, d in drive_recovering(plan, recover=20.0) if d.verdict is Verdict.RESTART] == [105 + TIMEOUT]


def drive_recovering(plan, recover: float):
    watch, progress_at, verdicts = Watch(), 0.0, []
    for i, (progressed, busy, answers) in enumerate(plan):
        now = float(i + 1)
        progress_at = now if progressed else progress_at
        d = judge(watch, Sample(now, P0 if busy else (), progress_at), TIMEOUT, recover)
        if d.verdict is Verdict.PROBE:
            d = judge(watch, Sample(now, P0 if busy else (), progress_at, answers), TIMEOUT, recover)
        progress_at = now if d.verdict is Verdict.RESTART else progress_at
        verdicts.append((now, d))
        watch = d.watch
    return verdicts


@given(steps, st.floats(0, 60))
def test_recovery_time_never_makes_a_stall_come_sooner(plan, recover):
    plain = [now for now, d in drive(plan) if d.verdict is not Verdict.OK and d.verdict is not Verdict.PROBE]
    slower = [now for now, d in drive_recovering(plan, recover) if d.verdict in (Verdict.RESTART, Verdict.FAIL)]
    assert not slower or not plain or slower[0] >= plain[0]


def test_the_recovery_time_is_the_consumers_session_timeout():
    from fs_bus.node.stall_watch import session_timeout_s
    assert session_timeout_s(_Instance(2000).config) == 10.0  # fs-bus's default for function consumers
    cfg = parse_config(CONFIG.format(servers="b:9092", timeout=2000).replace(
        "group_id: g}", "group_id: g, session.timeout.ms: 30000}"))
    assert session_timeout_s(cfg) == 30.0
