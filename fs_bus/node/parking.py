"""Parking idle function instances, and the node-wide probe that wakes them.

An idle function costs a node little CPU but its Kafka clients: a consumer and a
producer are about 8 threads and 1.2 MB (librdkafka runs a main thread, an internal
one and one per broker for each client), so 1 000 idle functions were 8 000 threads.
An instance that has seen no record for ``processor-runtime: idle-park-ms`` and has
nothing left to read **parks**: it commits, closes its clients (leaving its consumer
group cleanly) and waits. One probe per node then asks the high watermarks of every
parked partition in one ListOffsets request per cluster every ``PROBE_INTERVAL_S``,
and wakes an instance once a partition it watches has grown past where it parked.
The woken instance rejoins its group and reads from its committed offsets: nothing
is skipped, and offsets stay in the function's own group.

Only an instance alone in its group parks: parking one member of several would hand
its partitions to the others, whose records would then wake it again and again.
Where it parks at: a partition it held, at its position (which is then the high
watermark); any other partition (paused, or held by a member that has left since),
at its high watermark then, so only records that arrive later wake it. The decisions are pure functions below;
``ParkingLot`` is the probe's thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Mapping

from fs_bus.errors import FsBusError, KafkaUnavailable
from fs_bus.kafka import clients, groups
from fs_bus.kafka.budget import BUDGET
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.types import Consumer, KafkaException, TopicPartition
from fs_bus.kafka.watermarks import Partition, high_watermarks

log = logging.getLogger(__name__)

# How often the probe asks: the longest a record waits before its parked function starts
# to wake (then it rejoins its group: about 0.1-0.5 s more on a local broker).
PROBE_INTERVAL_S = 1.0
MARKS_TIMEOUT_S = 5.0
# Idle this long, an instance parks at once when another waits for a Kafka client.
SHORT_OF_CLIENTS_PARK_S = 5.0


def park_baselines(positions: Mapping[Partition, int | None],
                   marks: Mapping[Partition, tuple[int, int]]) -> dict[Partition, int] | None:
    """Where to watch each input partition from, or None when the instance must not park.

    ``positions``: the partitions the instance holds, each with the next offset it would
    process (None: not known). ``marks``: every partition it may process, with its
    (low, high) watermarks. A held partition with records left (position below high),
    or whose position is unknown while it holds records, keeps the instance running."""
    out: dict[Partition, int] = {}
    for part, pos in positions.items():
        if part not in marks:
            return None  # held, but its watermarks were not read: cannot tell
        low, high = marks[part]
        if pos is None:
            if low != high:
                return None
            pos = high  # an empty partition: nothing to read whatever the position
        if pos < high:
            return None
        out[part] = pos
    for part, (_low, high) in marks.items():
        out.setdefault(part, high)
    return out


def wake_reason(baselines: Mapping[Partition, int], highs: Mapping[Partition, int],
                failed: Mapping[Partition, str]) -> str | None:
    """Why a parked instance must wake (a record arrived, a partition is gone), or None."""
    for (topic, partition), base in baselines.items():
        if (topic, partition) in failed:
            return f"{topic}[{partition}]: {failed[(topic, partition)]}"
        high = highs.get((topic, partition))
        if high is None:
            continue  # not answered this time: ask again next time
        if high > base:
            return f"records in {topic}[{partition}] from offset {base}"
        if high < base:  # deleted and created again, or truncated: look again
            return f"{topic}[{partition}] went back from offset {base} to {high}"
    return None


def read_baselines(consumer: Consumer, topics: list[str], held: Mapping[Partition, int | None],
                   wanted: Callable[[str, int], bool]) -> dict[Partition, int] | None:
    """``park_baselines`` with the watermarks and positions read through the instance's
    consumer (fresh from the brokers, not cached); None when they cannot be read."""
    try:
        marks: dict[Partition, tuple[int, int]] = {}
        for topic in topics:
            md = consumer.list_topics(topic, timeout=MARKS_TIMEOUT_S).topics.get(topic)
            if md is None or md.error is not None:
                return None
            for p in md.partitions:
                if wanted(topic, p):
                    marks[(topic, p)] = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                                       timeout=MARKS_TIMEOUT_S, cached=False)
        positions = dict(held)
        unknown = [TopicPartition(t, p) for (t, p), offset in held.items() if offset is None]
        for tp in consumer.position(unknown) if unknown else []:
            positions[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        # Nothing fetched since it was assigned (reopened with nothing new, as after a node
        # restart): it reads on from its group's committed offset.
        unfetched = [TopicPartition(t, p) for (t, p), offset in positions.items() if offset is None]
        for tp in consumer.committed(unfetched, timeout=MARKS_TIMEOUT_S) if unfetched else []:
            positions[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
    except KafkaException as exc:
        log.debug("parking: watermarks of %s not read: %s", topics, exc)
        return None
    return park_baselines(positions, marks)


def alone_in_group(settings: KafkaSettings, group: str) -> bool:
    """Whether ``group`` has one member (the asking instance) or none; False when unknown."""
    try:
        return len(groups.members(clients.shared_admin(settings), group)) <= 1
    except FsBusError as exc:
        log.debug("parking: members of group %s not known: %s", group, exc)
        return False


@dataclass
class _Parked:
    name: str
    settings: KafkaSettings  # of the inputs' cluster
    baselines: dict[Partition, int]
    wake: Callable[[str], None]


class ParkingLot:
    """The node's parked instances and the one thread that probes their inputs."""

    def __init__(self, interval_s: float = PROBE_INTERVAL_S):
        self.interval_s = interval_s
        self._parked: dict[str, _Parked] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def park(self, name: str, settings: KafkaSettings, baselines: dict[Partition, int],
             wake: Callable[[str], None]) -> None:
        """Watch ``baselines``; call ``wake(reason)`` (once, from the probe's thread) when one moved."""
        with self._lock:
            self._parked[name] = _Parked(name, settings, dict(baselines), wake)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="node-parking", daemon=True)
                self._thread.start()

    def unpark(self, name: str) -> None:
        with self._lock:
            self._parked.pop(name, None)

    def __len__(self) -> int:
        return len(self._parked)

    def __contains__(self, name: object) -> bool:
        return name in self._parked

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.probe()
            except Exception:  # noqa: BLE001 - the probe must outlive any one bad answer
                log.exception("parking: probe failed")

    def probe(self) -> None:
        """Ask every parked partition's high watermark, one request per cluster; wake who must."""
        with self._lock:
            by_cluster: dict[str, list[_Parked]] = {}
            for parked in self._parked.values():
                by_cluster.setdefault(parked.settings.bootstrap_servers, []).append(parked)
        for servers, group in by_cluster.items():
            admin = clients.shared_admin(group[0].settings)
            partitions = sorted({part for parked in group for part in parked.baselines})
            try:
                highs, failed = high_watermarks(admin, partitions)  # type: ignore[arg-type]
            except KafkaUnavailable as exc:
                log.debug("parking: %s", exc)
                continue
            for parked in group:
                why = wake_reason(parked.baselines, highs, failed)
                if why is not None:
                    self.unpark(parked.name)
                    parked.wake(why)


