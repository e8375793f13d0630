"""The progress watchdog's decisions: is a function instance stalled, and what then. Pure.

A function that silently stops is worse than one that fails: nobody is told and the
lag grows. So an instance that holds partitions with work to do (records behind, or
results not yet committed) and makes no progress (no record processed, no output
acknowledged, no commit) for ``processor-runtime: stall-timeout-ms`` is replaced from
its last commit. A cluster that cannot be reached is an outage, not a stall: the
clock starts again once it answers, and until the instance makes progress again it is
given the time its clients need to recover on top (a consumer whose group session
lapsed during the outage only finds out, and rejoins, after its session timeout). A stall that repeats (``STALLS_TO_FAIL`` within
``STALL_WINDOW_S``) marks the function FAILED with the reason, retried with back-off
like any failure, so that someone is told.

The shell that samples instances and probes clusters is ``fs_bus.node.stall_watch``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

STALL_WINDOW_S = 600.0
STALLS_TO_FAIL = 3


class Verdict(enum.Enum):
    OK = "ok"
    PROBE = "probe"  # a stall is due: ask whether the cluster answers, then judge again
    RESTART = "restart"  # stalled: replace the instance from its last commit
    FAIL = "fail"  # stalled once too often: FAILED, with the reason


@dataclass(frozen=True)
class Sample:
    """What the watchdog sees of one instance at one moment (monotonic seconds)."""

    now: float
    behind: tuple[str, ...]  # held partitions with work to do: records behind, or results not committed
    progress_at: float  # when it last processed a record, had an output acknowledged or committed
    reachable: bool | None = None  # whether its cluster answers; None: not asked


@dataclass(frozen=True)
class Watch:
    """The watchdog's memory of one instance."""

    quiet_since: float | None = None  # since when it has had work, its cluster answering, and no progress
    stalls: tuple[float, ...] = ()  # when it was found stalled, within the window
    down_at: float | None = None  # when its cluster was last found not answering
    back_at: float | None = None  # when it answered again after that, while no progress has been made since


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    watch: Watch
    partitions: tuple[str, ...] = ()
    stalled_s: float = 0.0

    @property
    def status(self) -> str:
        """What the function's status says about it."""
        parts = ", ".join(self.partitions)
        if self.verdict is Verdict.FAIL:
            return (f"stalled {len(self.watch.stalls)} times in {STALL_WINDOW_S / 60:.0f} min: no progress for "
                    f"{self.stalled_s:.0f} s on partitions {parts}, which have records to process")
        return f"stalled: restarted (partitions {parts}, stalled {self.stalled_s:.0f} s)"


def judge(watch: Watch, sample: Sample, timeout_s: float, recover_s: float = 0.0) -> Decision:
    """The verdict on ``sample``, and what to remember for the next one.

    ``timeout_s`` 0 turns the watchdog off. The stall clock starts at the latest of: the
    last progress, the first sample with work to do, the cluster answering again (a whole
    timeout is given after an outage, whatever was due during it, plus ``recover_s`` until
    the instance makes progress again)."""
    if timeout_s <= 0 or not sample.behind:
        return Decision(Verdict.OK, Watch(None, watch.stalls))
    if sample.reachable is False:
        return Decision(Verdict.OK, Watch(None, watch.stalls, down_at=sample.now))
    since = sample.now if watch.quiet_since is None else watch.quiet_since
    back_at = watch.back_at if watch.back_at is not None and sample.progress_at <= watch.back_at else None
    quiet = replace(watch, quiet_since=since, back_at=back_at)
    stalled_s = sample.now - max(since, sample.progress_at)
    if stalled_s < timeout_s + (recover_s if back_at is not None else 0.0):
        return Decision(Verdict.OK, quiet)
    if sample.reachable is None:
        return Decision(Verdict.PROBE, quiet, sample.behind, stalled_s)
    if watch.down_at is not None and sample.progress_at <= watch.down_at:  # it answers again: the clock starts now
        return Decision(Verdict.OK, Watch(sample.now, watch.stalls, back_at=sample.now))
    stalls = tuple(t for t in watch.stalls if sample.now - t < STALL_WINDOW_S) + (sample.now,)
    after = Watch(None, stalls)
    verdict = Verdict.FAIL if len(stalls) >= STALLS_TO_FAIL else Verdict.RESTART
    return Decision(verdict, after, sample.behind, stalled_s)
