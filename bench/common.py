"""What every case shares: deadlines, results, Kafka helpers and the child processes.

Everything here waits with a deadline: a case that runs out of time raises
:class:`CaseTimeout`, which the runner turns into a failed row of the table.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
UPPER_WASM = ROOT / "examples" / "upper" / "upper.wasm"
UPPER_FAST_DIR = ROOT / "examples" / "upper-fast"
GO_PROCESSOR_DIR = ROOT / "examples" / "go-processor"

THROUGHPUT_CASES = ("limit", "wasm-reference-world", "wasm-fast", "python", "peer", "streams")
LATENCY_TARGETS = ("limit", "wasm-reference-world", "wasm-fast", "python", "peer", "streams")
ALL_CASES = (*THROUGHPUT_CASES, "stateful", "latency", "control-plane", "boundary")


class CaseTimeout(Exception):
    """A case ran past its time budget."""


class CaseSkipped(Exception):
    """A case cannot run here (a missing optional tool); not a failure."""


class Deadline:
    def __init__(self, seconds: float, what: str):
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def check(self, doing: str = "") -> None:
        if self.expired():
            raise CaseTimeout(f"{self.what}: timed out after {self.seconds:.0f} s" + (f" {doing}" if doing else ""))

    def sub(self, seconds: float, what: str) -> Deadline:
        """A deadline that is the sooner of this one and ``seconds`` from now."""
        d = Deadline(min(seconds, max(0.0, self.remaining())), what)
        return d


@dataclass
class Params:
    bootstrap: str
    workdir: Path
    records: int
    size: int
    partitions: int
    input_topic: str
    run_id: str
    case_timeout: float
    latency_seconds: float
    rate: float | str | None  # records/s, "common", or None: half of each target's max
    functions: int
    artifact_mb: int
    peer_python: str
    verbose: bool = False
    guarantee: str = "at_least_once"  # processing.guarantee of the functions the node cases deploy
    latency_targets: tuple[str, ...] = LATENCY_TARGETS
    stateful_records: int = 200_000  # the stateful case's own data set: sentences of 5 words
    stateful_partitions: int = 1
    stateful_row_timeout: float = 1300.0  # budget of each of the stateful case's rows


@dataclass
class Outcome:
    """One row of the results: what a case measured, or why it could not."""

    case: str
    status: str = "ok"  # ok | failed | timeout | skipped
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # wall time the case took, setup included

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.error:
            out["error"] = self.error
        out.update(self.metrics)
        out["case_wall_seconds"] = round(self.seconds, 3)
        return out


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an unsorted list."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


# --- Kafka ------------------------------------------------------------------


def create_topics(bootstrap: str, names: list[str], partitions: int, timeout: float = 60.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
                                  operation_timeout=timeout, request_timeout=timeout)
    for name, fut in futures.items():
        fut.result(timeout)
    # Metadata can lag creation by a moment: wait until every topic shows all partitions, each with a leader.
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(timeout=10)
        if all(n in md.topics and len(md.topics[n].partitions) == partitions
               and all(p.leader >= 0 for p in md.topics[n].partitions.values()) for n in names):
            return
        if time.monotonic() > deadline:
            raise CaseTimeout(f"topics {names} not visible with {partitions} partitions after {timeout:.0f} s")
        time.sleep(0.1)


_SETTLING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART)


class EndOffsets:
    """The number of records a topic holds, from its partitions' high watermarks
    (a fresh topic, never compacted or truncated: high watermark = record count)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-offsets-{os.getpid()}",
                                  "enable.auto.commit": False})
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self._last = 0

    def count(self) -> int:
        """The records the topic holds; while the broker is still settling a fresh topic's
        leaders (NOT_LEADER_FOR_PARTITION and the like), the last count it gave."""
        total = 0
        for tp in self.tps:
            try:
                _low, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            except KafkaException as e:
                if not e.args[0].retriable() and e.args[0].code() not in _SETTLING:
                    raise
                return self._last
            total += max(0, high)
        self._last = total
        return total

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> EndOffsets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_count(offsets: EndOffsets, n: int, deadline: Deadline, interval: float = 0.1,
                   on_poll: Callable[[], None] | None = None) -> float:
    """Poll until the topic holds ``n`` records; returns the monotonic time it was seen.
    On timeout, raises CaseTimeout carrying how far it got."""
    while True:
        have = offsets.count()
        now = time.monotonic()
        if have >= n:
            return now
        if on_poll is not None:
            on_poll()
        if deadline.expired():
            raise PartialTimeout(f"{deadline.what}: timed out after {deadline.seconds:.0f} s with {have} of {n} "
                                 f"records in the output", have, now)
        time.sleep(interval)


