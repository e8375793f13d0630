"""The Kafka Streams peer: its jars, its compiled class and its command line.

``bench/streams/BenchStreams.java`` is compiled with ``javac`` at bench time and run
with ``java -cp``. Its jars (``org.apache.kafka:kafka-streams`` of the broker's Kafka
version, with kafka-clients and rocksdbjni) come from Maven Central the way the
broker's do (``fs_bus.local.broker.resolve_kafka_classpath``): ``mvn
dependency:copy-dependencies`` on ``bench/streams/pom.xml``, once, into
``<cache>/kafka-streams-<version>/lib`` (``$FS_BUS_CACHE_DIR``, default
``~/.cache/fs-bus``); the class goes beside it, in a directory named after the
source's hash, so an edited source is compiled again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fs_bus.errors import LocalClusterError
from fs_bus.local.broker import DEFAULT_KAFKA_VERSION, check_java
from fs_bus.local.jars import default_cache_dir

from bench.common import CaseSkipped, log

STREAMS_DIR = Path(__file__).resolve().parent / "streams"
SOURCE = STREAMS_DIR / "BenchStreams.java"
POM = STREAMS_DIR / "pom.xml"
MAIN_CLASS = "BenchStreams"
HEAP = "1g"  # as the bench's broker; the JVM's default (a quarter of the machine) says nothing about the peer

_MARKER = ".complete"
_GUARANTEES = {"at_least_once": "at_least_once", "exactly_once": "exactly_once_v2"}


@dataclass(frozen=True)
class StreamsPeer:
    """A compiled BenchStreams, ready to run."""

    java: str
    classpath: str
    version: str

    def argv(self, mode: str, *, bootstrap: str, source: str, sink: str, application_id: str, state_dir: Path,
             guarantee: str = "at_least_once", key_prefix: str | None = None) -> list[str]:
        """The command line of one Kafka Streams application (``mode``: upper or counter)."""
        args = [self.java, f"-Xmx{HEAP}", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", self.classpath,
                MAIN_CLASS, "--mode", mode, "--bootstrap", bootstrap, "--source", source, "--sink", sink,
                "--application-id", application_id, "--state-dir", str(state_dir),
                "--guarantee", _GUARANTEES[guarantee]]
        if key_prefix is not None:
            args += ["--key-prefix", key_prefix]
        return args


def prepare(cache_dir: Path | None = None, kafka_version: str = DEFAULT_KAFKA_VERSION) -> StreamsPeer:
    """Jars resolved and the class compiled (each once per cache); CaseSkipped without a JDK or Maven."""
    try:
        java = check_java()
    except LocalClusterError as e:
        raise CaseSkipped(f"skipped: {e}") from None
    javac = _javac(java)
    root = (cache_dir or default_cache_dir()).expanduser() / f"kafka-streams-{kafka_version}"
    lib = root / "lib"
    root.mkdir(parents=True, exist_ok=True)
    # Two bench runs (or a run and the smoke test) must not fill lib/ or compile at once.
    with open(root.parent / f"kafka-streams-{kafka_version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(root, kafka_version):
            _download_jars(root, kafka_version)
        classes = root / f"classes-{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]}"
        if not (classes / f"{MAIN_CLASS}.class").is_file():
            _compile(javac, lib, classes)
    return StreamsPeer(java=java, classpath=f"{classes}{os.pathsep}{lib / '*'}", version=kafka_version)


def _javac(java: str) -> str:
    beside = Path(java).resolve().parent / "javac"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("javac")
    if not found:
        raise CaseSkipped("skipped: the Kafka Streams peer is compiled at bench time and needs a JDK (javac): "
                          "apt-get install openjdk-17-jdk-headless")
    return found


def _complete(root: Path, kafka_version: str) -> bool:
    return (root / _MARKER).is_file() and (root / "lib" / f"kafka-streams-{kafka_version}.jar").is_file()


def _download_jars(root: Path, kafka_version: str) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise CaseSkipped("skipped: Maven is needed once to download the Kafka Streams jars but `mvn` was not "
                          "found: apt-get install maven")
    lib = root / "lib"
    shutil.rmtree(lib, ignore_errors=True)  # the remains of an interrupted download (no marker)
    (root / _MARKER).unlink(missing_ok=True)
    pom = root / "pom.xml"
    shutil.copyfile(POM, pom)
    log(f"streams: downloading Kafka Streams {kafka_version} jars from Maven Central into {lib} (one time, ~90 MB)")
    log_path = root / "mvn.log"
    with open(log_path, "w") as out:
        done = subprocess.run([mvn, "-B", "-f", str(pom), f"-Dkafka.version={kafka_version}",
                               "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=root, timeout=900)
    if done.returncode != 0 or not (lib / f"kafka-streams-{kafka_version}.jar").is_file():
        raise RuntimeError(f"downloading Kafka Streams {kafka_version} with Maven failed (exit {done.returncode}); "
                           f"is Maven Central reachable? Full log: {log_path}\n"
                           f"{log_path.read_text(errors='replace')[-2000:]}")
    (root / _MARKER).write_text(f"{kafka_version}\n")


def _compile(javac: str, lib: Path, classes: Path) -> None:
    log(f"streams: compiling {SOURCE.name} into {classes}")
    tmp = classes.with_name(classes.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    done = subprocess.run([javac, "-cp", str(lib / "*"), "-d", str(tmp), str(SOURCE)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"javac {SOURCE} failed:\n{(done.stderr or done.stdout)[-3000:]}")
    os.replace(tmp, classes)  # whole or not at all: a half-written directory is never taken for compiled
