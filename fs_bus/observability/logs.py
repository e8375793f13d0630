"""Function log lines on ``<ns>.logs``: one Kafka record per line a guest wrote.

The runtimes send every line a guest writes (WASI stdout and stderr; a Python
function's print and logging, which reach its process's stdout and stderr) to the
Python logger ``fs_bus.function.<function>.<topic>-<partition>``. A node attaches
:class:`KafkaLogHandler` to ``fs_bus.function``, which produces each line to the logs
topic with the function's name as key, so one function's lines keep their order.

Values are JSON (not Avro like the control records): log lines are read by people
and by log shippers, which all speak JSON; nothing folds them into state, so they
need no schema evolution. Readers ignore fields they do not know.

Producing never blocks user code: ``produce`` only queues, and when the queue is
full the line is dropped and counted (``fs_bus_log_lines_dropped_total``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import orjson
from fs_bus.kafka.types import Producer

from fs_bus.errors import DecodeError

LOGGER_PREFIX = "fs_bus.function"


@dataclass(frozen=True, slots=True)
class LogLine:
    function: str
    node: str
    topic: str
    partition: int  # -1: not from a partition's instance
    stream: str  # "stdout" or "stderr"
    level: str  # INFO for stdout, WARNING for stderr, as the runtimes log them
    timestamp_ms: int
    line: str

    @property
    def time(self) -> str:
        """The timestamp in ISO 8601, UTC, to the millisecond."""
        dt = datetime.fromtimestamp(self.timestamp_ms / 1000, timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.timestamp_ms % 1000:03d}Z"


def function_logger(function: str, topic: str, partition: int) -> logging.Logger:
    """The logger a partition worker's guest output goes to."""
    return logging.getLogger(f"{LOGGER_PREFIX}.{function}.{topic}-{partition}")


def encode_log_line(line: LogLine) -> bytes:
    return orjson.dumps(asdict(line))


def decode_log_line(value: bytes) -> LogLine:
    try:
        doc = orjson.loads(value)
        return LogLine(str(doc["function"]), str(doc.get("node", "")), str(doc.get("topic", "")),
                       int(doc.get("partition", -1)), str(doc.get("stream", "")), str(doc.get("level", "")),
                       int(doc["timestamp_ms"]), str(doc["line"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"not an fs-bus log line ({type(exc).__name__}: {exc}): {value[:80]!r}") from None


def line_from_record(record: logging.LogRecord, node: str) -> LogLine | None:
    """The log line a record of the ``fs_bus.function`` hierarchy carries; None for others. Pure.

    The runtimes log ``"%s: %s" % (stream, text)`` with ``function_name`` and
    ``guest_stream`` as extras; the partition is the end of the logger's name.
    """
    if not record.name.startswith(LOGGER_PREFIX + "."):
        return None
    rest = record.name[len(LOGGER_PREFIX) + 1:]
    function = getattr(record, "function_name", None)
    if function and rest.startswith(function + "."):
        where = rest[len(function) + 1:]
    else:  # a name with dots is ambiguous here; the runtimes always say which function
        function, _, where = rest.partition(".")
    topic, _, number = where.rpartition("-")
    try:
        partition = int(number)
    except ValueError:
        topic, partition = where, -1
    stream = getattr(record, "guest_stream", None) or ""
    text = record.getMessage()
    if stream and text.startswith(stream + ": "):
        text = text[len(stream) + 2:]
    return LogLine(function, node, topic, partition, stream, record.levelname, int(record.created * 1000), text)


class KafkaLogHandler(logging.Handler):
    """Produces function log lines to the logs topic, without ever blocking the caller."""

    def __init__(self, producer: Producer, topic: str, node: str,
                 on_sent=None, on_dropped=None):
        super().__init__(logging.DEBUG)
        self.producer = producer
        self.topic = topic
        self.node = node
        self._on_sent = on_sent or (lambda: None)
        self._on_dropped = on_dropped or (lambda: None)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = line_from_record(record, self.node)
            if line is None:
                return
            try:
                self.producer.produce(self.topic, key=line.function.encode(), value=encode_log_line(line),
                                      timestamp=line.timestamp_ms)
            except BufferError:
                self._on_dropped()  # the broker is slow or away: lose log lines, not throughput
                return
            self._on_sent()
            self.producer.poll(0)  # serve delivery reports, so they do not pile up
        except Exception:  # noqa: BLE001 - logging must never break the function
            self.handleError(record)

    def close(self, timeout: float = 5.0) -> None:
        try:
            self.producer.flush(timeout)
        finally:
            super().close()
