"""Where a function instance's results go: its outputs, changelogs and dead letters.

One interface, two guarantees. ``AcknowledgedOutputs`` (at-least-once) produces
with idempotent producers and, at a commit point, waits until everything is
acknowledged before the input offsets are committed through the consumer.
``TransactionalOutputs`` (``processing.guarantee: exactly_once``) writes outputs
and changelog records through one transactional producer on the inputs' cluster
and commits the input offsets inside the same transaction, with the consumer
group's metadata so a zombie is fenced. The instance never asks which one it has.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable


from fs_bus.config.model import FunctionConfig, Guarantee
from fs_bus.errors import FsBusError, GuestError
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.types import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from fs_bus.node.commit import Offset
from fs_bus.node.progress import Progress
from fs_bus.runtime.base import Emitted

log = logging.getLogger(__name__)



class Outputs:
    """The producers of one function instance: one per output cluster, one on the inputs'
    cluster (changelogs, dead letters). Built when the instance opens, closed with it."""

    # Whether a failure must drop everything since the last commit point before the
    # consumer leaves the group: under a transaction, leaving would commit work whose
    # outputs were never committed. At-least-once lets revocation commit what the
    # workers finished, since its outputs are acknowledged before the offsets.
    drops_uncommitted_on_failure = False

    def __init__(self, name: str, config: FunctionConfig, settings: KafkaSettings, consumer: Consumer,
                 stop: threading.Event, progress: Progress | None = None):
        self.name = name
        self._progress = progress or Progress()
        self.config = config
        self._settings = settings
        self._consumer = consumer
        self._stop = stop
        self._delivery_errors: list[str] = []
        self._producers: dict[str, Producer] = {}  # bootstrap servers -> producer
        self._open_producers()
        first = config.inputs[0].bootstrap_servers
        if first not in self._producers:
            self._producers[first] = clients.inputs_producer(settings.for_servers(first), name, self._on_delivery)
        self._inputs_producer = self._producers[first]
        # Per output target: what emit needs, looked up once.
        self._targets: list[tuple[Callable[..., None], str, int]] = [
            (self._producers[o.bootstrap_servers].produce, o.topic, -1 if o.partition is None else o.partition)
            for o in config.outputs]

    def _open_producers(self) -> None:
        for out in self.config.outputs:
            if out.bootstrap_servers not in self._producers:
                self._producers[out.bootstrap_servers] = clients.output_producer(
                    self._settings.for_servers(out.bootstrap_servers), self.name, self._on_delivery,
                    out.runtime.channel_capacity, dict(out.properties))

    # --- writing ---

    def _before_write(self) -> None:
        """Called before anything is produced (a transaction begins here)."""

    def emit(self, emitted: Emitted | None, where: str | Callable[[], str], key: bytes | None = None) -> None:
        """Produce what user code emitted: a ``(target, data)`` record keeps the input
        record's key (``key``), a ``(target, data, key, headers)`` one has its own.
        ``where`` (or what it returns) names the record in an error message.

        The hot path of every function: one ``produce`` call per record and nothing
        else per record (no delivery callback, no log line, no message string)."""
        if emitted is None or not emitted.records:
            return
        self._before_write()
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
                    _produce_waiting(producer, out.topic, out.partition, key, rec[1])
                else:
                    _produce_waiting(producer, out.topic, out.partition, rec[2], rec[1], rec[3])

    def produce(self, topic: str, partition: int | None, key: bytes | None, value: bytes | None,
                headers: list | None = None) -> None:
        """Write one record on the inputs' cluster (a changelog change, a dead letter)."""
        # Delivery failures reach _on_delivery through the producer's config.
        self._before_write()
        _produce_waiting(self._inputs_producer, topic, partition, key, value, headers)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err.str()}")

    def _raise_delivery_errors(self) -> None:
        if self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors[:3], []
            # Committing now would skip records whose results were lost.
            raise FsBusError(f"function {self.name}: writing outputs failed: {'; '.join(errors)}")

    # --- a commit point (fs_bus.node.commit) ---

    def acknowledge(self, offsets: list[Offset]) -> None:
        """Everything written so far is acknowledged by the brokers, or raise."""
        for producer in self._producers.values():
            self._await_acks(producer)
        self._raise_delivery_errors()

    def _await_acks(self, producer: Producer) -> None:
        """Wait until ``producer`` has nothing left in flight, in steps, each acknowledgement
        counting as progress. Acknowledgements that never come (a broker that hung and came
        back, say) used to hold the instance here for good, RUNNING and silent: the steps let
        the watchdog's restart (``Stalled``) and a stop get through."""
        left = producer.flush(0.5)
        while left > 0:
            if self._stop.is_set() and self._delivery_errors:
                return
            self._progress.check()
            now_left = producer.flush(1.0)
            if now_left < left:
                self._progress.made()
            left = now_left

    def commit_offsets(self, offsets: list[Offset]) -> None:
        """Commit the input offsets, once local state is committed."""
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=_partitions(offsets), asynchronous=False)
        except KafkaException as exc:
            # e.g. a rebalance is under way; the records are replayed to the new owner.
            log.warning("function %s: commit failed: %s", self.name, exc)

    @property
    def in_transaction(self) -> bool:
        """Whether results are written that only a transaction's commit makes visible."""
        return False

    def abort(self) -> None:
        """Drop what was written since the last commit point, if that can be done."""

    def close(self) -> None:
        self.abort()
        for producer in self._producers.values():
            producer.flush(10)
        # The last references: a producer's threads end when it is freed, and it refers back
        # to us (its delivery callback), so a reference kept here waits for the cycle collector.
        self._producers.clear()
        self._inputs_producer = None  # type: ignore[assignment]
        self._targets = []


