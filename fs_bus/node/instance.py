"""A function instance: this node's member of the function's consumer group.

It owns one consumer (in the group named by the config), one producer per output
cluster, and a partition worker per assigned partition. Kafka's group protocol
spreads partitions across every node running the function; the instance follows
assignments (cooperative-sticky: a node joining or leaving moves only the
partitions that must move). A worker is created, its state restored from its
changelog, before its partition's first record; on revocation everything done
is flushed and committed before the worker closes.

At a commit point, in this order: each worker's checkpoint (the guest's hook;
its state changes sealed), the changes written to the changelogs, outputs and
changes acknowledged, local state committed with its changelog offset, input
offsets committed. So a crash replays records onto state that may hold them
(at-least-once), never skips one.

With ``processing.guarantee: exactly_once`` one transactional producer writes
outputs and changelog records, and the input offsets go into the same
transaction (with the consumer group's metadata, so a zombie is fenced);
local state is committed only after the transaction is. A failure aborts the
transaction and reopens from the committed offsets.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from fs_bus.config.model import ErrorPolicy, FunctionConfig, Guarantee
from fs_bus.errors import (
    ArtifactError, BatchFailed, FsBusError, GuestError, InvalidArtifact, InvalidConfig, KafkaUnavailable,
    RecordFailed,
)
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import ensure_changelog_topics, ensure_data_topics, partition_counts
from fs_bus.node.worker import Changelogged, PartitionWorker
from fs_bus.observability.metrics import FunctionMetrics, consumer_lag
from fs_bus.calls.records import CallReply, CallRequest
from fs_bus.runtime.base import Emitted, Processor
from fs_bus.state.backend import StateBackend
from fs_bus.state.changelog import DELETE_RETENTION_MS, encode_key
from fs_bus.status.records import ObservedState

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PartitionRuntime:
    """What a partition worker runs: user code, the state it sees, and that state's changelog side."""

    processor: Processor
    state: StateBackend | None  # None: the state lives with the processor (a Python function's process)
    changelog: Changelogged | None = None
    changelog_next: int = 0  # the changelog partition's offset after what the state holds


# Given the function's code, build each partition worker's runtime, its state restored.
ProcessorFactory = Callable[[str, int], PartitionRuntime]
Prepare = Callable[[], ProcessorFactory]
ReplySink = Callable[[CallReply], None]
HEARTBEAT_CHECK_INTERVAL_S = 5.0
LAG_REFRESH_INTERVAL_S = 1.0
# Under exactly-once the transaction commits this often (Kafka Streams' default) unless
# commit.interval.ms says otherwise: the latency a read_committed reader sees.
EOS_COMMIT_INTERVAL_S = 0.1
# A node killed -9 holds its partitions until the group's session timeout; librdkafka's
# 45 s default is long for a stream processor. Inputs' properties override these.
CONSUMER_DEFAULTS = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000}
# Partition batches run at once, at most this many (threads waiting on guests that run
# without the GIL, or on Python functions' processes).
PARALLEL_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
# An open transaction of a node killed -9 blocks read_committed readers until it times out.
TRANSACTION_TIMEOUT_MS = 15_000
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0
# librdkafka waits out a whole call's timeout (30 s) on a cluster that is not there; the
# function says so (FAILED, retried) well before a client's CREATE stops waiting.
REACH_TIMEOUT_S = 10.0
# Failures a retry cannot mend: bad artifact, bad config, a type the node can't run.
PERMANENT = (InvalidArtifact, ArtifactError, InvalidConfig)


