"""How many partitions each topic has, per cluster, asked of Kafka rarely.

A function's default ``parallelism`` is its input partitions (``fs_bus.placement``),
so a node placing thousands of functions needs thousands of counts: one metadata
request per cluster answers them all, and is repeated only when it is old or a
topic it did not know is asked about (a topic created a moment ago).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from confluent_kafka import KafkaException

from fs_bus.config.model import FunctionConfig
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)

REFRESH_S = 30.0  # a topic's partitions may grow: counts are asked again this often
MISSING_RETRY_S = 5.0  # a topic not seen yet (its function creates it) is looked for again this soon
METADATA_TIMEOUT_S = 5.0


class PartitionCounts:
    """Topic partition counts per cluster, from one metadata request each."""

    def __init__(self, settings: KafkaSettings, clock: Callable[[], float] = time.monotonic):
        self._settings = settings
        self._clock = clock
        self._known: dict[str, tuple[float, dict[str, int]]] = {}  # servers -> (asked at, topic -> count)
        self._failed: dict[str, float] = {}  # servers -> when asking last failed (asked again after REFRESH_S)

    def topics(self, servers: str, names: list[str]) -> dict[str, int]:
        """The counts of ``names`` on ``servers`` that exist (a missing or unreachable one is left out)."""
        now = self._clock()
        asked, counts = self._known.get(servers, (None, {}))
        stale = asked is None or now - asked > REFRESH_S
        missing = asked is not None and now - asked > MISSING_RETRY_S and any(n not in counts for n in names)
        failed = self._failed.get(servers)
        if (stale or missing) and (failed is None or now - failed > REFRESH_S):
            answer = self._ask(servers)
            if answer is None:  # out of reach: a node's loop must not wait on it every pass
                self._failed[servers] = now
            else:
                self._failed.pop(servers, None)
                counts = answer
                self._known[servers] = (now, counts)
        return {n: counts[n] for n in names if n in counts}

    def for_config(self, config: FunctionConfig) -> int:
        """The input partitions ``config`` consumes: named ones count 1, a topic not there yet 1."""
        servers = config.inputs[0].bootstrap_servers
        counts = self.topics(servers, sorted({i.topic for i in config.inputs}))
        return input_partitions(config, counts)

    def _ask(self, servers: str) -> dict[str, int] | None:
        try:
            md = clients.admin(self._settings.for_servers(servers)).list_topics(timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:
            log.warning("partition counts of %s: %s; keeping what was known", servers, exc.args[0])
            return None
        return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None and t.partitions}


def input_partitions(config: FunctionConfig, counts: dict[str, int]) -> int:
    """Distinct input partitions of ``config``, from topic -> partition count (pure)."""
    named: dict[str, set[int]] = {}
    whole: set[str] = set()
    for i in config.inputs:
        if i.partition is None:
            whole.add(i.topic)
        else:
            named.setdefault(i.topic, set()).add(i.partition)
    total = sum(counts.get(t, 1) for t in whole)
    total += sum(len(ps) for t, ps in named.items() if t not in whole)
    return max(1, total)
