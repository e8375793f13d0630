"""``python -m bench``: start a broker, make one data set, run the cases, report."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from bench.common import (
    ALL_CASES, LATENCY_TARGETS, ROOT, THROUGHPUT_CASES, CaseSkipped, CaseTimeout, Children, Deadline, Outcome, Params, create_topics,
    log, produce_dataset,
)

DESCRIPTION = """\
Benchmark fs-bus against the plain Kafka client it is built on. Starts its own Kafka
broker (free ports, temporary directory), produces one data set, runs each case on
the same data, prints tables and writes a JSON file. Nothing here is a pass/fail
threshold: it measures.

cases (--cases, comma-separated; default: all):
  limit                 plain confluent-kafka consume -> upper -> produce loop in Python
  wasm-reference-world  an fs-bus node running examples/upper/upper.wasm
  wasm-fast             an fs-bus node running examples/upper-fast (fs-bus's batch world, Go)
  python                an fs-bus node running a type: python function (data.upper())
  peer                  quixstreams .apply(lambda v: v.upper()) (skipped if not importable)
  streams               Kafka Streams mapValues(upper), 1 stream thread, untuned (a JVM; jars from Maven
                        Central, compiled with javac at bench time)
  stateful              a word counter over its own data set (sentences of 5 words, --stateful-records on
                        --stateful-partitions): limit, examples/go-processor (reference world), the same
                        counter as type: python, and on Kafka Streams (Processor API, RocksDB store with
                        changelog, 1 thread); each checked against a reference replay of the counter
  latency               end-to-end p50/p99 of limit, wasm-reference-world, wasm-fast, python, peer and
                        streams at half their measured max rate (or --rate N, or --rate common: all at one rate)
  control-plane         CREATE -> RUNNING latency, artifact upload/download MB/s, component
                        cold start with and without the compiled cache
"""


def _rate(text: str) -> float | str:
    if text == "common":
        return text
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of records/s nor 'common'") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError("the rate must be positive")
    return rate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="records in the data set (default 1000000)")
    ap.add_argument("--size", type=int, default=100, help="bytes per record value (default 100)")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of every data topic (default 4)")
    ap.add_argument("--cases", default=",".join(ALL_CASES),
                    help=f"comma-separated cases to run, in this order: {','.join(ALL_CASES)} (default: all)")
    ap.add_argument("--stateful-records", type=int, default=200_000,
                    help="sentences in the stateful case's data set (default 200000)")
    ap.add_argument("--stateful-partitions", type=int, default=1,
                    help="partitions of the stateful case's topics (default 1)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON results file (default bench/results/<UTC timestamp>.json)")
    ap.add_argument("--latency-seconds", type=float, default=10.0,
                    help="how long the latency case produces, per target (default 10)")
    ap.add_argument("--rate", type=_rate, default=None,
                    help="offered rate (records/s) of the latency case, or 'common': every target at half of the "
                         "lowest max measured among them, so their latencies compare at one rate "
                         "(default: each target at half of its own measured max)")
    ap.add_argument("--latency-targets", default=",".join(LATENCY_TARGETS),
                    help=f"what the latency case measures, in this order: {','.join(LATENCY_TARGETS)} (default: all)")
    ap.add_argument("--guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once",
                    help="processing.guarantee of the functions the fs-bus cases deploy (default at_least_once)")
    ap.add_argument("--functions", type=int, default=50,
                    help="functions created one after another by control-plane (default 50)")
    ap.add_argument("--artifact-mb", type=int, default=20, help="artifact size for upload/download (default 20)")
    ap.add_argument("--case-timeout", type=float, default=None,
                    help="seconds a throughput case (or a row of the stateful case) may take before it is "
                         "reported as timed out (default: 300 + records/400; stateful: 300 + "
                         "stateful-records/200)")
    ap.add_argument("--peer-python", default=sys.executable,
                    help="interpreter that has quixstreams, for the peer case (default: this one). quixstreams "
                         "pins its own confluent-kafka: a separate venv keeps it out of fs-bus's environment")
    ap.add_argument("--bootstrap-servers", default=None,
                    help="use this running broker instead of starting one (topics are prefixed per run)")
    ap.add_argument("--broker-heap", default="1g", help="heap of the broker JVM the bench starts (default 1g)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (broker data, node logs)")
    a = ap.parse_args(argv)
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown or not cases:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(ALL_CASES)}")
    a.cases = [c for c in ALL_CASES if c in cases]
    for name in ("records", "size", "partitions", "functions", "artifact_mb", "stateful_records",
                 "stateful_partitions"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    targets = [t.strip() for t in a.latency_targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in LATENCY_TARGETS]
    if unknown or not targets:
        ap.error(f"unknown latency target(s) {unknown}; choose from {', '.join(LATENCY_TARGETS)}")
    a.latency_targets = [t for t in LATENCY_TARGETS if t in targets]
    if a.size < 24:
        ap.error("--size must be at least 24 (the latency case stamps 20 digits into each value)")
    if a.latency_seconds <= 0:
        ap.error("--latency-seconds must be positive")
    return a


def _write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _run_case(name: str, timeout: float, fn: Callable[[Deadline], dict[str, Any]]) -> Outcome:
    log(f"case {name}: start (timeout {timeout:.0f} s)")
    started = time.monotonic()
    out = Outcome(name)
    deadline = Deadline(timeout, name)
    try:
        out.metrics = fn(deadline)
    except CaseSkipped as e:
        out.status, out.error = "skipped", str(e)
    except CaseTimeout as e:
        out.status, out.error = "timeout", str(e)
        partial = getattr(e, "partial", None)
        if partial:
            out.metrics = {**partial, "partial": True}
    except Exception as e:  # noqa: BLE001 - one broken case must not end the run
        out.status = "timeout" if deadline.expired() else "failed"
        out.error = f"{type(e).__name__}: {e}"[:4000]
        log(f"case {name}: {out.status}\n{traceback.format_exc()[-3000:]}")
    out.seconds = time.monotonic() - started
    log(f"case {name}: {out.status} in {out.seconds:.1f} s"
        + (f" ({out.metrics['records_per_s']:,.0f} records/s)" if "records_per_s" in out.metrics else "")
        + (f": {out.error.splitlines()[0][:200]}" if out.error else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # tests.guests, for the cold-start guest

    from bench import control_plane, latency, report, stateful, throughput
    from bench.machine import kafka_version, machine_info

    started_at = datetime.now(timezone.utc)
    out_path = a.out or ROOT / "bench" / "results" / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    workdir = Path(tempfile.mkdtemp(prefix="fs-bus-bench-"))

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    children = Children()
    broker = None
    run_id = f"bench-{uuid.uuid4().hex[:6]}"
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
        "params": {"records": a.records, "size": a.size, "partitions": a.partitions, "cases": a.cases,
                   "latency_seconds": a.latency_seconds, "rate": a.rate, "functions": a.functions,
                   "artifact_mb": a.artifact_mb, "guarantee": a.guarantee,
                   "stateful_records": a.stateful_records, "stateful_partitions": a.stateful_partitions},
        "machine": {},
        "data_set": None,
        "cases": {},
    }
    code = 0
    try:
        kafka = None
        if a.bootstrap_servers:
            bootstrap = a.bootstrap_servers
        else:
            from fs_bus.local.broker import BrokerSpec, LocalBroker, free_port, resolve_kafka_classpath

            classpath = resolve_kafka_classpath()
            kafka = kafka_version(classpath)
            broker = LocalBroker(BrokerSpec(data_dir=workdir / "kafka", port=free_port(), heap=a.broker_heap),
                                 classpath=classpath)
            log(f"starting a Kafka broker in {workdir / 'kafka'}")
            broker.start(wait_timeout=120.0)
            bootstrap = broker.bootstrap_servers
        results["machine"] = machine_info(kafka=kafka)
        results["broker"] = {"bootstrap": bootstrap, "started_by_bench": broker is not None}

        case_timeout = a.case_timeout or 300 + a.records / 400
        p = Params(bootstrap=bootstrap, workdir=workdir, records=a.records, size=a.size, partitions=a.partitions,
                   input_topic=f"{run_id}-input", run_id=run_id, case_timeout=case_timeout,
                   latency_seconds=a.latency_seconds, rate=a.rate, functions=a.functions,
                   artifact_mb=a.artifact_mb, peer_python=a.peer_python, guarantee=a.guarantee,
                   latency_targets=tuple(a.latency_targets), stateful_records=a.stateful_records,
                   stateful_partitions=a.stateful_partitions,
                   stateful_row_timeout=a.case_timeout or 300 + a.stateful_records / 200)

        # The data set also warms the broker up (a cold JVM answers its first produce
        # requests slowly), which the latency case needs even when it has a --rate.
        if any(c in THROUGHPUT_CASES or c == "latency" for c in a.cases):
            log(f"data set: {a.records:,} records x {a.size} B on {a.partitions} partition(s)")
            create_topics(bootstrap, [p.input_topic], a.partitions)
            results["data_set"] = produce_dataset(bootstrap, p.input_topic, a.records, a.size, a.partitions,
                                                  Deadline(max(300, a.records / 2000), "data set"))
            log(f"data set: produced in {results['data_set']['produce_seconds']:.1f} s")
        _write(out_path, results)

        max_rates: dict[str, float] = {}
        runners: dict[str, tuple[float, Callable[[Deadline], dict[str, Any]]]] = {
            "limit": (case_timeout, lambda d: throughput.run_limit(p, d)),
            "wasm-reference-world": (case_timeout,
                                     lambda d: throughput.run_node_case(p, d, children, "wasm", "wasm-reference-world")),
            "wasm-fast": (case_timeout, lambda d: throughput.run_node_case(p, d, children, "wasm-fast", "wasm-fast")),
            "python": (case_timeout, lambda d: throughput.run_node_case(p, d, children, "python", "python")),
            "peer": (case_timeout, lambda d: throughput.run_peer(p, d, children)),
            "streams": (case_timeout, lambda d: throughput.run_streams(p, d, children)),
            "stateful": (len(stateful.ROWS) * (p.stateful_row_timeout + 120) + 300,
                         lambda d: stateful.run_stateful(p, d, children)),
            "latency": (3 * (2 * a.latency_seconds + 300),
                        lambda d: {"targets": latency.run_latency(p, d, children, max_rates)}),
            "control-plane": (900 + 30 * a.functions, lambda d: control_plane.run_control_plane(p, d, children)),
        }
        for case in a.cases:
            timeout, fn = runners[case]
            outcome = _run_case(case, timeout, fn)
            if outcome.status == "ok" and outcome.metrics.get("records_per_s"):
                max_rates[case] = outcome.metrics["records_per_s"]
            if case == "latency" and outcome.status == "ok":
                targets = outcome.metrics.get("targets", {})
                if any(t.get("status") not in ("ok", "skipped") for t in targets.values()):
                    outcome.status = "failed"
                    outcome.error = "; ".join(f"{k}: {t.get('error', '')}".splitlines()[0][:200]
                                              for k, t in targets.items() if t.get("status") not in ("ok", "skipped"))
            if case == "stateful" and outcome.status == "ok":
                rows = outcome.metrics.get("rows", {})
                if any(r.get("status") not in ("ok", "skipped") for r in rows.values()):
                    outcome.status = "failed"
                    outcome.error = "; ".join(f"{k}: {r.get('error', '')}".splitlines()[0][:200]
                                              for k, r in rows.items() if r.get("status") not in ("ok", "skipped"))
            if case == "control-plane" and outcome.status == "ok" and outcome.metrics.get("errors"):
                outcome.status = "failed"
                outcome.error = "; ".join(f"{k}: {v}".splitlines()[0][:200]
                                          for k, v in outcome.metrics["errors"].items())
            results["cases"][case] = outcome.to_json()
            _ratios(results["cases"])
            _write(out_path, results)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping what was started")
        results["interrupted"] = True
        code = 130
    except Exception as e:  # noqa: BLE001 - the broker or the data set: nothing to measure
        log(f"the run could not go on: {type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}")
        results["error"] = f"{type(e).__name__}: {e}"[:4000]
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children.stop_all()
        if broker is not None:
            try:
                broker.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping the broker: {e}")
        results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _write(out_path, results)
        if a.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if results["machine"]:
        report.render(results)
    print(f"results: {out_path}")
    return code


def _ratios(cases: dict[str, Any]) -> None:
    """Each throughput case's records/s over limit's, from the same run."""
    base = cases.get("limit", {})
    limit_rate = base.get("records_per_s") if base.get("status") == "ok" else None
    for case in THROUGHPUT_CASES:
        e = cases.get(case)
        if e is not None and e.get("records_per_s") is not None:
            e["ratio_to_limit"] = round(e["records_per_s"] / limit_rate, 4) if limit_rate else None