class FunctionInstance:
    def __init__(self, name: str, config: FunctionConfig, prepare: Prepare, settings: KafkaSettings,
                 on_change: Callable[[], None], reply: ReplySink | None = None, node_id: str = "",
                 changelog_topics: dict[str, str] | None = None, transactional_id: str | None = None,
                 metrics: FunctionMetrics | None = None):
        self.name = name
        # Counted per batch; the error policy calls ``metrics.dead_lettered(n)``.
        self.metrics = metrics or FunctionMetrics(None, name)
        self.node_id = node_id
        self._changelogs = changelog_topics or {}  # input topic -> its changelog topic
        self._exactly_once = config.guarantee is Guarantee.EXACTLY_ONCE
        self._transactional_id = transactional_id or f"fs-bus.{name}.{node_id}"
        self._txn: Producer | None = None  # exactly-once: the one transactional producer
        self._in_txn = False
        self._restart_reason: str | None = None  # set in a rebalance callback, raised after consume()
        self._changelog_producer: Producer | None = None  # the inputs' cluster: changelogs, dead letters
        self._pool: ThreadPoolExecutor | None = None  # runs several partitions' batches at once
        # Error policy: failures per record (topic, partition, offset) -> attempts, across
        # reopenings; records whose policy settles them on their next delivery.
        self._failures: dict[tuple[str, int, int], int] = {}
        self._settle: dict[tuple[str, int], dict[int, str]] = {}
        self.skipped = 0
        self.dead_lettered = 0
        self._reply = reply
        self._calls: queue.SimpleQueue[CallRequest] = queue.SimpleQueue()
        self.notice: str | None = None  # something worth showing while RUNNING (an instance restart)
        self._careful: dict[tuple[str, int], int] = {}  # partition -> last offset of a batch that died
        self.config = config
        self._prepare = prepare
        self._settings = settings
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fn-{name}", daemon=True)
        self._lock = threading.Lock()
        self.state = ObservedState.STARTING
        self._first_assignment = False  # the next assignment makes the instance RUNNING
        self.error: str | None = None
        self.workers: dict[tuple[str, int], PartitionWorker] = {}
        self._factory: ProcessorFactory | None = None
        self._consumer: Consumer | None = None
        self._producers: dict[str, Producer] = {}
        self._targets: list[tuple[Callable[..., None], str, int]] = []  # per output: produce, topic, partition
        self._delivery_errors: list[str] = []
        self._sources = {i.topic: n for n, i in enumerate(config.inputs)}
        self._only = {(i.topic, i.partition) for i in config.inputs if i.partition is not None}
        self._only_topics = {t for t, _ in self._only}
        # Calls go to the instance owning the lowest partition it may process of its first input.
        first = config.inputs[0]
        self._call_partition = (first.topic, first.partition if first.partition is not None else 0)

    # --- lifecycle (called from the node's thread) ---

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("function %s did not stop within %.0f s", self.name, timeout)

    def submit_call(self, request: CallRequest) -> bool:
        """Queue a call if this instance answers the function's calls; False if it does not."""
        with self._lock:
            owns = self._call_partition in self.workers
        if owns:
            self._calls.put(request)
        return owns

    @property
    def partitions(self) -> list[str]:
        with self._lock:
            return sorted(w.label for w in self.workers.values())

    # --- the instance's own thread ---

    def _set(self, state: ObservedState, error: str | None = None) -> None:
        self.state, self.error = state, error
        self._on_change()

    def _run(self) -> None:
        """Run until stopped. User code that fails is retried with back-off: the
        instance reopens from the last committed offsets, so a poison record fails
        again (status FAILED, with why) and a transient fault heals by itself."""
        attempt = 0
        while True:
            try:
                if self._factory is None:
                    self._factory = self._prepare()
                self._open()
                # RUNNING once the group's first assignment has its workers (user code's init
                # ran): a CREATE waits for that verdict, so an init that raises fails it.
                self._first_assignment = attempt == 0
                self._loop()
                self._close(commit=True)
                self._set(ObservedState.STOPPED)
                return
            except PERMANENT as exc:
                # Nothing a retry can change: the code or its config is wrong.
                log.error("function %s failed: %s", self.name, exc)
                self._close(commit=False)
                self._set(ObservedState.FAILED, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - whatever breaks, the node stays up and says why
                reason = str(exc) if isinstance(exc, FsBusError) else f"{type(exc).__name__}: {exc}"
                if isinstance(exc, GuestError):
                    self.metrics.error()
                elif not isinstance(exc, FsBusError):  # ours say why without a traceback (logged below)
                    log.exception("function %s failed", self.name)
                self._close(commit=False)
                if isinstance(exc, RecordFailed) and exc.give_up:
                    log.error("function %s failed: %s", self.name, reason)
                    self._set(ObservedState.FAILED, f"{reason} (failed {exc.attempts} times; errors.policy is fail: "
                                                    "STOP and START the function to try again)")
                    return
                if isinstance(exc, RecordFailed) and exc.settled:
                    continue  # reopen at once: the record is skipped or dead-lettered this time
                attempt += 1
                delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempt - 1))
                log.warning("function %s failed (attempt %d), retrying in %.0f s: %s", self.name, attempt, delay,
                            reason)
                self._set(ObservedState.FAILED, f"{reason} (retry {attempt} in {delay:.0f} s)")
                if self._stop.wait(delay):
                    self._set(ObservedState.STOPPED)
                    return

    def _check_clusters(self) -> None:
        cfg = self.config
        seen: set[str] = set()
        for role, servers in [("input", cfg.inputs[0].bootstrap_servers)] + [("output", o.bootstrap_servers)
                                                                             for o in cfg.outputs]:
            if servers in seen:
                continue
            seen.add(servers)
            try:
                clients.probe(self._settings.for_servers(servers), REACH_TIMEOUT_S, self._stop.is_set)
            except KafkaUnavailable as exc:
                raise KafkaUnavailable(f"its {role} cluster cannot be reached: {exc}; check bootstrap_servers in "
                                       "its config") from None

    def _open(self) -> None:
        clients.check_properties(self.config)  # InvalidConfig: permanent, FAILED with the key's path
        self._check_clusters()
        cfg = self.config
        first = cfg.inputs[0]
        in_settings = self._settings.for_servers(first.bootstrap_servers)
        topics = sorted(self._sources)
        created = ensure_data_topics(clients.admin(in_settings),
                                     topics + ([cfg.dead_letter_topic] if cfg.dead_letter_topic else []))
        created += ensure_data_topics(
            clients.admin(self._settings.for_servers(cfg.outputs[0].bootstrap_servers)),
            sorted({o.topic for o in cfg.outputs}))
        if self._changelogs:
            admin = clients.admin(in_settings)
            counts = partition_counts(admin, topics)
            created += ensure_changelog_topics(
                admin, {self._changelogs[t]: n for t, n in counts.items() if t in self._changelogs},
                DELETE_RETENTION_MS)
        if created:
            log.info("function %s: created missing topics %s", self.name, created)
        props: dict[str, str] = {}
        for i in cfg.inputs:
            props.update(i.properties)
        self._consumer = clients.consumer(
            in_settings, f"fn-{self.name}", group_id=cfg.group_id,
            **{"partition.assignment.strategy": "cooperative-sticky",
               "topic.metadata.refresh.interval.ms": 10_000,
               "auto.offset.reset": "earliest", **CONSUMER_DEFAULTS, **props})
        if self._exactly_once:
            out_props: dict[str, str] = {}
            for out in cfg.outputs:
                out_props.update(out.properties)
            self._txn = clients.producer(
                in_settings, f"fn-{self.name}",
                **{"transactional.id": self._transactional_id, "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                   "on_delivery": self._on_delivery, "delivery.report.only.error": True,
                   "queue.buffering.max.messages": max(cfg.outputs[0].runtime.channel_capacity, 1000),
                   **out_props})
            self._txn.init_transactions(30)  # fences (and aborts) this id's earlier incarnation
            self._producers[first.bootstrap_servers] = self._txn
        for out in cfg.outputs:
            if out.bootstrap_servers not in self._producers:
                self._producers[out.bootstrap_servers] = clients.producer(
                    self._settings.for_servers(out.bootstrap_servers), f"fn-{self.name}",
                    **{"queue.buffering.max.messages": max(out.runtime.channel_capacity, 1000),
                       # delivery reports for failures only, to one callback: no Python call per record
                       "on_delivery": self._on_delivery, "delivery.report.only.error": True,
                       **out.properties})
        if first.bootstrap_servers not in self._producers:
            self._producers[first.bootstrap_servers] = clients.producer(
                in_settings, f"fn-{self.name}", on_delivery=self._on_delivery, **{"delivery.report.only.error": True})
        self._changelog_producer = self._producers[first.bootstrap_servers]
        # Per output target: what _emit needs, looked up once.
        self._targets = [(self._producers[o.bootstrap_servers].produce, o.topic, -1 if o.partition is None else o.partition)
                         for o in cfg.outputs]
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)

    # Rebalance callbacks run inside consume(), on this thread.
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        paused = []
        for tp in partitions:
            if tp.topic in self._only_topics and (tp.topic, tp.partition) not in self._only:
                paused.append(tp)  # the config names other partitions of this topic
                continue
            assert self._factory is not None
            rt = self._factory(tp.topic, tp.partition)
            worker = PartitionWorker(tp.topic, tp.partition, self._sources[tp.topic], rt.processor, rt.state,
                                     changelog=rt.changelog, changelog_next=rt.changelog_next)
            with self._lock:
                self.workers[(tp.topic, tp.partition)] = worker
        if paused:
            consumer.pause(paused)
        log.info("function %s: assigned %s", self.name, [f"{t.topic}:{t.partition}" for t in partitions])
        if self._first_assignment:  # also when it got no partition: a member with nothing to do runs too
            self._first_assignment = False
            self.state, self.error = ObservedState.RUNNING, None
        self._on_change()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            self._flush_and_commit(consumer)
        except Exception as exc:  # noqa: BLE001 - an exception here would escape from librdkafka's callback
            log.warning("function %s: commit on revocation failed: %s", self.name, exc)
            # The partitions kept ran records whose results are now lost: start over from the commit.
            self._restart_reason = f"commit on revocation failed: {exc}"
        self._drop_workers(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group moved on without us: what we did not commit belongs to others now.
        if self._in_txn:
            self._restart_reason = "partitions lost with a transaction open"
        self._drop_workers(partitions)

    def _drop_workers(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            with self._lock:
                worker = self.workers.pop((tp.topic, tp.partition), None)
            if worker is not None:
                worker.close()
        self._on_change()

    def _loop(self) -> None:
        assert self._consumer is not None
        batch = max(1, self.config.inputs[0].runtime.batch_consume_size)
        timeout = max(0.01, self.config.inputs[0].runtime.poll_timeout_ms / 1000)
        max_batch = max(1, self.config.processor_runtime.max_batch_size)
        # checkpoint_interval_seconds bounds the time between two commit (checkpoint) points;
        # exactly-once commits its transaction on a short interval instead of per batch.
        interval = float(self.config.checkpoint_interval_seconds)
        if self.config.commit_interval_ms is not None:
            interval = self.config.commit_interval_ms / 1000
        elif self._exactly_once:
            interval = EOS_COMMIT_INTERVAL_S
        full = max_batch if not self._exactly_once else 50 * max_batch
        pending = 0
        last_commit = time.monotonic()
        next_health_check = time.monotonic() + HEARTBEAT_CHECK_INTERVAL_S
        next_lag = 0.0
        take = min(batch, max_batch)
        while not self._stop.is_set():
            msgs = clients.take(self._consumer, take, timeout)
            if self._restart_reason is not None:
                reason, self._restart_reason = self._restart_reason, None
                raise FsBusError(f"function {self.name}: {reason}")
            pending += self._run_batches(_by_partition(msgs, self._consumer_error))
            if msgs:
                self._advance_watermarks()
            if pending and (pending >= full or not msgs or time.monotonic() - last_commit >= interval):
                self._flush_and_commit(self._consumer)
                pending, last_commit = 0, time.monotonic()
            self._answer_calls()
            if time.monotonic() >= next_health_check:
                self._check_health()
                next_health_check = time.monotonic() + HEARTBEAT_CHECK_INTERVAL_S
            if time.monotonic() >= next_lag:
                self._refresh_lag()
                next_lag = time.monotonic() + LAG_REFRESH_INTERVAL_S

    def _refresh_lag(self) -> None:
        """Each partition's lag, for the metrics, from librdkafka's cached high watermarks
        (every fetch response updates them): no broker round trip. Only this thread
        touches the consumer, so this runs here and scrapes read the result."""
        consumer = self._consumer
        assert consumer is not None
        with self._lock:
            positions = {k: w.next_offset for k, w in self.workers.items()}
        highs: dict[tuple[str, int], int] = {}
        for topic, partition in positions:
            try:
                highs[(topic, partition)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True)[1]
            except KafkaException:
                pass  # not fetched yet: no number rather than a wrong one
        unknown = [TopicPartition(t, p) for (t, p), offset in positions.items() if offset is None]
        try:
            if unknown:  # nothing processed since assignment: where the consumer will fetch from
                for tp in consumer.position(unknown):
                    positions[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        except KafkaException:
            pass  # a metric is never worth failing the function for
        self.metrics.lag = consumer_lag(highs, positions)

    def _run_batches(self, groups: dict[tuple[str, int], list[Message]]) -> int:
        """Run each partition's batch; several partitions at once when there are several
        and their engines spend a batch outside the GIL.

        A batch of the fast world is one long wasmtime call without the GIL, and a Python
        function runs in its own process, so their partitions really run in parallel.
        The reference world makes a short call per record and calls back into Python for
        every emit: threads would trade the GIL on every record, and in process four
        partitions on threads ran at less than half the rate of the same four one after
        another. Outputs are produced here, partition by partition, in order. A failing
        partition does not stop the others' results from going out (their workers have
        moved on): the first failure is raised once all are handled.
        """
        ran: dict[tuple[str, int], Future] = {}
        if len(groups) > 1 and not any(self._settle.get(k) or k in self._careful for k in groups):
            with self._lock:
                workers = {k: self.workers.get(k) for k in groups}
        else:
            workers = {}
        if workers and all(w is None or getattr(w.processor, "parallel_batches", False) for w in workers.values()):
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=PARALLEL_WORKERS, thread_name_prefix=f"fn-{self.name}")
            ran = {k: self._pool.submit(_timed, w.process_batch, groups[k]) for k, w in workers.items() if w is not None}
            wait(ran.values())
        done, failure = 0, None
        for (topic, partition), group in groups.items():
            try:
                done += self._handle_batch(topic, partition, group, ran.get((topic, partition)))
            except Exception as exc:  # noqa: BLE001 - raised below, after the other partitions' outputs
                failure = failure or exc
        if failure is not None:
            raise failure
        return done

    def _advance_watermarks(self) -> None:
        with self._lock:
            workers = list(self.workers.values())
        marks = source_watermarks([(w.source_id, w.max_timestamp) for w in workers])
        for w in workers:
            if w.source_id in marks:
                self._emit(w.advance_watermark(marks[w.source_id]), f"watermark of {w.label}")

    def _answer_calls(self) -> None:
        while True:
            try:
                request = self._calls.get_nowait()
            except queue.Empty:
                return
            if request.deadline < time.time() * 1000:
                continue  # the caller has given up
            with self._lock:
                worker = self.workers.get(self._call_partition)
            label = f"{self._call_partition[0]}:{self._call_partition[1]}"
            if worker is None:
                continue  # the partition moved on; the new owner's node sees the call too
            try:
                reply = CallReply(request.id, self.name, self.node_id, label, True, worker.processor.custom(request.payload))
            except GuestError as exc:
                reply = CallReply(request.id, self.name, self.node_id, label, False, b"", str(exc))
                if getattr(worker.processor, "broken", False):
                    self._restart_worker(worker, f"fs-custom failed: {exc}")
            if self._reply is not None:
                self._reply(reply)

    def _check_health(self) -> None:
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            healthy = True
            try:
                healthy = w.processor.check_heartbeat()
            except GuestError as exc:
                log.warning("function %s: fs-check-heartbeat on %s failed: %s", self.name, w.label, exc)
                healthy = False
            if not healthy:
                self._restart_worker(w, "fs-check-heartbeat returned false")

    def _restart_worker(self, worker: PartitionWorker, why: str) -> None:
        """Replace an unhealthy instance; its partition's state and offsets carry over."""
        assert self._consumer is not None and self._factory is not None
        self._flush_and_commit(self._consumer)
        worker.close()
        rt = self._factory(worker.topic, worker.partition)
        fresh = PartitionWorker(worker.topic, worker.partition, worker.source_id, rt.processor, rt.state,
                                next_offset=worker.next_offset, max_timestamp=worker.max_timestamp,
                                watermark_sent=worker.watermark_sent, changelog=rt.changelog,
                                changelog_next=rt.changelog_next)
        with self._lock:
            self.workers[(worker.topic, worker.partition)] = fresh
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self.notice = f"{stamp} UTC: instance for {worker.label} restarted: {why}"
        log.warning("function %s: %s", self.name, self.notice)
        self._on_change()

    def _emit(self, emitted: Emitted | None, where: str | Callable[[], str], key: bytes | None = None) -> None:
        """Produce what user code emitted: a ``(target, data)`` record keeps the input
        record's key (``key``), a ``(target, data, key, headers)`` one has its own.
        ``where`` (or what it returns) names the record in an error message.

        The hot path of every function: one ``produce`` call per record and nothing
        else per record (no delivery callback, no log line, no message string)."""
        if emitted is None or not emitted.records:
            return
        if self._txn is not None and not self._in_txn:
            self._begin()  # exactly-once: every output belongs to the open transaction
        targets = self._targets
        n = len(targets)
        for rec in emitted.records:
            target = rec[0]
            if not 0 <= target < n:
                raise GuestError(f"function {self.name!r} emitted to target {target}, but its config has "
                                 f"{n} output(s) ({where if isinstance(where, str) else where()})")
            produce, topic, partition = targets[target]
            try:
                if len(rec) == 2:
                    produce(topic, rec[1], key, partition)
                elif rec[3] is None:
                    produce(topic, rec[1], rec[2], partition)
                else:
                    produce(topic, rec[1], rec[2], partition, headers=rec[3])
            except BufferError:  # the output buffer is full: the slow road waits for room
                out = self.config.outputs[target]
                producer = self._producers[out.bootstrap_servers]
                if len(rec) == 2:
                    self._produce(producer, out.topic, out.partition, key, rec[1])
                else:
                    self._produce(producer, out.topic, out.partition, rec[2], rec[1], rec[3])

    def _consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise FsBusError(f"function {self.name}: consumer failed: {err.str()}")
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("function %s: consumer: %s", self.name, err.str())

    def _handle_batch(self, topic: str, partition: int, msgs: list[Message], ran: Future | None = None) -> int:
        """Run one partition's records through its worker, in order; return how many ran.
        ``ran``: the worker already ran them (in parallel with other partitions)."""
        settle = self._settle.get((topic, partition))
        if settle:
            for i, msg in enumerate(msgs):
                reason = settle.pop(msg.offset(), None)
                if reason is not None:  # its retries are spent: the error policy decides
                    done = self._handle_batch(topic, partition, msgs[:i]) if i else 0
                    self._settle_record(topic, partition, msg, reason)
                    return done + 1 + (self._handle_batch(topic, partition, msgs[i + 1:]) if msgs[i + 1:] else 0)
        careful_until = self._careful.get((topic, partition))
        if careful_until is not None and len(msgs) > 1 and msgs[0].offset() <= careful_until:
            # The last batch here failed without saying which record (the process died):
            # one record at a time until past it, so the failure names its record.
            return sum(self._handle_batch(topic, partition, [m]) for m in msgs)
        with self._lock:
            worker = self.workers.get((topic, partition))
        if worker is None:
            return 0  # a paused partition's last fetch, or one just revoked
        try:
            results, seconds = ran.result() if ran is not None else _timed(worker.process_batch, msgs)
        except BatchFailed as exc:
            for msg, emitted in zip(msgs, exc.done):  # what ran before the failure still counts
                self._emit(emitted, lambda m=msg: f"record {topic}[{partition}]@{m.offset()}", msg.key())
            bad = msgs[exc.index]
            raise self._record_failed(topic, partition, bad, str(exc)) from None
        except GuestError as exc:
            first, last = msgs[0].offset(), msgs[-1].offset()
            if first == last:
                raise self._record_failed(topic, partition, msgs[0], str(exc)) from None
            self._careful[(topic, partition)] = last
            raise GuestError(f"{exc} (records {topic}[{partition}]@{first}..{last})") from None
        if careful_until is not None and msgs[-1].offset() >= careful_until:
            del self._careful[(topic, partition)]
        for msg, emitted in zip(msgs, results):
            self._emit(emitted, lambda m=msg: f"record {topic}[{partition}]@{m.offset()}", msg.key())
        self.metrics.batch(len(msgs), results, seconds)
        if self.state is ObservedState.FAILED:
            self._set(ObservedState.RUNNING)  # a retry got past whatever failed
        return len(msgs)

    def _record_failed(self, topic: str, partition: int, msg: Message, error: str) -> RecordFailed:
        """Count a failure of one record; once its retries are spent, hand it to the error policy."""
        offset = msg.offset()
        key = (topic, partition, offset)
        attempts = self._failures.get(key, 0) + 1
        self._failures[key] = attempts
        reason = f"{error} (record {topic}[{partition}]@{offset})"
        cfg = self.config
        if attempts <= cfg.error_retries:
            return RecordFailed(f"{reason}, attempt {attempts} of {cfg.error_retries + 1}", attempts)
        del self._failures[key]
        if cfg.error_policy is ErrorPolicy.FAIL:
            return RecordFailed(reason, attempts, give_up=True)
        self._settle.setdefault((topic, partition), {})[offset] = error
        return RecordFailed(f"{reason}; errors.policy {cfg.error_policy.value} takes it", attempts, settled=True)

    def _settle_record(self, topic: str, partition: int, msg: Message, error: str) -> None:
        """Skip or dead-letter a record user code kept failing on; the offset moves past it
        only once the dead letter is acknowledged (it is flushed before the commit)."""
        with self._lock:
            worker = self.workers.get((topic, partition))
        if worker is None:
            return
        where = f"{topic}[{partition}]@{msg.offset()}"
        if self.config.error_policy is ErrorPolicy.DEAD_LETTER:
            assert self._changelog_producer is not None and self.config.dead_letter_topic is not None
            headers = list(msg.headers() or []) + [
                ("fs-bus.error", error.encode("utf-8", "replace")[:8192]),
                ("fs-bus.function", self.name.encode()),
                ("fs-bus.source.topic", topic.encode()),
                ("fs-bus.source.partition", str(partition).encode()),
                ("fs-bus.source.offset", str(msg.offset()).encode()),
                ("fs-bus.node", self.node_id.encode()),
            ]
            self._produce(self._changelog_producer, self.config.dead_letter_topic, None, msg.key(), msg.value(),
                          headers=headers)
            self.dead_lettered += 1
            self.metrics.dead_lettered()
            what = f"{self.dead_lettered} record(s) dead-lettered to {self.config.dead_letter_topic}"
        else:
            self.skipped += 1
            what = f"{self.skipped} record(s) skipped"
        worker.skip(msg)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self.notice = f"{what}; last at {stamp} UTC: {where}: {error}"
        log.warning("function %s: %s", self.name, self.notice)
        self._on_change()

    def _produce(self, producer: Producer, topic: str, partition: int | None, key: bytes | None,
                 value: bytes | None, headers: list | None = None) -> None:
        # Delivery failures reach _on_delivery through the producer's config (see _open).
        if producer is self._txn and not self._in_txn:
            self._begin()
        while True:
            try:
                producer.produce(topic, value, key, -1 if partition is None else partition, headers=headers)
                return
            except BufferError:
                producer.poll(0.05)  # the output buffer is full: wait for the broker to catch up

    def _begin(self) -> None:
        assert self._txn is not None
        self._txn.begin_transaction()
        self._in_txn = True

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err.str()}")

    def _write_changelog(self, worker: PartitionWorker) -> int:
        """Write what the worker's checkpoint sealed to its changelog partition (same number as
        its input's); return how many records that was."""
        assert worker.changelog is not None and self._changelog_producer is not None
        topic = self._changelogs[worker.topic]
        changes = worker.changelog.sealed()
        for change in changes:
            self._produce(self._changelog_producer, topic, worker.partition, encode_key(change.store, change.key),
                          change.value)
        return len(changes)

    def _flush_and_commit(self, consumer: Consumer) -> None:
        # Order matters (see the module doc): checkpoints, changelogs written, everything
        # acknowledged (or the transaction committed), local state committed, offsets committed.
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            self._emit(w.checkpoint(), f"checkpoint of {w.label}")
        sealed = [(w, self._write_changelog(w)) for w in workers if w.sealed]
        with self._lock:
            offsets = [TopicPartition(w.topic, w.partition, w.next_offset)
                       for w in self.workers.values() if w.next_offset is not None]
        if self._txn is not None:
            self._commit_transaction(consumer, offsets)
        else:
            self._flush_outputs()
        now = int(time.time() * 1000)
        for w, written in sealed:
            # The offset after our records is at least this: the partition's end when the
            # state was restored, plus what we wrote since (transaction markers and any
            # zombie's writes only add to it). A lower bound is all a restore needs: it
            # replays a few changes it already holds, never skips one.
            w.changelog_next += written
            assert w.changelog is not None
            w.changelog.confirm(w.changelog_next, now)
            w.sealed = False
        if offsets and self._txn is None:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                # e.g. a rebalance is under way; the records are replayed to the new owner.
                log.warning("function %s: commit failed: %s", self.name, exc)

    def _flush_outputs(self) -> None:
        for producer in self._producers.values():
            while producer.flush(5.0) > 0:
                if self._stop.is_set() and self._delivery_errors:
                    break
        if self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors[:3], []
            # Committing now would skip records whose results were lost.
            raise FsBusError(f"function {self.name}: writing outputs failed: {'; '.join(errors)}")

    def _commit_transaction(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Outputs, changelog records and input offsets become visible together, or not at all."""
        txn = self._txn
        assert txn is not None
        for producer in self._producers.values():
            if producer is not txn:
                producer.flush(30)
        if not offsets and not self._in_txn:
            return
        try:
            if not self._in_txn:
                self._begin()
            if offsets:
                txn.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            txn.commit_transaction(60)
            self._in_txn = False
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.txn_requires_abort():
                self._abort()
            raise FsBusError(f"function {self.name}: committing the transaction failed: {err}") from None
        if self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors[:3], []
            raise FsBusError(f"function {self.name}: writing outputs failed: {'; '.join(errors)}")

    def _abort(self) -> None:
        if self._txn is None or not self._in_txn:
            return
        try:
            self._txn.abort_transaction(30)
        except KafkaException as exc:
            log.warning("function %s: aborting the transaction failed: %s", self.name, exc)
        self._in_txn = False
        self._delivery_errors.clear()

    def _close(self, commit: bool) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                if commit:
                    self._flush_and_commit(consumer)
                elif self._exactly_once:
                    # Nothing since the last commit may be committed now (leaving the group
                    # revokes, which commits what the workers did): drop it all first.
                    self._abort()
                    self._close_workers()
            except Exception as exc:  # noqa: BLE001
                log.warning("function %s: final commit failed: %s", self.name, exc)
            finally:
                self._abort()  # whatever was not committed is replayed by the next owner
                consumer.close()  # leaves the group; revocation closes the workers
        self._close_workers()
        self._abort()
        for producer in self._producers.values():
            producer.flush(10)
        self._producers.clear()
        self._targets = []
        self._txn = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._restart_reason = None

    def _close_workers(self) -> None:
        """Close every worker; state not committed is rolled back with it."""
        with self._lock:
            workers, self.workers = list(self.workers.values()), {}
        for w in workers:
            try:
                w.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("function %s: closing worker %s: %s", self.name, w.label, exc)


def _timed(run: Callable[[list[Message]], list[Emitted]], msgs: list[Message]) -> tuple[list[Emitted], float]:
    """Run a partition's batch and say how long it took (for the batch-duration histogram)."""
    started = time.perf_counter()
    results = run(msgs)
    return results, time.perf_counter() - started


def source_watermarks(partitions: list[tuple[int, int]]) -> dict[int, int]:
    """Each source's watermark from its partitions' ``(source_id, highest timestamp seen)``:
    the lowest over the partitions that have seen a record (-1: none yet), so an event
    time is only promised once every busy partition of the source has passed it. Pure."""
    marks: dict[int, int] = {}
    for source, ts in partitions:
        if ts >= 0:
            marks[source] = min(marks.get(source, ts), ts)
    return marks


def _by_partition(msgs: list[Message], on_error: Callable[[KafkaError], None]) -> dict[tuple[str, int], list[Message]]:
    """Split a consumed batch by partition, keeping each partition's order."""
    groups: dict[tuple[str, int], list[Message]] = {}
    for msg in msgs:
        err = msg.error()
        if err is not None:
            on_error(err)
            continue
        groups.setdefault((msg.topic(), msg.partition()), []).append(msg)
    return groups
