"""A function instance: this node's member of the function's consumer group.

It owns one consumer (in the group named by the config), one producer per output
cluster, and a partition worker per assigned partition. Kafka's group protocol
spreads partitions across every node running the function; the instance follows
assignments (cooperative-sticky: a node joining or leaving moves only the
partitions that must move). A worker is created, its state restored from its
changelog, before its partition's first record; on revocation everything done
is flushed and committed before the worker closes.

At a commit point (``fs_bus.node.commit``, which states the order) the workers'
checkpoints, changelogs, outputs, local state and input offsets are made durable
so that a crash replays records, never skips one. Outputs are acknowledged
(at-least-once) or transactional (``processing.guarantee: exactly_once``) behind
one interface (``fs_bus.node.outputs``); a failure aborts what is open and
reopens from the committed offsets. What a failing record gets is the error
policy's to say (``fs_bus.node.error_policy``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import Callable

from fs_bus.calls.records import CallReply, CallRequest
from fs_bus.calls.router import CallInbox
from fs_bus.clock import now_ms
from fs_bus.control.shadow import with_sources
from fs_bus.config.model import ErrorPolicy, FunctionConfig, Guarantee
from fs_bus.errors import (
    ArtifactError, BatchFailed, FsBusError, GuestError, InvalidArtifact, InvalidConfig, KafkaUnavailable,
    RecordFailed, Stalled,
)
from fs_bus.kafka import clients
from fs_bus.kafka.budget import BUDGET
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.types import Consumer, KafkaError, Message, TopicPartition
from fs_bus.node.commit import commit_point
from fs_bus.node.error_policy import RecordErrors, dead_letter_headers
from fs_bus.node.function_topics import ensure_function_topics
from fs_bus.node.outputs import Outputs, clients_needed, open_outputs
from fs_bus.node.lag import read_lag
from fs_bus.node.progress import Progress
from fs_bus.node.parking import Berth, ParkingLot
from fs_bus.node.worker import PartitionWorker, ProcessorFactory, by_partition, source_watermarks, timed
from fs_bus.observability.metrics import FunctionMetrics
from fs_bus.runtime.base import Emitted
from fs_bus.status.records import ObservedState

log = logging.getLogger(__name__)


Prepare = Callable[[], ProcessorFactory]
ReplySink = Callable[[CallReply], None]
HEARTBEAT_CHECK_INTERVAL_S = 5.0
LAG_REFRESH_INTERVAL_S = 1.0
# Under exactly-once the transaction commits this often (Kafka Streams' default) unless
# commit.interval.ms says otherwise: the latency a read_committed reader sees.
EOS_COMMIT_INTERVAL_S = 0.1
# Partition batches run at once, at most this many (threads waiting on guests that run
# without the GIL, or on Python functions' processes).
PARALLEL_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0
# librdkafka waits out a whole call's timeout (30 s) on a cluster that is not there; the
# function says so (FAILED, retried) well before a client's CREATE stops waiting.
REACH_TIMEOUT_S = 10.0
# Instances of this process opening their clients at once, at most: a node starting 1 000
# functions opened ~4 000 clients in a burst, the broker's accept backlog overflowed and
# every one of them failed with "Broker transport failure" (then retried with back-off).
OPENING = threading.BoundedSemaphore(8)
# Failures a retry cannot mend: bad artifact, bad config, a type the node can't run.
PERMANENT = (InvalidArtifact, ArtifactError, InvalidConfig)


class FunctionInstance:
    def __init__(self, name: str, config: FunctionConfig, prepare: Prepare, settings: KafkaSettings,
                 on_change: Callable[[], None], reply: ReplySink | None = None, node_id: str = "",
                 changelog_topics: dict[str, str] | None = None, transactional_id: str | None = None,
                 metrics: FunctionMetrics | None = None, parking: ParkingLot | None = None, tag_sources: bool = False):
        self.name, self._source_headers = name, tag_sources  # a shadow runs: outputs name their input
        # Counted per batch; the error policy calls ``metrics.dead_lettered(n)``.
        self.metrics = metrics or FunctionMetrics(None, name)
        self.node_id = node_id
        self._changelogs = changelog_topics or {}  # input topic -> its changelog topic
        self._exactly_once = config.guarantee is Guarantee.EXACTLY_ONCE
        self._transactional_id = transactional_id  # exactly-once: the spec's, for this node
        self._outputs: Outputs | None = None  # outputs, changelogs, dead letters; open while the consumer is
        self._restart_reason: str | None = None  # set in a rebalance callback, raised after consume()
        self._pool: ThreadPoolExecutor | None = None  # runs several partitions' batches at once
        # The error policy's bookkeeping outlives reopenings: attempts count across them.
        self._errors = RecordErrors(config.error_policy, config.error_retries)
        self.skipped = 0
        self.dead_lettered = 0
        self._reply = reply
        self._calls = CallInbox(config)
        self.notice: str | None = None  # something worth showing while RUNNING (an instance restart)
        # What the progress watchdog (fs_bus.node.stall_watch) samples; it asks for restarts through it.
        self.progress = Progress()
        self._stall_failed = False  # FAILED for stalling: RUNNING again once a commit point goes through
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
        self._emit: Callable[..., None] = _no_outputs  # the open outputs' emit: the hot path, looked up once
        self._sources = {i.topic: n for n, i in enumerate(config.inputs)}
        self._named_partitions = {(i.topic, i.partition) for i in config.inputs if i.partition is not None}
        self._named_topics = {t for t, _ in self._named_partitions}
        # Idle for processor-runtime.idle-park-ms, it closes its clients until a record comes.
        self._berth = Berth(name, parking, config.processor_runtime.idle_park_ms,
                            settings.for_servers(config.inputs[0].bootstrap_servers), config.group_id)
        self._reopening = False  # back from parking: its clusters and topics were checked before

    # --- lifecycle (called from the node's thread) ---

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the instance to stop and return at once; ``stop`` then waits for it. Many
        instances asked first stop side by side (a node letting go of dozens at a time)."""
        self._stop.set()
        self._berth.wake()  # a parked instance too

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._berth.wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("function %s did not stop within %.0f s", self.name, timeout)

    def submit_call(self, request: CallRequest) -> bool:
        """Queue a call if this instance answers the function's calls; False if it does not."""
        with self._lock:
            owns = self._calls.partition in self.workers
        if not owns and self._berth.held is not None and self._calls.partition in self._berth.held:
            owns = True
            self._berth.wake(f"a call ({request.id})")
        return self._calls.offer(request, owns)

    @property
    def partitions(self) -> list[str]:
        held = self._berth.held  # parked: still where its partitions' state and offsets are
        with self._lock:
            return sorted(f"{t}:{p}" for t, p in held) if held else sorted(w.label for w in self.workers.values())

    # --- the instance's own thread ---

    def _set(self, state: ObservedState, error: str | None = None) -> None:
        self.state, self.error = state, error
        self._on_change()

    def _run(self) -> None:
        """Run until stopped. User code that fails is retried with back-off: the
        instance reopens from the last committed offsets, so a poison record fails
        again (status FAILED, with why) and a transient fault heals by itself."""
        attempt = 0
        on_records = False  # the last failure was user code on records: RUNNING once a batch passes
        while True:
            try:
                if self._factory is None:
                    self._factory = self._prepare()
                with OPENING:
                    self._open()
                # RUNNING once the group's first assignment has its workers (user code's init
                # ran): a CREATE waits for that verdict, so an init that raises fails it. After a
                # failure opening (a cluster out of reach), the next assignment says RUNNING too:
                # an idle input would otherwise leave it FAILED with nothing failing.
                self._first_assignment = attempt == 0 or not on_records
                self._loop()
                if self._berth.at is not None and not self._stop.is_set():
                    self._berth.park(set(self.workers), lambda: self._close(commit=True))
                    self._reopening = True
                    if not self._stop.is_set():
                        continue  # woken: open again, from the committed offsets
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
                on_records = isinstance(exc, GuestError)  # RecordFailed, BatchFailed too
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
                if isinstance(exc, Stalled):
                    self.metrics.stall_restart()
                    if not exc.fail:  # reopen at once, from the last commit
                        self._notify(reason)
                        continue
                # Records running again say nothing of a stall: only a commit point going through does.
                self._stall_failed = isinstance(exc, Stalled)
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
        cfg = self.config
        first = cfg.inputs[0]
        in_settings = self._settings.for_servers(first.bootstrap_servers)
        topics = sorted(self._sources)
        if not self._reopening:  # woken from parking: checked when it first opened
            clients.check_properties(self.config)  # InvalidConfig: permanent, FAILED with the key's path
            self._check_clusters()
            if created := ensure_function_topics(self._settings, cfg, self._changelogs):
                log.info("function %s: created missing topics %s", self.name, created)
        self._reopening = False
        props = {k: v for i in cfg.inputs for k, v in i.properties.items()}
        with BUDGET.reserve(clients_needed(cfg), f"fn-{self.name}"):  # all at once: fs_bus.kafka.budget
            self._consumer = clients.function_consumer(in_settings, self.name, cfg.group_id, props)
            self._outputs = open_outputs(self.name, cfg, self._settings, self._consumer, self._stop,
                                         self._transactional_id, self.progress)
        self._emit = self._outputs.emit
        self.progress.reset()
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)

    # Rebalance callbacks run inside consume(), on this thread.
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        paused = []
        for tp in partitions:
            if tp.topic in self._named_topics and (tp.topic, tp.partition) not in self._named_partitions:
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
        if self.progress.asked:  # stalled: what was not committed is replayed from the last commit
            self._drop_workers(partitions)
            return
        try:
            self._commit()
        except Exception as exc:  # noqa: BLE001 - an exception here would escape from librdkafka's callback
            log.warning("function %s: commit on revocation failed: %s", self.name, exc)
            # The partitions kept ran records whose results are now lost: start over from the commit.
            self._restart_reason = f"commit on revocation failed: {exc}"
        self._drop_workers(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group moved on without us: what we did not commit belongs to others now.
        if self._outputs is not None and self._outputs.in_transaction:
            self._restart_reason = "partitions lost with a transaction open"
        self._drop_workers(partitions)

    def _drop_workers(self, partitions: list[TopicPartition]) -> None:
        self.progress.forget(f"{tp.topic}:{tp.partition}" for tp in partitions)
        for tp in partitions:
            with self._lock:
                worker = self.workers.pop((tp.topic, tp.partition), None)
            if worker is not None:
                try:
                    worker.close()
                except Exception as exc:  # noqa: BLE001 - one worker must not leave the others half-open
                    log.warning("function %s: closing worker %s: %s", self.name, worker.label, exc)
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
        last_commit = last_record = time.monotonic()
        next_health_check = time.monotonic() + HEARTBEAT_CHECK_INTERVAL_S
        next_lag = 0.0
        take = min(batch, max_batch)
        while not self._stop.is_set():
            msgs = clients.take(self._consumer, take, timeout)
            self.progress.check()
            if self._restart_reason is not None:
                reason, self._restart_reason = self._restart_reason, None
                raise FsBusError(f"function {self.name}: {reason}")
            pending += self._run_batches(by_partition(msgs, self._consumer_error))
            if msgs:
                last_record = time.monotonic()
                self._advance_watermarks()
            if pending and (pending >= full or not msgs or time.monotonic() - last_commit >= interval):
                self._commit()
                pending, last_commit = 0, time.monotonic()
            self._answer_calls()
            if time.monotonic() >= next_health_check:
                self._check_health()
                next_health_check = time.monotonic() + HEARTBEAT_CHECK_INTERVAL_S
            if time.monotonic() >= next_lag:
                self._refresh_lag()
                next_lag = time.monotonic() + LAG_REFRESH_INTERVAL_S
                if self.state is ObservedState.FAILED and not pending and self._caught_up():
                    self._set(ObservedState.RUNNING)  # reopened after a failure and nothing is left behind
                if not pending and self._berth.due(time.monotonic() - last_record):
                    with self._lock:
                        held = {k: w.next_offset for k, w in self.workers.items()}
                    if self._berth.plan(self._consumer, sorted(self._sources), held, self._processes):
                        return
                    last_record = time.monotonic()  # something left to read: idle afresh before trying again

    def _processes(self, topic: str, partition: int) -> bool:
        """Whether the instance processes this input partition (a config may name some)."""
        return topic not in self._named_topics or (topic, partition) in self._named_partitions

    def _refresh_lag(self) -> None:
        """Each partition's lag (fs_bus.node.lag), for the metrics and the watchdog."""
        assert self._consumer is not None
        with self._lock:
            processed = {k: w.next_offset for k, w in self.workers.items()}
        self.metrics.lag = lag = read_lag(self._consumer, processed)
        self.progress.lagging(f"{t}:{p}" for (t, p), behind in lag.items() if behind > 0)

    def _caught_up(self) -> bool:
        """Whether every partition held is known to have nothing left to process."""
        with self._lock:
            return all(self.metrics.lag.get(k) == 0 for k in self.workers)

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
        if len(groups) > 1 and self._errors.quiet(list(groups)):
            with self._lock:
                workers = {k: self.workers.get(k) for k in groups}
        else:
            workers = {}
        if workers and all(w is None or getattr(w.processor, "parallel_batches", False) for w in workers.values()):
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=PARALLEL_WORKERS, thread_name_prefix=f"fn-{self.name}")
            ran = {k: self._pool.submit(timed, w.process_batch, groups[k]) for k, w in workers.items() if w is not None}
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
        for request in self._calls.take():
            with self._lock:
                worker = self.workers.get(self._calls.partition)
            label = f"{self._calls.partition[0]}:{self._calls.partition[1]}"
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
        self._commit()
        worker.close()
        rt = self._factory(worker.topic, worker.partition)
        fresh = PartitionWorker(worker.topic, worker.partition, worker.source_id, rt.processor, rt.state,
                                next_offset=worker.next_offset, max_timestamp=worker.max_timestamp,
                                watermark_sent=worker.watermark_sent, changelog=rt.changelog,
                                changelog_next=rt.changelog_next)
        with self._lock:
            self.workers[(worker.topic, worker.partition)] = fresh
        self._notify(f"instance for {worker.label} restarted: {why}")

    def _notify(self, what: str) -> None:
        """Something worth showing in the status while RUNNING, stamped."""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self.notice = f"{stamp} UTC: {what}"
        log.warning("function %s: %s", self.name, self.notice)
        self._on_change()

    def _consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise FsBusError(f"function {self.name}: consumer failed: {err.str()}")
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("function %s: consumer: %s", self.name, err.str())

    def _handle_batch(self, topic: str, partition: int, msgs: list[Message], ran: Future | None = None) -> int:
        """Run one partition's records through its worker, in order; return how many ran.
        ``ran``: the worker already ran them (in parallel with other partitions)."""
        part = (topic, partition)
        if self._errors.settling(part):
            for i, msg in enumerate(msgs):
                reason = self._errors.take_settled(part, msg.offset())
                if reason is not None:  # its retries are spent: the error policy decides
                    done = self._handle_batch(topic, partition, msgs[:i]) if i else 0
                    self._settle_record(topic, partition, msg, reason)
                    return done + 1 + (self._handle_batch(topic, partition, msgs[i + 1:]) if msgs[i + 1:] else 0)
        if self._errors.one_at_a_time(part, msgs[0].offset(), len(msgs)):
            # The last batch here failed without saying which record (the process died):
            # one record at a time until past it, so the failure names its record.
            return sum(self._handle_batch(topic, partition, [m]) for m in msgs)
        with self._lock:
            worker = self.workers.get((topic, partition))
        if worker is None:
            return 0  # a paused partition's last fetch, or one just revoked
        try:
            results, seconds = ran.result() if ran is not None else timed(worker.process_batch, msgs)
        except BatchFailed as exc:
            for msg, emitted in zip(msgs, exc.done):  # what ran before the failure still counts
                self._emit(emitted, lambda m=msg: f"record {topic}[{partition}]@{m.offset()}", msg.key())
            bad = msgs[exc.index]
            raise self._errors.failed(topic, partition, bad.offset(), str(exc)) from None
        except GuestError as exc:
            first, last = msgs[0].offset(), msgs[-1].offset()
            if first == last:
                raise self._errors.failed(topic, partition, first, str(exc)) from None
            self._errors.batch_died(part, last)
            raise GuestError(f"{exc} (records {topic}[{partition}]@{first}..{last})") from None
        self._errors.ran(part, msgs[-1].offset())
        self.progress.processed(worker.label)
        results = with_sources(results, msgs, topic, partition) if self._source_headers else results
        for msg, emitted in zip(msgs, results):
            self._emit(emitted, lambda m=msg: f"record {topic}[{partition}]@{m.offset()}", msg.key())
        self.metrics.batch(len(msgs), results, seconds)
        if self.state is ObservedState.FAILED and not self._stall_failed:
            self._set(ObservedState.RUNNING)  # a retry got past whatever failed
        return len(msgs)

    def _settle_record(self, topic: str, partition: int, msg: Message, error: str) -> None:
        """Skip or dead-letter a record user code kept failing on; the offset moves past it
        only once the dead letter is acknowledged (it is flushed before the commit)."""
        with self._lock:
            worker = self.workers.get((topic, partition))
        if worker is None:
            return
        where = f"{topic}[{partition}]@{msg.offset()}"
        if self.config.error_policy is ErrorPolicy.DEAD_LETTER:
            assert self._outputs is not None and self.config.dead_letter_topic is not None
            headers = dead_letter_headers(msg.headers(), error, self.name, topic, partition, msg.offset(),
                                          self.node_id)
            self._outputs.produce(self.config.dead_letter_topic, None, msg.key(), msg.value(), headers=headers)
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

    def _commit(self) -> None:
        """A commit point (fs_bus.node.commit): checkpoints, changelogs, outputs acknowledged,
        local state and input offsets committed, in that order."""
        with self._lock:
            workers = list(self.workers.values())
        assert self._outputs is not None
        commit_point(workers, self._outputs, self._changelogs, now_ms)
        self.progress.committed()
        if self._stall_failed and self.state is ObservedState.FAILED:
            self._set(ObservedState.RUNNING)  # stalled before; a commit point went through now
        self._stall_failed = False

    def _close(self, commit: bool) -> None:
        consumer, self._consumer = self._consumer, None
        outputs = self._outputs
        if consumer is not None:
            try:
                if commit:
                    self._commit()
                elif outputs is not None and outputs.drops_uncommitted_on_failure:
                    # Nothing since the last commit may be committed now (leaving the group
                    # revokes, which commits what the workers did): drop it all first.
                    outputs.abort()
                    self._close_workers()
            except Exception as exc:  # noqa: BLE001
                log.warning("function %s: final commit failed: %s", self.name, exc)
            finally:
                if outputs is not None:
                    outputs.abort()  # whatever was not committed is replayed by the next owner
                consumer.close()  # leaves the group; revocation closes the workers
        self._close_workers()
        if outputs is not None:
            outputs.close()  # aborts what is left open, flushes the rest
        self._outputs = None
        self._emit = _no_outputs
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._restart_reason = None
        self.progress.reset()  # nothing held until it opens again: no stall while it backs off

    def _close_workers(self) -> None:
        """Close every worker; state not committed is rolled back with it."""
        with self._lock:
            workers, self.workers = list(self.workers.values()), {}
        for w in workers:
            try:
                w.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("function %s: closing worker %s: %s", self.name, w.label, exc)


def _no_outputs(emitted: Emitted | None, where: str | Callable[[], str], key: bytes | None = None) -> None:
    """What the instance emits through while it has no outputs open (before _open, after _close)."""
    if emitted is not None and emitted.records:
        raise FsBusError("a function instance emitted records with its outputs closed")

