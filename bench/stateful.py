"""The ``stateful`` case: one word counter, written three times, over one data set.

The data set is its own: ``--stateful-records`` sentences of 5 words (default
200 000) on ``--stateful-partitions`` partitions (default 1), round-robin. The words
come from a fixed vocabulary of 4 000 lower-case pseudo-words (3 to 9 letters, drawn
with ``random.Random(13)``), each sentence's five drawn independently with Zipf
weights (the word of rank k with weight 1/k): a few words take most of the
occurrences and most keys are hot, with a long tail, as in text. Same seed, same data.

The rows, each on its own output topic:

- ``limit``: the plain confluent-kafka loop (bench.limit) over the sentences, upper-
  casing them, the ceiling the others' ``x limit`` is read against (the same data set
  and partitions, so the ratio says what the counting costs);
- ``go-processor``: examples/go-processor (reference world, built by its build.sh) on an
  ``fs-bus node``, with ``key_prefix: "count:"``;
- ``python``: examples/python-processor/counter.py, the same counter as a ``type:
  python`` function, on an ``fs-bus node``;
- ``streams``: the same counter on Kafka Streams, Processor API, a persistent
  (RocksDB) key-value store with its changelog, 1 stream thread
  (bench/streams/BenchStreams.java, ``--mode counter``).

Every counter emits, per record, ``{"total_processed": N, "counter_map": {"word":
count, ...}}`` with the counts after that record in its partition. After its clock
stops, each row's output topic is read back whole and compared, as a multiset of
values, with :func:`reference_outputs`, a replay of the counter here: equal outputs
mean the same counts after every record, so the same final counts. A row whose
outputs differ has failed.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections import Counter
from itertools import accumulate
from typing import Any, Iterable

from confluent_kafka import Consumer, TopicPartition

from bench import limit, streams
from bench.common import (
    produce_round_robin,
    ROOT, CaseSkipped, CaseTimeout, Children, Deadline, Params, PartialTimeout, create_topics,
    go_processor_wasm, log,
)
from bench.node import BenchNode
from bench.throughput import function_config, rates, time_node_function, time_process

VOCABULARY_SIZE = 4000
WORDS_PER_SENTENCE = 5
SEED = 13
KEY_PREFIX = "count:"
ROWS = ("limit", "go-processor", "python", "streams")

PYTHON_COUNTER = ROOT / "examples" / "python-processor" / "counter.py"
PYTHON_COUNTER_MODULE = "counter"
PYTHON_COUNTER_CLASS = "CounterProcessor"


# --- the data set and the reference (pure) -------------------------------------------------


def vocabulary(size: int = VOCABULARY_SIZE, seed: int = SEED) -> list[str]:
    """``size`` distinct lower-case pseudo-words of 3 to 9 letters, in rank order."""
    rnd = random.Random(seed)
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 9)))] = None
    return list(words)


def sentences(n: int, seed: int = SEED) -> list[bytes]:
    """``n`` sentences of WORDS_PER_SENTENCE words, drawn with Zipf weights (rank k: 1/k)."""
    vocab = vocabulary(seed=seed)
    cum = list(accumulate(1.0 / k for k in range(1, len(vocab) + 1)))
    rnd = random.Random(seed + 1)
    return [" ".join(rnd.choices(vocab, cum_weights=cum, k=WORDS_PER_SENTENCE)).encode() for _ in range(n)]


def reference_outputs(records: Iterable[bytes], partitions: int) -> Iterable[bytes]:
    """What the counter emits for ``records``, sent round-robin to ``partitions`` partitions,
    each partition with a store of its own: examples/go-processor's output, byte for byte
    (``json.dumps(..., ensure_ascii=False)`` of the counts after each record)."""
    counts: list[dict[bytes, int]] = [{} for _ in range(partitions)]
    totals = [0] * partitions
    for i, record in enumerate(records):
        part = i % partitions
        store = counts[part]
        occurrences: dict[bytes, int] = {}  # insertion order = first appearance
        for word in record.split():
            occurrences[word] = occurrences.get(word, 0) + 1
        counter_map = {}
        for word, n in occurrences.items():
            store[word] = store.get(word, 0) + n
            counter_map[word.decode("utf-8", "replace")] = store[word]
        totals[part] += 1
        yield json.dumps({"total_processed": totals[part], "counter_map": counter_map}, ensure_ascii=False).encode()


def fingerprint(values: Iterable[bytes]) -> Counter[bytes]:
    """The multiset of ``values``, each by an 8-byte digest (a million records stay small)."""
    return Counter(hashlib.blake2b(v, digest_size=8).digest() for v in values)


def final_counts(records: Iterable[bytes]) -> dict[str, int]:
    """Every word's count at the end, summed over the partitions (for the report)."""
    out: Counter[str] = Counter()
    for record in records:
        out.update(w.decode("utf-8", "replace") for w in record.split())
    return dict(out)


