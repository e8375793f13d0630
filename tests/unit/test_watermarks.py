"""A source's watermark: the lowest of its busy partitions' highest timestamps."""

from hypothesis import given, strategies as st

from fs_bus.node.worker import source_watermarks


def test_a_source_watermark_waits_for_its_slowest_busy_partition():
    assert source_watermarks([(0, 500), (0, 300), (1, 900), (0, -1), (2, -1)]) == {0: 300, 1: 900}


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-1, 10**6))))
def test_source_watermarks_never_pass_a_busy_partition(partitions):
    marks = source_watermarks(partitions)
    for source, ts in partitions:
        if ts >= 0:
            assert marks[source] <= ts
    assert set(marks) == {s for s, ts in partitions if ts >= 0}
    assert all(any(s == src and ts == mark for s, ts in partitions) for src, mark in marks.items())
