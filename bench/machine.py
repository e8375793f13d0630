"""What the numbers were measured on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def kafka_version(classpath: str | None) -> str | None:
    if not classpath:
        return None
    libs = Path(classpath.rstrip("*").rstrip("/"))
    for jar in sorted(libs.glob("kafka_*.jar")):
        m = re.fullmatch(r"kafka_[\d.]+-([\w.\-]+?)\.jar", jar.name)
        if m and not m.group(1).endswith(("sources", "javadoc", "test")):
            return m.group(1)
    return None


def java_version() -> str | None:
    """``java -version``'s version string (the broker's and the Kafka Streams peer's JVM)."""
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "([^"]+)"', done.stderr + done.stdout)
    return m.group(1) if m else None


def machine_info(classpath: str | None = None, kafka: str | None = None) -> dict[str, Any]:
    import confluent_kafka

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_gib": _mem_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "confluent_kafka": _version("confluent-kafka") or str(confluent_kafka.version()),
        "librdkafka": confluent_kafka.libversion()[0],
        "wasmtime": _version("wasmtime"),
        "kafka": kafka or kafka_version(classpath),
        "java": java_version(),
        "fs_bus": _version("fs-bus"),
        "git": _git(),
    }
