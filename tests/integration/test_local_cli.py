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
        assert fs_bus("local", "status", "--dir", d).returncode == 0
        # Running it again reuses what runs and deploys nothing twice.
        r = fs_bus("local", "demo", "--dir", d, "--port", port)
        assert r.returncode == 0 and "already" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        r = fs_bus("local", "down", "--dir", d)
    assert r.returncode == 0, r.stderr
    status = fs_bus("local", "status", "--dir", d)
    assert status.returncode == 1 and "broker: stopped" in status.stdout and "node:   stopped" in status.stdout