def compare(expected: Counter[bytes], got: Counter[bytes]) -> dict[str, Any]:
    missing = sum((expected - got).values())
    unexpected = sum((got - expected).values())
    return {"matches_reference": missing == 0 and unexpected == 0, "records_read": sum(got.values()),
            "missing": missing, "unexpected": unexpected}


# --- Kafka ---------------------------------------------------------------------------------


def produce_sentences(bootstrap: str, topic: str, values: list[bytes], partitions: int,
                      deadline: Deadline) -> float:
    """Round-robin over the partitions (record i to partition i % partitions); returns the seconds taken."""
    return produce_round_robin(bootstrap, topic, values, partitions, deadline, "the sentences")


def read_topic(bootstrap: str, topic: str, partitions: int, records: int, deadline: Deadline) -> Counter[bytes]:
    """The fingerprint of every value ``topic`` holds: read (read_committed) until ``records``
    values have come, then on to the end offsets of that moment, so duplicates show too.
    Whatever has come when ``deadline`` passes is returned: the comparison says what is missing."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-check-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    tps = [TopicPartition(topic, part, 0) for part in range(partitions)]
    consumer.assign(tps)
    got: Counter[bytes] = Counter()
    read = 0

    def take(timeout: float) -> None:
        nonlocal read
        for m in consumer.consume(10_000, timeout):
            if m.error() is None:
                got[hashlib.blake2b(m.value() or b"", digest_size=8).digest()] += 1
                read += 1

    try:
        # Under exactly_once the end offsets also count transaction markers, which are never
        # delivered: the count of values read, not the offsets, says when all have come.
        while read < records and not deadline.expired():
            take(0.5)
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps}
        while not deadline.expired():
            positions = consumer.position(tps)
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] <= 0 for tp in positions):
                break
            take(0.2)
    finally:
        consumer.close()
    return got


# --- the case ------------------------------------------------------------------------------


def run_stateful(p: Params, deadline: Deadline, children: Children) -> dict[str, Any]:
    """Every row; one that cannot run, or whose outputs differ, is reported in its own entry, not raised."""
    topic = f"{p.run_id}-sentences"
    parts = p.stateful_partitions
    data = sentences(p.stateful_records)
    size = sum(map(len, data)) / len(data)
    log(f"stateful: {len(data):,} sentences of {WORDS_PER_SENTENCE} words (mean {size:.1f} B) on {parts} "
        f"partition(s)")
    create_topics(p.bootstrap, [topic], parts)
    produce_s = produce_sentences(p.bootstrap, topic, data, parts, deadline.sub(max(300, len(data) / 2000),
                                                                               "stateful data set"))
    expected = fingerprint(reference_outputs(data, parts))
    counts = final_counts(data)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    del data
    out: dict[str, Any] = {
        "data_set": {"topic": topic, "records": p.stateful_records, "partitions": parts,
                     "mean_size": round(size, 1), "words_per_sentence": WORDS_PER_SENTENCE,
                     "vocabulary": VOCABULARY_SIZE, "seed": SEED, "distinct_words": len(counts),
                     "top_words": top, "produce_seconds": round(produce_s, 3)},
        "rows": {},
    }
    rows: dict[str, Any] = out["rows"]
    for row in ROWS:
        started = time.monotonic()
        row_deadline = deadline.sub(p.stateful_row_timeout, f"stateful {row}")
        sink = f"{p.run_id}-stateful-out-{row}"
        try:
            create_topics(p.bootstrap, [sink], parts)
            log(f"stateful {row}: start")
            entry = {"status": "ok", **_run_row(p, row_deadline, children, row, topic, sink, size)}
            if row != "limit":
                got = read_topic(p.bootstrap, sink, parts, p.stateful_records,
                                 deadline.sub(max(60, p.stateful_records / 5000), f"stateful {row}: reading back"))
                entry["output_check"] = compare(expected, got)
                if not entry["output_check"]["matches_reference"]:
                    c = entry["output_check"]
                    entry["status"] = "failed"
                    entry["error"] = (f"outputs differ from the reference counter: {c['missing']} expected "
                                      f"records missing, {c['unexpected']} unexpected, of {p.stateful_records}")
        except CaseSkipped as e:
            entry = {"status": "skipped", "error": str(e)}
        except CaseTimeout as e:
            entry = {"status": "timeout", "error": str(e)}
            partial = getattr(e, "partial", None)
            if partial:
                entry.update(partial, partial=True)
        except Exception as e:  # noqa: BLE001 - reported in the table
            entry = {"status": "timeout" if row_deadline.expired() else "failed",
                     "error": f"{type(e).__name__}: {e}"[:2000]}
        entry["case_wall_seconds"] = round(time.monotonic() - started, 3)
        rows[row] = entry
        log(f"stateful {row}: {entry['status']}"
            + (f" ({entry['records_per_s']:,.0f} records/s)" if "records_per_s" in entry else "")
            + (f": {entry['error'].splitlines()[0][:200]}" if entry.get("error") else ""))
    base = rows["limit"].get("records_per_s") if rows["limit"]["status"] == "ok" else None
    for entry in rows.values():
        if entry.get("records_per_s") is not None:
            entry["ratio_to_limit"] = round(entry["records_per_s"] / base, 4) if base else None
    return out


def _run_row(p: Params, deadline: Deadline, children: Children, row: str, topic: str, sink: str,
             size: float) -> dict[str, Any]:
    parts, n = p.stateful_partitions, p.stateful_records
    if row == "limit":
        try:
            got = limit.run_throughput(p.bootstrap, topic, sink, n, deadline)
        except PartialTimeout as e:
            e.partial = rates(e.have, deadline.seconds, size)  # type: ignore[attr-defined]
            raise
        return rates(got["records"], got["seconds"], size)
    if row == "streams":
        peer = streams.prepare()
        argv = peer.argv("counter", bootstrap=p.bootstrap, source=topic, sink=sink,
                         application_id=f"{p.run_id}-stateful-streams-{uuid.uuid4().hex[:6]}",
                         state_dir=p.workdir / "stateful-streams-state", guarantee=p.guarantee,
                         key_prefix=KEY_PREFIX)
        out = time_process(deadline, children, "Kafka Streams", argv, p.workdir / "stateful-streams.log",
                           p.workdir, p.bootstrap, sink, n, parts, size)
        out.update(kafka_streams=peer.version, stream_threads=1, store="persistent (RocksDB), logged, cached")
        return out
    kind = "processor" if row == "go-processor" else "python"
    name = f"counter-{row}"
    config = function_config(p.bootstrap, name, topic, sink, f"{p.run_id}-stateful-{row}-group", kind,
                             p.guarantee, init_config={"key_prefix": KEY_PREFIX})

    def create(node: BenchNode, timeout: float) -> None:
        with node.client(timeout=timeout) as client:
            if row == "go-processor":
                client.create_function_from_bytes(go_processor_wasm(), config, wait=True, timeout=timeout)
            else:
                client.create_python_function(PYTHON_COUNTER_CLASS,
                                              [(PYTHON_COUNTER_MODULE, PYTHON_COUNTER.read_text())], config,
                                              wait=True, timeout=timeout)

    if row == "go-processor":
        go_processor_wasm()  # built before the node starts: a first build takes a while and is not the node's time
    return time_node_function(p, deadline, children, f"stateful-{row}", create, sink, n, parts, size)
