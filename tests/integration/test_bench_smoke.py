"""The benchmark suite runs end to end on a tiny data set (no timing thresholds: the
machines this runs on are shared and noisy, so only "it measured something" is checked)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = ["limit", "wasm-reference-world", "wasm-fast", "python", "streams", "stateful", "latency", "control-plane",
         "boundary"]
THROUGHPUT = ["limit", "wasm-reference-world", "wasm-fast", "python", "streams"]
STATEFUL_ROWS = ["limit", "go-processor", "python", "streams"]
STATEFUL_RECORDS = 1000


@pytest.mark.timeout(700)
def test_python_m_bench_measures_every_case(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "bench", "--records", "2000", "--partitions", "1", "--latency-seconds", "2", "--rate", "500",
           "--functions", "3", "--stateful-records", str(STATEFUL_RECORDS), "--cases", ",".join(CASES),
           "--latency-targets", ",".join(THROUGHPUT), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # let it stop its broker and nodes
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail(f"python -m bench did not finish in 600 s:\n{output[-5000:]}")
    assert proc.returncode == 0, output[-5000:]
    results = json.loads(out.read_text())
    cases = results["cases"]
    assert sorted(cases) == sorted(CASES), output[-5000:]

    for case in THROUGHPUT:
        entry = cases[case]
        assert entry["status"] == "ok", (case, entry)
        # Every record of the data set is accounted for. A node case times from the moment
        # its function reports RUNNING; on 2 000 records a fast case may be done by then
        # (the table says so), so a rate is only required of what ran while timed.
        assert entry["records"] + entry.get("records_before_start", 0) == 2000, (case, entry)
        if entry["records"]:
            assert entry["records_per_s"] > 0 and entry["mb_per_s"] > 0, (case, entry)
            assert entry["ratio_to_limit"] > 0, (case, entry)
    assert cases["limit"]["ratio_to_limit"] == 1.0

    # The three counters (and limit's loop) each moved the sentences, and each counter's
    # outputs are the reference replay's: the same counts after every record.
    stateful = cases["stateful"]
    assert stateful["status"] == "ok", stateful
    assert stateful["data_set"]["records"] == STATEFUL_RECORDS and stateful["data_set"]["partitions"] == 1
    for row in STATEFUL_ROWS:
        entry = stateful["rows"][row]
        assert entry["status"] == "ok", (row, entry)
        assert entry["records"] + entry.get("records_before_start", 0) == STATEFUL_RECORDS, (row, entry)
        if entry["records"]:
            assert entry["records_per_s"] > 0 and entry["ratio_to_limit"] > 0, (row, entry)
        if row != "limit":
            assert entry["output_check"] == {"matches_reference": True, "records_read": STATEFUL_RECORDS,
                                             "missing": 0, "unexpected": 0}, (row, entry)

    latency = cases["latency"]
    assert latency["status"] == "ok", latency
    for target in THROUGHPUT:
        t = latency["targets"][target]
        assert t["status"] == "ok" and t["received"] > 0 and t["p99_ms"] >= t["p50_ms"] > 0, (target, t)

    cp = cases["control-plane"]
    assert cp["status"] == "ok", cp
    assert cp["create_to_running"]["n"] == 3 and cp["create_to_running"]["p50_ms"] > 0, cp
    assert cp["replace_to_running"]["n"] == 3 and cp["replace_over_stop_start"] > 0, cp
    assert cp["artifact"]["upload_mb_per_s"] > 0 and cp["artifact"]["download_mb_per_s"] > 0, cp
    assert cp["cold_start"], cp

    # Each WebAssembly host built here gave both in-process figures.
    from tests.wasm_hosts import AVAILABLE

    hosts = cases["boundary"]["hosts"]
    for host in AVAILABLE:
        assert hosts[host]["status"] == "ok" and hosts[host]["record_us"] > 0, (host, hosts)
        assert hosts[host]["kv_call_us"] is not None, (host, hosts)

    machine = results["machine"]
    for key in ("cpu_model", "cores", "python", "confluent_kafka", "librdkafka", "wasmtime", "wasm_host", "kafka",
                "git"):
        assert machine.get(key), (key, machine)
    assert "limit" in output and "records/s" in output  # the table was printed
    assert "same counts" in output  # and the stateful one


@pytest.mark.timeout(400)
def test_python_m_bench_placement_measures_and_moves_only_what_must(bootstrap_servers, tmp_path):
    """bench/placement on 2 nodes and 8 functions: every figure there; what moved moved to the
    newcomer, and killing it moved only its own (correctness, not speed)."""
    out = tmp_path / "p.json"
    proc = subprocess.run([sys.executable, "-m", "bench.placement", "--nodes", "2", "--functions", "8", "--creates", "1",
                           "--timeout", "300", "--bootstrap-servers", bootstrap_servers, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stderr[-5000:]
    r = json.loads(out.read_text())
    assert sum(r["balance"]["per_node"].values()) == 8
    assert r["create_to_running_ms"]["n"] == 1
    assert r["join"]["moved_all_to_newcomer"] and r["kill"]["moved_only_its_own"], (r, proc.stderr[-3000:])
    assert r["kill"]["moved"] == r["kill"]["victim_functions"] == r["join"]["moved"], r
    assert all(f["rss_mb"] > 0 and f["threads"] > 0 for f in r["footprint"].values())
