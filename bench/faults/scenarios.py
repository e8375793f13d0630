"""The fault scenarios: each takes a fresh ``Rig`` and returns what one run measured."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Callable

from bench.faults.rig import KEY_COUNTER, UPPER_WASM, Results, Rig, Writer, function_config, wait

BROKER_FREEZE_S = 20.0
BROKER_DOWN_S = 5.0
# The function consumer's session timeout is 10 s (fs_bus.kafka.clients): frozen this long,
# the node's partitions move to the other node before it wakes up as a zombie.
NODE_FREEZE_S = 20.0
RECOVER_LIMIT_S = 180.0  # a run that has not caught up by then reports what it lost
TAIL_S = 5.0  # writing goes on this long after the fault's end
MID_STREAM = 600  # results out before the fault


@dataclass
class RunResult:
    scenario: str
    run: int
    sent: int = 0  # records the broker acknowledged
    lost: int = 0  # of those, records whose result never came out
    duplicates: int = 0  # results that came out more than once
    recover_s: float | None = None  # None: never caught up
    state_ok: bool | None = None  # the counter's counts (None: no state in this scenario)
    stall_restarts: int = 0  # "stalled: restarted" in the nodes' logs
    status: str = ""  # the function's status at the end: RUNNING, unless it never came back
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.lost == 0 and self.state_ok is not False and self.status == "RUNNING"


class Recovery:
    """When every record written before the reference time has its result."""

    def __init__(self, results: Results, since: float, upto: int):
        self.results, self.since = results, since
        self.missing = set(range(upto))
        self.seconds: float | None = None

    def check(self) -> bool:
        if self.seconds is None:
            self.results.read()
            self.missing -= self.results.answers.keys()
            if not self.missing:
                self.seconds = time.monotonic() - self.since
        return self.seconds is not None


def pause(seconds: float, results: Results, recovery: Recovery | None = None) -> None:
    """Wait ``seconds``, reading results meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if recovery is not None:
            recovery.check()
        else:
            results.read()


def _finish(rig: Rig, writer: Writer, results: Results, recovery: Recovery, out: RunResult,
            counter: bool = False, exactly_once: bool = False, tail_s: float = TAIL_S) -> RunResult:
    pause(tail_s, results, recovery)
    writer.stop()
    acked = set(writer.acked)
    deadline = recovery.since + RECOVER_LIMIT_S
    while time.monotonic() < deadline and not (recovery.check() and results.has_all(acked)):
        pass
    out.sent = len(acked)
    out.lost = len(acked - results.answers.keys())
    out.duplicates = results.duplicates
    out.recover_s = recovery.seconds
    if writer.failed:
        out.error = f"the writer failed: {writer.failed[:3]}"
    if counter:
        truth = writer.truth(acked)
        if exactly_once:
            out.state_ok = all(results.by_key.get(k) == list(range(1, n + 1)) for k, n in truth.items())
        else:  # at-least-once: a replay may count a record twice, but no count may fall short
            out.state_ok = all(results.highest.get(k, 0) >= n for k, n in truth.items())
    out.stall_restarts = rig.count_in_logs("stalled: restarted")
    out.status = _settled_status(rig, "counter" if counter else "upper")
    return out


def _settled_status(rig: Rig, function: str, timeout: float = 60.0) -> str:
    """The function's status once it is RUNNING again, or what it still is after ``timeout``."""
    status, deadline = "", time.monotonic() + timeout
    with rig.client() as client:
        while time.monotonic() < deadline:
            status = next((f.status for f in client.show_functions().functions if f.name == function), "")
            if status == "RUNNING":
                break
            time.sleep(0.5)
    return status


def _upper(rig: Rig, partitions: int = 1) -> tuple[Writer, Results]:
    src, dst = rig.topics(partitions)
    rig.start_node("n1")
    with rig.client() as client:
        client.create_function_from_bytes(
            UPPER_WASM.read_bytes(), function_config(rig.bootstrap, "upper", src, dst, "at_least_once"))
    writer, results = Writer(rig.bootstrap, src).start(), Results(rig.bootstrap, dst)
    wait(lambda: results.read() or results.count >= MID_STREAM, 60, f"{MID_STREAM} results before the fault",
         lambda: rig.node_log("n1"))
    return writer, results


