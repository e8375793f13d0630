"""fs-bus produce/consume's pure parts: start offsets and keyed lines (issue 17, point 8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fs_bus.inspect.topic_io import BadStartOffset, StartOffset, split_key


@pytest.mark.parametrize("text, low, high, first", [
    ("beginning", 5, 20, 5), ("earliest", 5, 20, 5), ("end", 5, 20, 20), ("latest", 5, 20, 20),
    ("7", 5, 20, 7), ("2", 5, 20, 5), ("99", 5, 20, 20), ("-3", 5, 20, 17), ("-100", 5, 20, 5),
])
def test_start_offsets_resolve_within_the_partition(text, low, high, first):
    assert StartOffset.parse(text).resolve(low, high) == first


@given(st.integers(-1000, 1000), st.integers(0, 500), st.integers(0, 500))
def test_any_start_offset_lands_between_the_watermarks(n, low, extra):
    high = low + extra
    assert low <= StartOffset.parse(str(n)).resolve(low, high) <= high


def test_a_start_offset_that_is_neither_says_what_is_accepted():
    with pytest.raises(BadStartOffset, match="beginning, end"):
        StartOffset.parse("yesterday")


def test_lines_split_at_the_key_separator_or_take_the_fixed_key():
    assert split_key(b"k1:a:b", b":", None) == (b"k1", b"a:b")
    assert split_key(b"no separator", b":", b"fixed") == (b"fixed", b"no separator")
    assert split_key(b"v", None, b"fixed") == (b"fixed", b"v")
    assert split_key(b"v", None, None) == (None, b"v")
