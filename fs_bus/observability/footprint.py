"""The process's footprint, from /proc/self: resident memory and threads (0 where unknown)."""

from __future__ import annotations

import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")


def footprint() -> tuple[int, int]:
    """``(rss_bytes, threads)`` of this process: the kernel's count, librdkafka's and the
    runtimes' native threads included. Off Linux: 0 bytes and Python's own threads."""
    try:
        text = _STATUS.read_text()
    except OSError:
        return 0, threading.active_count()
    rss, threads = 0, 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024  # kB
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads or threading.active_count()


def pid_footprint(pid: int) -> tuple[int, int]:
    """The same for another process (the bench's nodes); (0, 0) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    rss = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    return rss, int(fields.get("Threads", "0").strip() or 0)


__all__ = ["footprint", "pid_footprint"]