class AcknowledgedOutputs(Outputs):
    """At-least-once: outputs acknowledged, then offsets committed."""


class TransactionalOutputs(Outputs):
    """Exactly-once: outputs, changelog records and input offsets in one transaction."""

    drops_uncommitted_on_failure = True

    def __init__(self, name: str, config: FunctionConfig, settings: KafkaSettings, consumer: Consumer,
                 stop: threading.Event, transactional_id: str, progress: Progress | None = None):
        self._transactional_id = transactional_id
        self._txn: Producer | None = None
        self._in_txn = False
        super().__init__(name, config, settings, consumer, stop, progress)

    def _open_producers(self) -> None:
        cfg = self.config
        first = cfg.inputs[0].bootstrap_servers
        out_props: dict[str, Any] = {}
        for out in cfg.outputs:
            out_props.update(out.properties)
        self._txn = clients.transactional_producer(
            self._settings.for_servers(first), self.name, self._transactional_id, self._on_delivery,
            cfg.outputs[0].runtime.channel_capacity, out_props)
        self._txn.init_transactions(30)  # fences (and aborts) this id's earlier incarnation
        self._producers[first] = self._txn
        super()._open_producers()

    def _before_write(self) -> None:
        if not self._in_txn:
            assert self._txn is not None
            self._txn.begin_transaction()  # every output belongs to the open transaction
            self._in_txn = True

    def acknowledge(self, offsets: list[Offset]) -> None:
        """Outputs, changelog records and input offsets become visible together, or not at all."""
        txn = self._txn
        assert txn is not None
        for producer in self._producers.values():
            if producer is not txn:
                self._await_acks(producer)
        if not offsets and not self._in_txn:
            return
        try:
            self._before_write()
            if offsets:
                txn.send_offsets_to_transaction(_partitions(offsets), self._consumer.consumer_group_metadata(), 30)
            txn.commit_transaction(60)
            self._in_txn = False
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.txn_requires_abort():
                self.abort()
            raise FsBusError(f"function {self.name}: committing the transaction failed: {err}") from None
        self._raise_delivery_errors()

    def commit_offsets(self, offsets: list[Offset]) -> None:
        """Nothing left to do: the offsets were committed with the transaction."""

    @property
    def in_transaction(self) -> bool:
        return self._in_txn

    def abort(self) -> None:
        if self._txn is None or not self._in_txn:
            return
        try:
            self._txn.abort_transaction(30)
        except KafkaException as exc:
            log.warning("function %s: aborting the transaction failed: %s", self.name, exc)
        self._in_txn = False
        self._delivery_errors.clear()

    def close(self) -> None:
        super().close()
        self._txn = None


def clients_needed(config: FunctionConfig) -> int:
    """The Kafka clients an open instance holds: its consumer, and a producer per cluster it writes
    to (its inputs' cluster too: changelogs, dead letters)."""
    return 1 + len({config.inputs[0].bootstrap_servers, *(o.bootstrap_servers for o in config.outputs)})


def open_outputs(name: str, config: FunctionConfig, settings: KafkaSettings, consumer: Consumer,
                 stop: threading.Event, transactional_id: str | None, progress: Progress | None = None) -> Outputs:
    """The outputs the function's ``processing.guarantee`` asks for."""
    if config.guarantee is Guarantee.EXACTLY_ONCE:
        if not transactional_id:
            raise FsBusError(f"function {name!r}: exactly_once needs a transactional id (FunctionSpec.transactional_id)")
        return TransactionalOutputs(name, config, settings, consumer, stop, transactional_id, progress)
    return AcknowledgedOutputs(name, config, settings, consumer, stop, progress)


def _produce_waiting(producer: Producer, topic: str, partition: int | None, key: bytes | None,
                     value: bytes | None, headers: list | None = None) -> None:
    while True:
        try:
            producer.produce(topic, value, key, -1 if partition is None else partition, headers=headers)
            return
        except BufferError:
            producer.poll(0.05)  # the output buffer is full: wait for the broker to catch up


def _partitions(offsets: list[Offset]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition, offset) for topic, partition, offset in offsets]