def broker_freeze(rig: Rig, out: RunResult) -> RunResult:
    """The broker SIGSTOPped for 20 s mid-stream (a hung machine), then SIGCONTed."""
    writer, results = _upper(rig)
    rig.broker.freeze()
    time.sleep(BROKER_FREEZE_S)
    rig.broker.resume()
    recovery = Recovery(results, time.monotonic(), writer.sent)
    return _finish(rig, writer, results, recovery, out)


def broker_freeze_idle(rig: Rig, out: RunResult) -> RunResult:
    """As issue 18 first saw it: 3 000 records, all processed; the broker SIGSTOPped for 20 s
    while the function is idle; SIGCONT; 3 000 more records. They must all come out."""
    src, dst = rig.topics(1)
    rig.start_node("n1")
    with rig.client() as client:
        client.create_function_from_bytes(
            UPPER_WASM.read_bytes(), function_config(rig.bootstrap, "upper", src, dst, "at_least_once"))
    writer, results = Writer(rig.bootstrap, src), Results(rig.bootstrap, dst)
    writer.burst(3000)
    wait(lambda: results.has_all(range(3000)), 60, "the first 3 000 results", lambda: rig.node_log("n1"))
    rig.broker.freeze()
    time.sleep(BROKER_FREEZE_S)
    rig.broker.resume()
    recovery = Recovery(results, time.monotonic(), 6000)
    writer.burst(3000)
    writer.stop()
    return _finish(rig, writer, results, recovery, out, tail_s=0.0)


def broker_kill(rig: Rig, out: RunResult) -> RunResult:
    """The broker killed with -9 mid-stream, restarted on the same data directory and ports."""
    writer, results = _upper(rig)
    rig.broker.kill()
    time.sleep(BROKER_DOWN_S)
    rig.broker.start(wait_timeout=120.0)
    recovery = Recovery(results, time.monotonic(), writer.sent)
    return _finish(rig, writer, results, recovery, out)


def _node_freeze(rig: Rig, out: RunResult, guarantee: str) -> RunResult:
    """Node n1 SIGSTOPped past its session timeout while n2 takes its partitions, then resumed:
    a zombie. Exactly-once: it must write nothing after losing them; at-least-once: no state lost."""
    src, dst = rig.topics(2)
    rig.start_node("n1")
    rig.start_node("n2")
    with rig.client() as client:
        client.create_python_function("KeyCounter", [("key_counter", KEY_COUNTER)],
                                      function_config(rig.bootstrap, "counter", src, dst, guarantee, "python"),
                                      timeout=120)
    wait(lambda: len(rig.holdings("counter")) == 2, 90, "each node holding a partition", lambda: rig.node_log("n1"))
    writer, results = Writer(rig.bootstrap, src).start(), Results(rig.bootstrap, dst)
    wait(lambda: results.read() or results.count >= MID_STREAM, 60, f"{MID_STREAM} results before the fault",
         lambda: rig.node_log("n1"))
    rig.signal_node("n1", signal.SIGSTOP)
    recovery = Recovery(results, time.monotonic(), writer.sent)
    pause(NODE_FREEZE_S, results, recovery)
    rig.signal_node("n1", signal.SIGCONT)
    return _finish(rig, writer, results, recovery, out, counter=True, exactly_once=guarantee == "exactly_once")


def node_freeze_exactly_once(rig: Rig, out: RunResult) -> RunResult:
    return _node_freeze(rig, out, "exactly_once")


def node_freeze_at_least_once(rig: Rig, out: RunResult) -> RunResult:
    return _node_freeze(rig, out, "at_least_once")


SCENARIOS: dict[str, Callable[[Rig, RunResult], RunResult]] = {
    "broker-freeze": broker_freeze,
    "broker-freeze-idle": broker_freeze_idle,
    "broker-kill": broker_kill,
    "node-freeze-eos": node_freeze_exactly_once,
    "node-freeze-alo": node_freeze_at_least_once,
}
