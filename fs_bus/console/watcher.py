"""Follows a namespace's control and status topics and measures its functions, once per tick.

One reader per topic follows it from offset 0 for as long as the console runs (no
consumer group, nothing committed), so a tick costs a poll, not a re-read of the
topics as each CLI command does. Lag and throughput come from the admin API: the
function group's committed offsets and the end offsets of its inputs and outputs.
Each tick makes a new immutable snapshot; server-sent-event streams wait for the next.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fs_bus.kafka.types import AdminClient, KafkaException, OffsetSpec

from fs_bus.config.model import FunctionConfig
from fs_bus.config.validate import parse_config
from fs_bus.console import model
from fs_bus.control.store import ControlState
from fs_bus.errors import FsBusError
from fs_bus.kafka import clients, groups
from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import Topics
from fs_bus.status import records as status
from fs_bus.status.records import StatusTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What the console knows at one tick; ``version`` grows by one per tick."""

    version: int
    at_ms: int
    functions: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None  # why this tick could not read Kafka, for the page's banner


class ClusterWatcher:
    """A thread that keeps a fresh :class:`Snapshot` of one fs-bus namespace."""

    def __init__(self, settings: KafkaSettings, namespace: str, interval_s: float = 2.0):
        self.settings = settings
        self.topics = Topics(namespace)
        self.interval_s = interval_s
        self._control = ControlState()
        self._history: dict[str, tuple[model.Revision, ...]] = {}
        self._status = StatusTable()
        self._samples: dict[str, model.Samples] = {}
        self._configs: dict[str, FunctionConfig] = {}  # parsed once per config text
        self._readers: dict[str, TopicReader] = {}
        self._admins: dict[str, AdminClient] = {}
        self._snapshot = Snapshot(0, 0, error="reading Kafka…")
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-watcher", daemon=True)

    # --- for the server ---

    def start(self) -> ClusterWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(10)
        for reader in self._readers.values():
            reader.close()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def wait_newer(self, version: int, timeout: float) -> Snapshot:
        """The first snapshot newer than ``version``; the current one after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._snapshot.version > version or self._stop.is_set(), timeout)
            return self._snapshot

    def poke(self) -> None:
        """Tick now (after a write), rather than at the next interval."""
        self._poke.set()

    # --- the loop ---

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                snap = self._tick()
            except FsBusError as exc:
                log.warning("console: %s", exc)
                snap = Snapshot(self._snapshot.version + 1, _now_ms(), self._snapshot.functions,
                                self._snapshot.nodes, self._snapshot.details, error=str(exc))
                self._drop_readers()
            except Exception as exc:  # noqa: BLE001 - the console keeps serving what it knew
                log.exception("console: tick failed")
                snap = Snapshot(self._snapshot.version + 1, _now_ms(), self._snapshot.functions,
                                self._snapshot.nodes, self._snapshot.details, error=f"{type(exc).__name__}: {exc}")
            with self._changed:
                self._snapshot = snap
                self._changed.notify_all()
            self._poke.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
            self._poke.clear()

    def _tick(self) -> Snapshot:
        self._follow(self.topics.control, self._fold_control)
        self._follow(self.topics.status, self._fold_status)
        now = _now_ms()
        live = self._status.live_nodes(now)
        functions, details = [], {}
        for name in sorted(self._control.table.functions):
            rec = self._control.table.functions[name]
            lags, out_total = self._measure(rec.config_yaml, name)
            samples = self._samples.setdefault(name, model.Samples())
            statuses = self._status.of_function(name)
            if lags is not None:
                samples.add(model.Sample(now, sum(pl.committed or 0 for pl in lags), out_total or 0,
                                         sum(pl.lag for pl in lags), sum(st.errors for st in statuses.values())))
            view = model.function_view(rec, statuses, live, lags, samples)
            functions.append(view)
            details[name] = model.function_detail(rec, view, statuses, live, self._history.get(name, ()),
                                                   self._control.history.of(name))
        for gone in set(self._samples) - set(self._control.table.functions):
            del self._samples[gone]  # dropped: a function created again under its name starts afresh
        return Snapshot(self._snapshot.version + 1, now, functions, model.node_views(self._status, now), details)

    def _follow(self, topic: str, fold) -> None:
        reader = self._readers.get(topic)
        if reader is None:
            reader = TopicReader(clients.consumer(self.settings, "console"), topic)
            self._readers[topic] = reader
            reader.read_to_end(fold)
        for m in reader.poll(0.05):
            fold(m)

    def _drop_readers(self) -> None:
        # After an error, start again from offset 0: the tables are rebuilt whole.
        for reader in self._readers.values():
            try:
                reader.close()
            except Exception:  # noqa: BLE001
                pass
        self._readers.clear()
        self._control, self._status, self._history = ControlState(), StatusTable(), {}

    def _fold_control(self, msg) -> None:
        if self._control.fold(msg) is None:
            self._history = model.fold_history(self._history, msg.key(), msg.value(), msg.offset(),
                                               msg.timestamp()[1])

    def _fold_status(self, msg) -> None:
        try:
            self._status = status.apply(self._status, msg.key(), msg.value())
        except FsBusError:
            pass  # a record this version cannot read is skipped, as nodes and the client do

    def _measure(self, config_yaml: str, name: str) -> tuple[list[groups.PartitionLag] | None, int | None]:
        """The group's lag per input partition, and its outputs' end offsets summed."""
        config = self._configs.get(config_yaml)
        if config is None:
            try:
                config = parse_config(config_yaml)
            except FsBusError:
                return None, None
            self._configs[config_yaml] = config
        inputs = config.inputs
        try:
            lags = groups.lag(self._admin(inputs[0].bootstrap_servers), config.group_id,
                              sorted({i.topic for i in inputs}))
        except FsBusError as exc:
            log.info("function %r: no lag: %s", name, exc)  # e.g. no ACL to describe its group
            return None, None
        total = 0
        for out in config.outputs:
            total += self._end_offsets(out.bootstrap_servers, out.topic)
        return lags, total

    def _end_offsets(self, servers: str, topic: str) -> int:
        admin = self._admin(servers)
        tps = groups.partitions_of(admin, [topic], timeout=10)
        if not tps:
            return 0  # not created yet: nothing written
        futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=10)
        try:
            return sum(f.result().offset for f in futures.values())
        except KafkaException:
            return 0

    def _admin(self, servers: str) -> AdminClient:
        admin = self._admins.get(servers)
        if admin is None:
            admin = self._admins[servers] = clients.admin(self.settings.for_servers(servers))
        return admin


def _now_ms() -> int:
    return int(time.time() * 1000)

