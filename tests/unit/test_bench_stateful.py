"""The stateful bench case's pure parts: its data set, and the reference replay that every
counter's output is checked against (it must be what the counter examples emit)."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.stateful import (
    VOCABULARY_SIZE, WORDS_PER_SENTENCE, compare, final_counts, fingerprint, reference_outputs, sentences, vocabulary,
)
from fs_api import Context

ROOT = Path(__file__).resolve().parents[2]


def _load_counter() -> type:
    """examples/python-processor/counter.py, loaded under a name of its own (no sys.path change)."""
    spec = importlib.util.spec_from_file_location("bench_test_counter", ROOT / "examples" / "python-processor" / "counter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CounterProcessor


CounterProcessor = _load_counter()


def _counter_outputs(records: list[bytes], partitions: int) -> list[bytes]:
    """examples/python-processor's counter, one in-memory instance per partition, records round-robin."""
    instances = []
    for _ in range(partitions):
        ctx, driver = Context({"key_prefix": "count:"}), CounterProcessor()
        driver.init(ctx, {"key_prefix": "count:"})
        instances.append((ctx, driver))
    out = []
    for i, record in enumerate(records):
        ctx, driver = instances[i % partitions]
        driver.process(ctx, 0, record)
        out += [value for _, value in ctx.take_emitted().records]
    return out


words = st.binary(min_size=1, max_size=6).filter(lambda b: not any(c in b" \t\n\r\x0b\x0c" for c in b))
record = st.lists(st.one_of(words, st.sampled_from([b"a", b"b", b"\xc3\xa9", b"\xff"])), max_size=6).flatmap(
    lambda ws: st.sampled_from([b" ", b"  ", b"\t", b" \n"]).map(lambda sep: sep.join(ws)))


@settings(max_examples=200, deadline=None)
@given(st.lists(record, max_size=30), st.integers(min_value=1, max_value=3))
def test_reference_replay_emits_what_the_python_counter_emits(records, partitions):
    assert list(reference_outputs(records, partitions)) == _counter_outputs(records, partitions)


def test_reference_replay_emits_the_go_counters_documented_output():
    # examples/go-processor/README.md: "hello world hello", then "hello", on a fresh store.
    assert list(reference_outputs([b"hello world hello", b"hello"], 1)) == [
        b'{"total_processed": 1, "counter_map": {"hello": 2, "world": 1}}',
        b'{"total_processed": 2, "counter_map": {"hello": 3}}',
    ]


def test_each_partition_counts_on_its_own():
    outs = list(reference_outputs([b"x", b"x", b"x"], 2))
    assert outs[2] == b'{"total_processed": 2, "counter_map": {"x": 2}}'


def test_the_data_set_is_fixed_sentences_of_five_vocabulary_words():
    vocab = vocabulary()
    assert len(vocab) == len(set(vocab)) == VOCABULARY_SIZE
    data = sentences(2000)
    assert data == sentences(2000)
    assert all(len(s.split()) == WORDS_PER_SENTENCE for s in data)
    assert set(final_counts(data)) <= set(vocab)
    # Zipf-ish: the commonest word is far commoner than the median one.
    counts = sorted(final_counts(data).values(), reverse=True)
    assert counts[0] > 20 * counts[len(counts) // 2]


def test_compare_counts_missing_and_unexpected_records():
    expected = fingerprint([b"a", b"b", b"b"])
    assert compare(expected, fingerprint([b"b", b"a", b"b"]))["matches_reference"]
    c = compare(expected, fingerprint([b"a", b"b", b"c"]))
    assert (c["matches_reference"], c["missing"], c["unexpected"], c["records_read"]) == (False, 1, 1, 3)
    assert compare(expected, Counter())["missing"] == 3
