"""A node's Prometheus metrics: what it runs, how fast, how far behind.

Each node has its own registry (not prometheus_client's global one), so two nodes
in one process, as in tests, never mix their numbers. The data path counts once per
batch (``FunctionMetrics.batch``), never per record; lag, instance and partition
counts are read when they are needed rather than pushed on every change: lag is
refreshed by each instance's own thread about once a second (only that thread may
touch its consumer), and the instance and partition gauges are read from the node
at scrape time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fs_bus.errors import FsBusError
from fs_bus.kafka.budget import BUDGET

PREFIX = "fs_bus"
ENV_METRICS_PORT = "FS_BUS_METRICS_PORT"
ENV_METRICS_ADDRESS = "FS_BUS_METRICS_ADDRESS"
# Seconds per batch of one partition: from sub-millisecond batches of a cheap component
# to a Python function that waits on the network.
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def metric_name(name: str) -> str:
    """The exposed name of one of fs-bus's metrics: ``records_in`` -> ``fs_bus_records_in``. Pure."""
    if not name or not all(c.isalnum() or c == "_" for c in name) or name[0].isdigit():
        raise ValueError(f"not a metric name: {name!r} (letters, digits and '_', not starting with a digit)")
    return f"{PREFIX}_{name}"


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What the scrape needs to know about one running instance."""

    function: str
    partitions: Sequence[str]  # "topic:partition" labels
    lag: dict[tuple[str, int], int]  # (topic, partition) -> records behind the high watermark
    parked: bool = False  # idle: its Kafka clients closed, woken by the node's probe (fs_bus.node.parking)


class _Live(Collector):
    """Gauges read from the node when Prometheus scrapes: nothing to keep in step."""

    def __init__(self, views: Callable[[], Iterable[InstanceView]]):
        self._views = views

    def collect(self):
        instances = GaugeMetricFamily(metric_name("instances"), "Function instances running on this node.")
        assigned = GaugeMetricFamily(metric_name("partitions_assigned"),
                                     "Input partitions this node's instance of the function holds.",
                                     labels=["function"])
        lag = GaugeMetricFamily(metric_name("consumer_lag"),
                                "Records in the input partition after the last one processed (high watermark "
                                "minus position), refreshed about once a second.",
                                labels=["function", "topic", "partition"])
        views = list(self._views())
        instances.add_metric([], len(views))
        parked = GaugeMetricFamily(metric_name("instances_parked"),
                                   "Function instances parked: idle, their Kafka clients closed until a record or a "
                                   "call wakes them.")
        parked.add_metric([], sum(v.parked for v in views))
        for v in views:
            assigned.add_metric([v.function], len(v.partitions))
            for (topic, partition), behind in sorted(v.lag.items()):
                lag.add_metric([v.function, topic, str(partition)], behind)
        yield instances
        yield parked
        yield assigned
        yield lag
        clients = GaugeMetricFamily(metric_name("kafka_clients"),
                                    "Kafka clients (producers, consumers, admin) this process holds.")
        clients.add_metric([], BUDGET.in_use)
        yield clients
        limit = GaugeMetricFamily(metric_name("kafka_clients_limit"),
                                  "The most Kafka clients this process may hold (--max-kafka-clients); "
                                  "functions wait for one beyond it, and idle ones park to make room.")
        limit.add_metric([], BUDGET.limit)
        yield limit
        waiting = GaugeMetricFamily(metric_name("kafka_clients_waiting"),
                                    "Kafka clients being waited for because the limit is reached.")
        waiting.add_metric([], BUDGET.waiting)
        yield waiting

    def describe(self):
        return []  # collected at scrape time only; keeps registration from calling collect()


class NodeMetrics:
    """Every metric one node exposes. Create once per node; ``serve`` exposes /metrics."""

    def __init__(self, node_id: str, version: str = "", views: Callable[[], Iterable[InstanceView]] | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.node_info = Gauge(metric_name("node_info"), "Always 1; the node's id and fs-bus version as labels.",
                               ["node", "version"], registry=r)
        self.node_info.labels(node_id, version).set(1)
        self.records_in = Counter(metric_name("records_in"), "Input records run through user code.",
                                  ["function"], registry=r)
        self.records_out = Counter(metric_name("records_out"),
                                   "Output records user code emitted while processing input records.",
                                   ["function"], registry=r)
        self.errors = Counter(metric_name("errors"),
                              "User-code failures (a trap, an exception, a crashed Python process), "
                              "each followed by a retry from the last commit.", ["function"], registry=r)
        self.dead_lettered = Counter(metric_name("dead_lettered"),
                                     "Records the function's error policy sent to its dead-letter topic.",
                                     ["function"], registry=r)
        self.stall_restarts = Counter(metric_name("instance_stall_restarts"),
                                      "Times the progress watchdog found the function's instance stalled (partitions "
                                      "with records to process, no progress for processor-runtime: "
                                      "stall-timeout-ms) and restarted it from its last commit.",
                                      ["function"], registry=r)
        self.batch_seconds = Histogram(metric_name("batch_duration_seconds"),
                                       "Seconds to run one batch of one partition through user code and hand "
                                       "its outputs to the producer.", ["function"], buckets=BATCH_BUCKETS,
                                       registry=r)
        self.artifact_cache_hits = Counter(metric_name("artifact_cache_hits"),
                                           "Artifacts found, verified, in the node's disk cache.", registry=r)
        self.artifact_cache_misses = Counter(metric_name("artifact_cache_misses"),
                                             "Artifacts fetched from the artifacts topic.", registry=r)
        self.compiled_cache_hits = Counter(metric_name("compiled_cache_hits"),
                                           "Components loaded without compiling: from memory (already loaded "
                                           "on this node) or from the compiled cache on disk.", ["tier"],
                                           registry=r)
        self.compiled_cache_misses = Counter(metric_name("compiled_cache_misses"),
                                             "Components compiled from their WebAssembly bytes.", registry=r)
        self.log_lines = Counter(metric_name("log_lines"), "Function log lines handed to the logs topic's producer.",
                                 registry=r)
        self.log_lines_dropped = Counter(metric_name("log_lines_dropped"),
                                         "Function log lines dropped because the logs producer's queue was full.",
                                         registry=r)
        if views is not None:
            r.register(_Live(views))
        self._server = None
        self._lock = threading.Lock()

    def for_function(self, name: str) -> FunctionMetrics:
        return FunctionMetrics(self, name)

    def forget(self, name: str) -> None:
        """A dropped function's series go away (a stopped one keeps them: counters must not reset)."""
        for metric in (self.records_in, self.records_out, self.errors, self.dead_lettered, self.stall_restarts,
                       self.batch_seconds):
            try:
                metric.remove(name)
            except KeyError:
                pass

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve /metrics on ``address:port`` from a daemon thread; returns the port (0: any free one)."""
        from prometheus_client import start_http_server

        try:
            server, _ = start_http_server(port, address, registry=self.registry)
        except OSError as exc:
            raise FsBusError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}; give another "
                             f"--metrics-port (or {ENV_METRICS_PORT}), or 0 for any free port") from None
        with self._lock:
            self._server = server
        return server.server_address[1]

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class FunctionMetrics:
    """One function's metrics, as its instance on this node reports them."""

    def __init__(self, node: NodeMetrics | None, function: str):
        self.function = function
        self.errors = 0  # counted here too: the node publishes it in the function's status
        self.lag: dict[tuple[str, int], int] = {}  # replaced whole by the instance thread; read by scrapes
        if node is None:  # an instance built without a node (unit tests): count into nothing
            self._in = self._out = self._errors = self._dead = self._batch = self._stalls = None
            return
        self._in = node.records_in.labels(function)
        self._out = node.records_out.labels(function)
        self._errors = node.errors.labels(function)
        self._dead = node.dead_lettered.labels(function)
        self._batch = node.batch_seconds.labels(function)
        self._stalls = node.stall_restarts.labels(function)

    def batch(self, records: int, results: Sequence, seconds: float) -> None:
        """One partition's batch ran: ``records`` inputs, ``results`` their ``Emitted`` (or None)."""
        if self._in is None:
            return
        self._in.inc(records)
        self._out.inc(sum(len(e.records) for e in results if e is not None))
        self._batch.observe(seconds)

    def error(self) -> None:
        self.errors += 1
        if self._errors is not None:
            self._errors.inc()

    def stall_restart(self) -> None:
        """The progress watchdog restarted the instance (fs_bus.node.watchdog)."""
        if self._stalls is not None:
            self._stalls.inc()

    def dead_lettered(self, records: int = 1) -> None:
        """The error policy sent ``records`` records to the dead-letter topic."""
        if self._dead is not None:
            self._dead.inc(records)


def consumer_lag(high_watermarks: dict[tuple[str, int], int], positions: dict[tuple[str, int], int | None]
                 ) -> dict[tuple[str, int], int]:
    """Records behind per partition, from high watermarks and next offsets to process. Pure.

    A partition with no known position or high watermark (librdkafka reports negative
    logical offsets until it knows) is left out rather than shown as a made-up number.
    """
    lag = {}
    for tp, position in positions.items():
        high = high_watermarks.get(tp)
        if position is None or position < 0 or high is None or high < 0:
            continue
        lag[tp] = max(0, high - position)
    return lag