class Berth:
    """One instance's side of parking: when it is due, where it parked at, waiting to be woken."""

    def __init__(self, name: str, lot: ParkingLot | None, park_after_ms: int, settings: KafkaSettings,
                 group: str = ""):
        self.name, self.group = name, group
        self._lot = lot
        self.park_after_s = park_after_ms / 1000 if lot is not None else 0.0
        self._settings = settings  # of the inputs' cluster
        self.at: dict[Partition, int] | None = None  # where to watch from, once the loop decided to park
        self.held: frozenset[Partition] | None = None  # what the instance held, while parked
        self._unpark = threading.Event()
        self.idle_s = 0.0  # how long it had been idle when it last asked to park

    def due(self, idle_s: float) -> bool:
        """Whether an instance that saw no record for ``idle_s`` seconds should try to park:
        after ``park_after_s``, or after ``SHORT_OF_CLIENTS_PARK_S`` while the process is out
        of Kafka clients and another instance waits for one (fs_bus.kafka.budget)."""
        if not self.park_after_s:
            return False
        self.idle_s = idle_s
        return idle_s >= self.park_after_s or (idle_s >= SHORT_OF_CLIENTS_PARK_S and BUDGET.short())

    def plan(self, consumer: Consumer, topics: list[str], held: Mapping[Partition, int | None],
             wanted: Callable[[str, int], bool]) -> bool:
        """Whether the instance parks now: nothing left to read (``read_baselines``, kept in
        ``at``), and it is its group's only member (parking one of several would hand its
        partitions to the others, whose records would wake it again and again)."""
        if not alone_in_group(self._settings, self.group):
            return False
        self.at = read_baselines(consumer, topics, held, wanted)
        return self.at is not None

    def park(self, held: set[Partition], close: Callable[[], None]) -> None:
        """``close`` the instance's clients, then wait until woken (a record, a call, ``wake()``)."""
        assert self._lot is not None and self.at is not None
        baselines, self.at = self.at, None
        self.held = frozenset(held)  # first: its status keeps showing them while it closes
        close()
        self._unpark.clear()
        self._lot.park(self.name, self._settings, baselines, self.wake)
        log.info("function %s: parked after %.0f s without records (held %s)%s", self.name, self.idle_s,
                 sorted(held), " to free Kafka clients" if self.idle_s < self.park_after_s else "")
        self._unpark.wait()
        self._lot.unpark(self.name)
        self.held = None

    def wake(self, why: str | None = None) -> None:
        if why is not None:
            log.info("function %s: woken: %s", self.name, why)
        self._unpark.set()
