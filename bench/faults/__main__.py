"""``python -m bench.faults --runs N [--scenario NAME ...]``: each scenario N times, a row per run, a summary."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from fs_bus.local.broker import LocalBroker

from bench.faults.rig import Rig, new_broker
from bench.faults.scenarios import SCENARIOS, RunResult

HEADER = f"{'scenario':<16} {'run':>3} {'sent':>6} {'lost':>4} {'dups':>5} {'recover_s':>9} {'state':>5} " \
         f"{'stalls':>6} {'status':>8} {'secs':>5}  error"


def row(r: RunResult) -> str:
    recover = f"{r.recover_s:.1f}" if r.recover_s is not None else "never"
    state = {None: "-", True: "ok", False: "WRONG"}[r.state_ok]
    return (f"{r.scenario:<16} {r.run:>3} {r.sent:>6} {r.lost:>4} {r.duplicates:>5} {recover:>9} {state:>5} "
            f"{r.stall_restarts:>6} {r.status:>8} {r.seconds:>5.0f}  {(r.error or '').splitlines()[0][:120] if r.error else ''}")


def run_once(name: str, n: int, workdir: Path, broker: LocalBroker | None = None) -> RunResult:
    """One run of scenario ``name``: on ``broker`` (each run in a namespace of its own), or on a
    broker of its own, stopped after the run."""
    out = RunResult(name, n)
    started = time.monotonic()
    rig = None
    try:
        rig = Rig.start(workdir, broker)
        SCENARIOS[name](rig, out)
    except Exception as exc:  # noqa: BLE001 - a run that breaks is a row that says why
        out.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    finally:
        if rig is not None:
            rig.close()
    out.seconds = time.monotonic() - started
    return out


def summary(results: list[RunResult]) -> str:
    lines = [f"{'scenario':<16} {'runs':>4} {'failed':>6} {'lost':>4} {'dups med/max':>12} "
             f"{'recover_s med/max':>17} {'never':>5} {'stalls':>6}"]
    for name in dict.fromkeys(r.scenario for r in results):
        rs = [r for r in results if r.scenario == name]
        rec = [r.recover_s for r in rs if r.recover_s is not None]
        dups = [r.duplicates for r in rs]
        rec_s = f"{statistics.median(rec):.1f}/{max(rec):.1f}" if rec else "-"
        lines.append(f"{name:<16} {len(rs):>4} {sum(not r.ok for r in rs):>6} {sum(r.lost for r in rs):>4} "
                     f"{f'{statistics.median(dups):.0f}/{max(dups)}':>12} {rec_s:>17} "
                     f"{len(rs) - len(rec):>5} {sum(r.stall_restarts for r in rs):>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1, help="runs of each scenario")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="a scenario to run (repeatable); all of them if left out")
    parser.add_argument("--workdir", type=Path, help="where runs keep their broker and logs (kept for failed runs)")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--keep-slower-than", type=float, default=60.0, metavar="S",
                        help="keep the broker and logs of runs that took longer than S s to recover (default 60)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fs-bus-faults-"))
    results: list[RunResult] = []
    # One broker for every run (a fresh one costs 10-30 s): it comes back from each fault,
    # and each run has its own namespace and topics.
    broker = new_broker(workdir / "kafka")
    print(HEADER, flush=True)
    try:
        for n in range(1, args.runs + 1):
            for name in args.scenario or list(SCENARIOS):
                results.append(_run(name, n, workdir, broker, args.keep_slower_than))
                if args.json:
                    args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    finally:
        broker.stop(timeout=20)
    print()
    print(summary(results), flush=True)
    return 0 if all(r.ok for r in results) else 1


def _run(name: str, n: int, workdir: Path, broker: LocalBroker, keep_slower_than: float) -> RunResult:
    """One run, its row printed; its directory removed unless it failed or was slow to recover."""
    where = workdir / f"{name}-{n}"
    r = run_once(name, n, where, broker)
    print(row(r), flush=True)
    if r.ok and (r.recover_s or 0) <= keep_slower_than:
        shutil.rmtree(where, ignore_errors=True)
    return r


if __name__ == "__main__":
    sys.exit(main())
