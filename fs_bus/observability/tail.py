"""Reading one function's lines from the logs topic: the last ones, then (with follow) new ones.

No consumer group: every partition of ``<ns>.logs`` is assigned from the offset of
the ``since`` time, read to the end it had when reading started, and filtered by
key (the function's name).
"""

from __future__ import annotations

import re
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Iterator

from fs_bus.kafka.types import OFFSET_END, Consumer, KafkaError, TopicPartition

from fs_bus.errors import DecodeError, FsBusError, KafkaUnavailable
from fs_bus.observability.logs import LogLine, decode_log_line

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_since(text: str, now_ms: int) -> int:
    """``--since``: a duration back from now (``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``) or an
    ISO 8601 time (``2026-11-30T05:00:00Z``); the epoch milliseconds it means. Pure."""
    text = text.strip()
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return now_ms - int(sum(float(n) * _UNITS[u] for n, u in parts) * 1000)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FsBusError(f"--since {text!r}: give a duration such as 30s, 10m, 2h, 1d (or 1h30m), "
                         f"or a time such as 2026-11-30T05:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def format_line(line: LogLine) -> str:
    """One line for people: time, node, partition, stream, then what the guest wrote. Pure."""
    where = f"{line.topic}:{line.partition}" if line.partition >= 0 else line.topic or "-"
    return f"{line.time} {line.node} {where} {line.stream or line.level.lower()}: {line.line}"


class LogTail:
    """The lines of one function on the logs topic, oldest first."""

    def __init__(self, consumer: Consumer, topic: str, function: str):
        self.consumer = consumer
        self.topic = topic
        self.key = function.encode()
        md = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if md is None or md.error is not None or not md.partitions:
            raise FsBusError(f"logs topic {topic!r} is not there yet: no node of this namespace has "
                                   f"started since logs were added (or --namespace names another cluster)")
        self.partitions = sorted(md.partitions)
        self.skipped = 0  # values that were not log lines

    def _start(self, since_ms: int) -> dict[int, int]:
        """Assign every partition from ``since_ms``; return the partitions that hold lines
        since then, each with its end offset as of now."""
        wanted = [TopicPartition(self.topic, p, since_ms) for p in self.partitions]
        starts = {tp.partition: tp.offset for tp in self.consumer.offsets_for_times(wanted, timeout=10)}
        ends = {p: self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                for p in self.partitions}
        # A partition with nothing as recent as since_ms answers -1: start at its end.
        self.consumer.assign([TopicPartition(self.topic, p, starts[p] if starts[p] >= 0 else OFFSET_END)
                              for p in self.partitions])
        return {p: end for p, end in ends.items() if 0 <= starts[p] < end}

    def _poll(self, timeout: float, positions: dict[int, int]) -> Iterator[LogLine]:
        for m in self.consumer.consume(500, timeout):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    positions[m.partition()] = max(positions.get(m.partition(), 0), m.offset())
                elif err.fatal():
                    raise KafkaUnavailable(f"reading {self.topic}: {err.str()}")
                continue
            positions[m.partition()] = m.offset() + 1
            if m.key() != self.key:
                continue
            try:
                yield decode_log_line(m.value())
            except DecodeError:
                self.skipped += 1

    def recent(self, since_ms: int, last: int | None, timeout: float = 30.0) -> list[LogLine]:
        """The function's lines from ``since_ms`` to now (at most the ``last`` ones), oldest first."""
        ends = self._start(since_ms)
        lines: deque[LogLine] = deque(maxlen=last)
        positions: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        # Caught up when every partition is past its end: a record read, or the end-of-partition
        # event (records deleted by retention, or a transaction's markers, leave offsets unread).
        while any(positions.get(p, -1) < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"timed out reading {self.topic} to its end")
            lines.extend(self._poll(0.2, positions))
        return sorted(lines, key=lambda ln: ln.timestamp_ms)

    def follow(self, emit: Callable[[LogLine], None], stop: Callable[[], bool]) -> None:
        """After :meth:`recent`: every new line as it arrives, until ``stop()``."""
        positions: dict[int, int] = {}
        while not stop():
            for line in self._poll(0.5, positions):
                emit(line)
