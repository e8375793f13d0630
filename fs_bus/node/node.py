"""The node: follows the control log and converges what it runs to what it says.

Every node reads ``<ns>.control`` from offset 0 with no consumer group, folds it
into the desired table, and reconciles: a restarted or brand-new node rebuilds
everything from Kafka alone. It heartbeats and reports each function's observed
state on ``<ns>.status``. SIGTERM stops it cleanly: instances flush their outputs
and commit their offsets, and the node tombstones its status keys.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fs_bus import __version__
from fs_bus.artifacts.cache import ArtifactCache
from fs_bus.artifacts.signing import TrustedKeys
from fs_bus.calls.records import CallReply, encode_reply
from fs_bus.calls.router import route
from fs_bus.clock import now_ms
from fs_bus.control.store import ControlState
from fs_bus.kafka import budget, clients
from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.partitions import REFRESH_S, PartitionCounts
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import Topics, ensure_topics
from fs_bus.node.instance import FunctionInstance
from fs_bus.node.loader import Loader
from fs_bus.node.membership import Membership
from fs_bus.node.parking import ParkingLot
from fs_bus.node.reconcile import Action, Observed, Verb, reconcile
from fs_bus.node.rollback import AutoRollback
from fs_bus.node.stall_watch import StallWatch
from fs_bus.observability.footprint import footprint
from fs_bus.observability.logs import LOGGER_PREFIX, KafkaLogHandler
from fs_bus.observability.metrics import InstanceView, NodeMetrics
from fs_bus.placement import Placement, place
from fs_bus.runtime.wasm import WasmEngine
from fs_bus.status.records import FunctionStatus, NodeHeartbeat, ObservedState
from fs_bus.status.store import StatusWriter

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("FS_BUS_CACHE_DIR") or Path.home() / ".cache" / "fs-bus")


@dataclass
class NodeOptions:
    node_id: str = ""
    namespace: str = "fs-bus"
    cache_dir: Path | None = None
    heartbeat_interval_s: float = 2.0
    trusted_keys: tuple[Path, ...] = ()  # ed25519 public keys (PEM); when given, only what they signed runs
    metrics_port: int | None = None  # serve Prometheus metrics on it; None: don't, 0: any free port
    metrics_address: str = "0.0.0.0"
    labels: dict[str, str] = field(default_factory=dict)  # --label zone=a --label gpu: for placement.labels
    max_kafka_clients: int | None = None  # --max-kafka-clients: the process's budget (fs_bus.kafka.budget)


@dataclass
class _Entry:
    observed: Observed
    instance: FunctionInstance | None = None
    published: tuple | None = None  # the last status written, to write only changes
    ran: bool = False  # its instance of this code revision was RUNNING once (else a failure rolls back)


class Node:
    def __init__(self, settings: KafkaSettings, options: NodeOptions):
        self.settings = settings
        self.options = options
        if options.max_kafka_clients is not None:
            budget.set_limit(options.max_kafka_clients)
        self.node_id = options.node_id or socket.gethostname()
        self.topics = Topics(options.namespace)
        cache_dir = options.cache_dir or default_cache_dir()
        self.engine = WasmEngine(cache_dir / "compiled")
        trusted = TrustedKeys.load(options.trusted_keys) if options.trusted_keys else None
        self.metrics = NodeMetrics(self.node_id, __version__, views=self._instance_views)
        self.metrics_port: int | None = None  # where /metrics is served, once it is
        self.loader = Loader(settings, ArtifactCache(cache_dir / "artifacts"), self.engine,
                             cache_dir / "state" / options.namespace, cache_dir / "venvs", cache_dir / "compiled",
                             namespace=options.namespace, trusted=trusted, metrics=self.metrics)
        self.control = ControlState()
        self.entries: dict[str, _Entry] = {}
        self.parking = ParkingLot()  # idle instances parked, and the one probe that wakes them
        self._errors: dict[str, str] = {}  # why a function failed before it had an instance
        self.started_at = now_ms()
        self._wake = threading.Event()  # an instance changed state: publish soon
        self._status_producer = clients.producer(settings, "node-status")  # status and call replies
        self.status = StatusWriter(self._status_producer, self.topics.status)
        self.ready = threading.Event()  # set once the control log has been read to its end
        self._beats_stop = threading.Event()
        self._beating = threading.Thread(target=self._beat, name="node-heartbeat", daemon=True)
        watch = StallWatch(settings, lambda: [e.instance for e in list(self.entries.values()) if e.instance])
        self._watching = threading.Thread(target=watch.run, args=(self._beats_stop,), name="node-watchdog",
                                          daemon=True)
        self._log_handler: KafkaLogHandler | None = None
        self._control_producer = None
        self.rollbacks = AutoRollback(self._control_writer, self.topics.control, self.node_id)
        self.partition_counts = PartitionCounts(settings)  # for the default parallelism: input partitions
        self.membership: Membership | None = None  # the live nodes, once run() reads the status topic
        self.live: dict[str, dict[str, str]] = {}  # node id -> labels, as the last placement saw them
        self.placements: dict[str, Placement] = {}  # every function's placement, as this node computed it
        self._placed_for: dict[str, tuple] = {}  # function -> what its placement was computed from

    # --- main loop ---

    def run(self, stop: threading.Event) -> None:
        clients.check_reachable(clients.admin(self.settings), self.settings.bootstrap_servers)
        ensure_topics(clients.admin(self.settings), self.topics)
        self._start_observability()
        reader = TopicReader(clients.reader(self.settings, "node-control"), self.topics.control)
        # Calls asked before this node started were answered by others, or have expired.
        calls = TopicReader(clients.reader(self.settings, "node-calls"), self.topics.calls, from_end=True)
        self.membership = Membership(TopicReader(clients.reader(self.settings, "node-status"), self.topics.status),
                                     self.node_id, dict(self.options.labels))
        log.info("node %s: following %s on %s", self.node_id, self.topics.control, self.settings.bootstrap_servers)
        log.info("node %s: WebAssembly host: %s", self.node_id, self.engine.describe_host())
        try:
            self._heartbeat()
            # Beats on their own thread: stopping an instance whose output is throttled may
            # hold this loop for a while, and the node must not look dead meanwhile.
            self._beating.start()
            self._watching.start()  # the progress watchdog (fs_bus.node.watchdog)
            reader.read_to_end(self._fold, timeout=120)
            self.membership.read_to_end()  # who else is live: placement needs every node's view alike
            self.ready.set()
            self._reconcile()
            next_counts = now_ms()
            next_placement = now_ms() + int(REFRESH_S * 1000)  # input partitions may grow
            while not stop.is_set():
                changed = False
                # Short: an instance that changed state (_wake) is published once this returns.
                for msg in reader.poll(0.05):
                    changed |= self._fold(msg)
                self.membership.poll()
                if self.membership.live(now_ms()) != self.live or now_ms() >= next_placement:
                    changed, next_placement = True, now_ms() + int(REFRESH_S * 1000)
                if changed or self._wake.is_set():
                    self._wake.clear()
                    self._reconcile()
                for msg in calls.poll(0):
                    route(msg, self._callee, self.node_id)
                if now_ms() >= next_counts:  # counters (errors) go out once a beat while they grow
                    next_counts = now_ms() + int(self.options.heartbeat_interval_s * 1000)
                    self._publish_changes()
        finally:
            self._shutdown()
            reader.close()
            calls.close()
            self.membership.close()

    def _start_observability(self) -> None:
        """Guest log lines to the logs topic; /metrics if a port was given."""
        producer = clients.log_producer(self.settings)
        self._log_handler = KafkaLogHandler(producer, self.topics.logs, self.node_id,
                                            on_sent=self.metrics.log_lines.inc,
                                            on_dropped=self.metrics.log_lines_dropped.inc)
        logging.getLogger(LOGGER_PREFIX).addHandler(self._log_handler)
        if self.options.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.options.metrics_port, self.options.metrics_address)
            log.info("node %s: serving metrics on http://%s:%d/metrics", self.node_id,
                     self.options.metrics_address, self.metrics_port)

    def _instance_views(self) -> list[InstanceView]:
        """Read at scrape time, from the HTTP server's thread: a snapshot, no locks held long."""
        views = []
        for name, entry in list(self.entries.items()):
            inst = entry.instance
            if inst is not None:
                views.append(InstanceView(name, inst.partitions, inst.metrics.lag, parked=name in self.parking))
        return views

    def _fold(self, msg) -> bool:
        rejected = self.control.fold(msg)
        if rejected is not None:
            log.warning("node %s: skipped control record %s", self.node_id, rejected)
            return False
        return True

    def _callee(self, name: str) -> FunctionInstance | None:
        entry = self.entries.get(name)
        return entry.instance if entry is not None else None

    def _send_reply(self, reply: CallReply) -> None:
        self._status_producer.produce(self.topics.replies, key=reply.id.encode(), value=encode_reply(reply))
        self._status_producer.poll(0)

    # --- reconcile ---

    def _place(self) -> set[str]:
        """Place every function over the live nodes; return those placed on this one."""
        assert self.membership is not None
        live = self.membership.live(now_ms())
        if live != self.live:  # every placement may change; otherwise only those whose inputs did
            self.live, self._placed_for = live, {}
        placements = {}
        for name in self.control.table.functions:
            spec = self.control.spec(name)
            config = spec.config if spec is not None else None
            if config is None:  # one node says the record is unusable, not all of them
                inputs: tuple = (1, None, ())
            else:
                partitions = None if config.parallelism else self.partition_counts.for_config(config)
                inputs = (config.parallelism, partitions, tuple(sorted(config.placement_labels.items())))
            known = self._placed_for.get(name)
            if known is not None and known[0] == inputs:
                placements[name] = known[1]
                continue
            placements[name] = place(name, self.live, parallelism=inputs[0], partitions=inputs[1],
                                     labels=dict(inputs[2]))
            self._placed_for[name] = (inputs, placements[name])
        if len(self._placed_for) > len(placements):  # dropped functions
            self._placed_for = {n: v for n, v in self._placed_for.items() if n in placements}
        self.placements = placements
        return {name for name, pl in placements.items() if self.node_id in pl.nodes}

    def _reconcile(self) -> None:
        self._sync_observed()
        observed = {name: e.observed for name, e in self.entries.items()}
        actions = reconcile(self.control.table.functions, observed, self._place())
        for action in actions:  # instances to close close side by side, each flushing and committing
            entry = self.entries.get(action.name)
            if action.verb in (Verb.UNPLACE, Verb.STOP, Verb.REMOVE) and entry and entry.instance:
                entry.instance.request_stop()
        for action in actions:
            try:
                self._act(action)
            except Exception as exc:  # noqa: BLE001 - one function's trouble never stops the node
                log.exception("node %s: %s %s failed", self.node_id, action.verb.value, action.name)
                if action.record is not None:
                    self._fail(action.name, action.record, str(exc))
        self._publish_changes()

    def _sync_observed(self) -> None:
        for entry in self.entries.values():
            inst = entry.instance
            if inst is not None and inst.state != entry.observed.state:
                entry.observed = Observed(entry.observed.record, inst.state)
            entry.ran = entry.ran or entry.observed.state is ObservedState.RUNNING
        for name, entry in list(self.entries.items()):
            error = entry.instance.error if entry.instance is not None else self._errors.get(name)
            try:
                self.rollbacks.consider(self.control, entry.observed.record,
                                        entry.observed.state is ObservedState.FAILED, entry.ran, error)
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.exception("node %s: writing the rollback of %s failed", self.node_id, name)

    def _control_writer(self):
        if self._control_producer is None:
            self._control_producer = clients.producer(self.settings, "node-control", **{"enable.idempotence": False})
        return self._control_producer

    def _act(self, action: Action) -> None:
        name, rec = action.name, action.record
        entry = self.entries.get(name)
        if action.verb is Verb.UNPLACE:  # its state stays on disk: a cache, should it come back
            if entry and entry.instance:
                entry.instance.stop()
            self.entries.pop(name, None)
            self.metrics.forget(name)
            self.status.function(name, self.node_id, None)
            log.info("node %s: %s is placed on %s now", self.node_id, name,
                     ", ".join(self.placements[name].nodes) or "no node")
            return
        if action.verb is Verb.REMOVE:
            if entry and entry.instance:
                entry.instance.stop()
            self.entries.pop(name, None)
            self.loader.drop_state(name)
            self.metrics.forget(name)
            self.status.function(name, self.node_id, None)
            log.info("node %s: removed %s", self.node_id, name)
            return
        assert rec is not None
        if action.verb in (Verb.STOP, Verb.RESTART, Verb.START) and entry and entry.instance:
            entry.instance.stop()  # START: a FAILED instance may still be retrying its old revision
            entry.instance = None
        if action.verb in (Verb.START, Verb.RESTART):
            spec = self.control.spec(name)
            assert spec is not None and spec.record is rec
            if spec.config is None:  # anyone can write the topic: its config was validated again
                self._fail(name, rec, f"invalid config: {spec.error}")
                return
            self.loader.drop_other_generations(rec)
            instance = FunctionInstance(name, spec.config, lambda: self.loader.prepare(spec),
                                        self.settings, self._wake.set, reply=self._send_reply, node_id=self.node_id,
                                        changelog_topics=spec.changelog_topics(self.options.namespace),
                                        transactional_id=spec.transactional_id(self.options.namespace, self.node_id),
                                        metrics=self.metrics.for_function(name), parking=self.parking,
                                        tag_sources=rec.source_headers)
            self.entries[name] = _Entry(Observed(rec, ObservedState.STARTING), instance,
                                        entry.published if entry else None)
            instance.start()
            log.info("node %s: starting %s (revision %d)", self.node_id, name, rec.revision)
            return
        if action.verb is Verb.STOP:
            self.entries[name] = _Entry(Observed(rec, ObservedState.STOPPED), None, entry.published if entry else None)
            log.info("node %s: stopped %s", self.node_id, name)
            return
        # ACKNOWLEDGE: nothing runs or stops; the revision moves on.
        active = entry is not None and entry.observed.active
        state = entry.observed.state if active else ObservedState.STOPPED
        if not active and entry is not None and entry.instance is not None:
            entry.instance.stop()  # a FAILED instance retrying in the background
        instance = entry.instance if active else None
        self.entries[name] = _Entry(Observed(rec, state), instance, entry.published if entry else None,
                                    entry is not None and entry.ran and entry.observed.record.spec_key == rec.spec_key)

    def _fail(self, name: str, rec, reason: str) -> None:
        entry = self.entries.get(name)
        self.entries[name] = _Entry(Observed(rec, ObservedState.FAILED), None, entry.published if entry else None)
        self._errors[name] = reason

    # --- status ---

    def _publish_changes(self) -> None:
        for name, entry in self.entries.items():
            inst = entry.instance
            if entry.observed.state is ObservedState.FAILED:
                error = inst.error if inst is not None else self._errors.get(name)
            else:
                error = inst.notice if inst is not None else None
            partitions = tuple(inst.partitions) if inst is not None else ()
            errors = inst.metrics.errors if inst is not None else 0
            rec = entry.observed.record
            snapshot = (rec.revision, entry.observed.state, error, partitions, errors)
            if snapshot == entry.published:
                continue
            status = FunctionStatus(name, self.node_id, rec.revision, entry.observed.state,
                                    error, partitions, now_ms(), errors, rec.code_revision)
            self.status.function(name, self.node_id, status)
            entry.published = snapshot

    def _beat(self) -> None:
        while not self._beats_stop.wait(self.options.heartbeat_interval_s):
            try:
                self._heartbeat()
            except Exception:  # noqa: BLE001 - a missed beat is logged; the next one may go out
                log.exception("node %s: heartbeat failed", self.node_id)

    def _heartbeat(self) -> None:
        running = sum(1 for e in list(self.entries.values()) if e.instance is not None)
        rss, threads = footprint()
        hb = NodeHeartbeat(self.node_id, socket.gethostname(), os.getpid(), __version__, self.started_at,
                           now_ms(), int(self.options.heartbeat_interval_s * 1000), running,
                           dict(self.options.labels), rss, threads)
        self.status.heartbeat(self.node_id, hb)

    def _shutdown(self) -> None:
        log.info("node %s: shutting down", self.node_id)
        for entry in list(self.entries.values()):
            if entry.instance is not None:
                entry.instance.request_stop()  # all at once; each still flushes and commits
        for name, entry in list(self.entries.items()):
            if entry.instance is not None:
                entry.instance.stop()
            self.status.function(name, self.node_id, None)
        self.parking.close()
        self._beats_stop.set()  # the last beat must not follow the goodbye
        if self._beating.is_alive():
            self._beating.join(10)
        self.status.heartbeat(self.node_id, None)
        self._status_producer.flush(10)
        if self._log_handler is not None:  # after the instances: their last lines go out too
            logging.getLogger(LOGGER_PREFIX).removeHandler(self._log_handler)
            self._log_handler.close()
        self.metrics.close()
        self.engine.close()
