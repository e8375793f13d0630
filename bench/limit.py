"""The ``limit`` case: a plain confluent-kafka consume -> produce loop in Python,
upper-casing each value. It is the ceiling for anything built on this client here.

``run_throughput`` runs in the bench process; ``python -m bench.limit --serve ...``
runs the same loop until SIGTERM, for the latency case (producing and measuring
in the bench process must not share a GIL with the loop under test).
"""

from __future__ import annotations

import argparse
import signal
import time
import uuid

from confluent_kafka import Consumer, Producer

from bench.common import Deadline, PartialTimeout

BATCH = 1000  # records per consume() call, as the node's default max-batch-size


def _clients(bootstrap: str, group: str) -> tuple[Consumer, Producer]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": bootstrap})
    return consumer, producer


def _produce(producer: Producer, topic: str, key, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.01)


def run_throughput(bootstrap: str, source: str, sink: str, records: int, deadline: Deadline) -> dict:
    """Move ``records`` records; the clock runs from the first consume() that returned
    records to the moment every produced record is acknowledged (flush)."""
    consumer, producer = _clients(bootstrap, f"bench-limit-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([source])
    moved = 0
    started = None
    try:
        while moved < records:
            msgs = consumer.consume(BATCH, 0.5)
            if msgs and started is None:
                started = time.monotonic()
            for m in msgs:
                if m.error() is not None:
                    continue
                _produce(producer, sink, m.key(), m.value().upper())
                moved += 1
            producer.poll(0)
            if deadline.expired():
                now = time.monotonic()
                raise PartialTimeout(f"limit: timed out after {deadline.seconds:.0f} s having moved {moved} of "
                                     f"{records}", moved, now) from None
        while producer.flush(1.0):
            deadline.check("flushing")
        ended = time.monotonic()
    finally:
        consumer.close()
    assert started is not None
    return {"records": moved, "seconds": ended - started}


def serve(bootstrap: str, source: str, sink: str, group: str, poll_s: float) -> None:
    """The same loop, forever (until SIGTERM), with a short consume timeout so a
    record never waits for a full batch."""
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    consumer, producer = _clients(bootstrap, group)
    consumer.subscribe([source])
    try:
        while not stop:
            for m in consumer.consume(BATCH, poll_s):
                if m.error() is None:
                    _produce(producer, sink, m.key(), m.value().upper())
            producer.poll(0)
        producer.flush(10)
    finally:
        consumer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--serve", action="store_true", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--poll-ms", type=float, default=5.0)
    a = ap.parse_args()
    serve(a.bootstrap, a.source, a.sink, a.group, a.poll_ms / 1000)


if __name__ == "__main__":
    main()
