"""Each fault scenario of bench/faults once, against real Kafka (a broker of its own where the
broker is the fault) and real node processes, signals sent as an operator's machine would: no
acknowledged record lost, the function RUNNING again, exactly-once without a duplicate,
at-least-once without lost state. .ci/faults runs them 20 times over
(``python -m bench.faults --runs 20``)."""

from __future__ import annotations

import pytest

from bench.faults.__main__ import row, run_once
from bench.faults.rig import WRITE_RATE
from fs_bus.local.broker import LocalBroker

# At-least-once replays what the last commit point did not cover: about one checkpoint
# interval (1 s) of records at the writer's rate, plus what one poll takes (1 000), plus,
# when the broker held everything back, what it held (the fault's length at the writer's rate).


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario, fault_s", [("broker-freeze", 20), ("broker-kill", 5), ("node-freeze-eos", 0),
                                                ("node-freeze-alo", 0)])
def test_a_fault_loses_nothing_and_the_function_recovers(scenario, fault_s, tmp_path, kafka_broker):
    # A frozen node leaves the broker alone: the session's serves (a broker of its own costs 10-30 s).
    shared = kafka_broker if scenario.startswith("node-") and isinstance(kafka_broker, LocalBroker) else None
    r = run_once(scenario, 1, tmp_path / scenario, shared)
    print(row(r))
    assert r.error is None, r.error
    assert r.sent > 0 and r.lost == 0, row(r)
    assert r.recover_s is not None, row(r)
    assert r.status == "RUNNING", row(r)
    if scenario.endswith("-eos"):
        assert r.duplicates == 0 and r.state_ok, row(r)
    else:
        assert r.duplicates <= WRITE_RATE * (1 + fault_s) + 1000, row(r)
        assert r.state_ok is not False, row(r)