class PartialTimeout(CaseTimeout):
    def __init__(self, msg: str, have: int, at: float):
        super().__init__(msg)
        self.have, self.at = have, at


def value_pool(size: int, count: int = 1024, seed: int = 7) -> list[bytes]:
    """Lower-case ASCII words and spaces, so upper-casing changes most bytes."""
    rnd = random.Random(seed)
    alphabet = string.ascii_lowercase * 4 + " "
    return ["".join(rnd.choice(alphabet) for _ in range(size)).encode() for _ in range(count)]


def produce_round_robin(bootstrap: str, topic: str, values: Iterable[bytes], partitions: int,
                        deadline: Deadline, what: str) -> float:
    """Produce ``values``, record i to partition i % partitions, no keys, waiting on a full
    queue; returns the seconds taken until every record is acknowledged."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                  "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000})
    started = time.monotonic()
    produce = p.produce
    for i, value in enumerate(values):
        while True:
            try:
                produce(topic, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.05)
                deadline.check(f"producing {what}")
        if i % 10_000 == 0:
            p.poll(0)
    while p.flush(1.0):
        deadline.check(f"flushing {what}")
    return time.monotonic() - started


def produce_dataset(bootstrap: str, topic: str, records: int, size: int, partitions: int,
                    deadline: Deadline) -> dict[str, Any]:
    """``records`` values of ``size`` bytes, round-robin over the partitions, no keys."""
    pool = value_pool(size)
    npool = len(pool)
    took = produce_round_robin(bootstrap, topic, (pool[i % npool] for i in range(records)), partitions,
                               deadline, "the data set")
    return {"topic": topic, "records": records, "size": size, "partitions": partitions,
            "produce_seconds": round(took, 3), "produce_records_per_s": round(records / took, 1)}


# --- child processes -------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None]:
    def pre() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, sig)
        except Exception:  # noqa: BLE001 - best effort: not Linux
            pass
    return pre


class Children:
    """Every process the bench starts, so all of them end when it does."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], log_path: Path, *, env: dict[str, str] | None = None,
              cwd: Path = ROOT) -> subprocess.Popen:
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=env, preexec_fn=_die_with_parent(signal.SIGTERM))
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, grace: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        return proc.returncode

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc, grace=10.0)
        self.procs.clear()


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def upper_fast_wasm() -> bytes:
    """examples/upper-fast built from source (see :func:`built_example`)."""
    return built_example(UPPER_FAST_DIR, "wasm-fast")


def go_processor_wasm() -> bytes:
    """examples/go-processor, the word counter, built from source (see :func:`built_example`)."""
    return built_example(GO_PROCESSOR_DIR, "stateful")


def built_example(example: Path, case: str) -> bytes:
    """A Go example's build/processor.wasm, built from source (its build.sh, as a user builds it),
    rebuilt when a source of it or the Go SDK is newer than the build; skips ``case`` without Go."""
    out = example / "build" / "processor.wasm"
    sources = [*example.glob("*.go"), example / "go.mod", example / "build.sh",
               *(ROOT / "examples").glob("*.sh"),  # the build steps build.sh shares with other examples
               *(ROOT / "sdk" / "go" / "fsbus").glob("*"), *(ROOT / "wit").rglob("*.wit")]
    sources = [p for p in sources if p.exists()]
    rel = example.relative_to(ROOT)
    if not out.exists() or out.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        log(f"{case}: building {rel} (Go)")
        done = subprocess.run(["bash", str(example / "build.sh")], cwd=example, capture_output=True,
                              text=True, timeout=900)
        if done.returncode != 0:
            if "not found" in done.stderr:
                raise CaseSkipped(f"skipped: {rel}/build.sh needs Go, wasm-tools and npm: "
                                  + done.stderr.strip().splitlines()[-1][:300])
            raise RuntimeError(f"{rel}/build.sh failed:\n{done.stderr[-2000:]}")
    return out.read_bytes()
