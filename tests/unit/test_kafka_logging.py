"""A broker that is down gives one line per cause, then fs-bus's own message (issue 17, point 2)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from fs_bus.kafka.clients import OncePerCause
from fs_bus.local.broker import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("fs_bus.librdkafka", logging.ERROR, __file__, 1, msg, None, None)


def test_repeated_causes_pass_once_until_the_quiet_time_is_over():
    now = [0.0]
    once = OncePerCause(quiet_s=60, clock=lambda: now[0])
    line = ("FAIL [fs-bus-admin-vm#producer-{n}] [thrd:127.0.0.1:9/bootstrap]: 127.0.0.1:9/bootstrap: Connect to "
            "ipv4#127.0.0.1:9 failed: Connection refused (after {n}ms in state CONNECT)")
    passed = [once.filter(_record(line.format(n=n))) for n in range(200)]
    assert passed.count(True) == 1
    assert once.filter(_record("FAIL [x] other cause: Connection timed out"))  # another cause gets its line
    now[0] = 61
    assert once.filter(_record(line.format(n=7)))  # and the first one again, once it has been quiet a while


def test_a_command_against_a_broker_that_is_down_prints_one_line_per_cause_then_the_message():
    done = subprocess.run([sys.executable, "-m", "fs_bus", "sql", "-b", f"127.0.0.1:{free_port()}",
                           "-e", "SHOW FUNCTIONS"], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    rdkafka = [ln for ln in lines if "fs_bus.librdkafka" in ln]
    assert len(rdkafka) <= 2, f"{len(rdkafka)} librdkafka lines:\n" + "\n".join(rdkafka[:5])
    assert "cannot reach Kafka" in done.stderr
