"""The error policy without Kafka: retries counted per record, then fail, skip or dead-letter;
a batch that died unnamed narrowed to one record at a time; a dead letter's headers."""

from __future__ import annotations

from hypothesis import given, strategies as st

from fs_bus.config.model import ErrorPolicy
from fs_bus.node.error_policy import MAX_ERROR_HEADER_BYTES, RecordErrors, dead_letter_headers

policies = st.sampled_from(list(ErrorPolicy))
retries = st.integers(0, 6)


@given(policies, retries, st.integers(0, 10**9))
def test_a_record_is_retried_then_handed_to_the_policy(policy, n, offset) -> None:
    errors = RecordErrors(policy, n)
    for attempt in range(1, n + 1):
        failed = errors.failed("in", 2, offset, "boom")
        assert (failed.attempts, failed.give_up, failed.settled) == (attempt, False, False)
        assert f"attempt {attempt} of {n + 1}" in str(failed) and "in[2]@" in str(failed)
        assert errors.take_settled(("in", 2), offset) is None  # retried: it runs again
    last = errors.failed("in", 2, offset, "boom")
    assert last.attempts == n + 1
    if policy is ErrorPolicy.FAIL:
        assert last.give_up and not last.settled
        assert errors.take_settled(("in", 2), offset) is None
    else:
        assert last.settled and not last.give_up and policy.value in str(last)
        assert errors.settling(("in", 2)) and not errors.quiet([("in", 2)])
        assert errors.take_settled(("in", 2), offset) == "boom"
        assert errors.take_settled(("in", 2), offset) is None  # settled once
        assert not errors.settling(("in", 2))
    # its count starts over: a later failure of the same offset (a reset) is retried again
    assert errors.failed("in", 2, offset, "boom").attempts == 1


@given(policies, retries, st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2), st.integers(0, 5)),
                                   max_size=30))
def test_records_are_counted_apart(policy, n, failures) -> None:
    errors = RecordErrors(policy, n)
    counts: dict = {}
    for topic, partition, offset in failures:
        failed = errors.failed(topic, partition, offset, "x")
        counts[(topic, partition, offset)] = counts.get((topic, partition, offset), 0) + 1
        assert failed.attempts == counts[(topic, partition, offset)]
        if failed.attempts > n:
            del counts[(topic, partition, offset)]  # handed over: the count starts again


@given(st.integers(0, 1000), st.integers(1, 50), st.lists(st.integers(1, 20), min_size=1, max_size=20))
def test_a_batch_that_died_unnamed_runs_one_record_at_a_time_until_past_it(first, size, batches) -> None:
    errors = RecordErrors(ErrorPolicy.FAIL, 3)
    part = ("in", 0)
    last = first + size - 1
    errors.batch_died(part, last)
    assert not errors.quiet([part])
    offset = first
    for count in batches:
        whole = not errors.one_at_a_time(part, offset, count)
        assert whole == (count == 1 or offset > last)
        end = offset + (count if whole else 1) - 1
        errors.ran(part, end)
        offset = end + 1
        assert errors.quiet([part]) == (end >= last)
    assert errors.one_at_a_time(("in", 1), first, 5) is False  # other partitions are not narrowed


@given(st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))), max_size=3),
       st.text(max_size=10_000), st.integers(0, 99), st.integers(0, 10**12))
def test_a_dead_letter_keeps_its_headers_and_says_why_and_where(original, error, partition, offset) -> None:
    headers = dead_letter_headers(original, error, "f", "in", partition, offset, "node-1")
    assert headers[:len(original)] == original
    added = dict(headers[len(original):])
    assert added["fs-bus.error"] == error.encode("utf-8", "replace")[:MAX_ERROR_HEADER_BYTES]
    assert added["fs-bus.function"] == b"f" and added["fs-bus.node"] == b"node-1"
    assert (added["fs-bus.source.topic"], added["fs-bus.source.partition"], added["fs-bus.source.offset"]) == \
        (b"in", str(partition).encode(), str(offset).encode())
