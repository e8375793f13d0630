"""The README's first command: `fs-bus local demo` brings up a broker and a node and moves data."""

from __future__ import annotations

import subprocess
import sys

from fs_bus.local.broker import free_port
from tests.integration.harness import ROOT


def fs_bus(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fs_bus", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_local_demo_runs_end_to_end_then_down_stops_everything(tmp_path):
    d, port = str(tmp_path / "local"), str(free_port())
    try:
        r = fs_bus("local", "demo", "--dir", d, "--port", port)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "<- upper-output" in r.stdout and ": HELLO" in r.stdout
        # It says that what it started keeps running, and how to stop it.
        assert "keep running in the background; `fs-bus local down` stops them" in r.stdout
        assert fs_bus("local", "status", "--dir", d).returncode == 0
        # Running it again reuses what runs and deploys nothing twice.
        r = fs_bus("local", "demo", "--dir", d, "--port", port)
        assert r.returncode == 0 and "already" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        r = fs_bus("local", "down", "--dir", d)
    assert r.returncode == 0, r.stderr
    status = fs_bus("local", "status", "--dir", d)
    assert status.returncode == 1 and "broker: stopped" in status.stdout and "node:   stopped" in status.stdout


def test_local_up_serves_metrics_on_the_port_given_and_says_where_everything_is(tmp_path):
    import urllib.request

    d, port, metrics = str(tmp_path / "local"), str(free_port()), free_port()
    try:
        r = fs_bus("local", "up", "--dir", d, "--port", port, "--metrics-port", str(metrics))
        assert r.returncode == 0, r.stdout + r.stderr
        said = (r.stdout + r.stderr).replace("\n", "")  # (wrapping is not what this test is about)
        assert f"http://127.0.0.1:{metrics}/metrics" in said
        assert str(tmp_path / "local" / "node.log") in said and "broker.log" in said and "fs-bus logs NAME" in said
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10).read().decode()
        assert "fs_bus_" in body
    finally:
        fs_bus("local", "down", "--dir", d)
