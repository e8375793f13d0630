"""Tests of @NAME@: the function runs in this process, as on a node (the same
runtime, time budget and memory limit), without Kafka (fs_bus.testing).

    @TEST_COMMAND@
"""

import re
from pathlib import Path

import pytest

from fs_bus.testing import FunctionHarness, RecordError

HERE = Path(__file__).resolve().parent
FUNCTION = HERE / "@FUNCTION@"
CONFIG = HERE / "config.yaml"


def test_counts_each_value():
    with FunctionHarness(FUNCTION, CONFIG) as fn:
        fn.send_all([b"apple", b"pear", b"apple"])
        assert fn.values(0) == [b"apple=1", b"pear=1", b"apple=2"]
        assert fn.state("counts") == {b"apple": b"2", b"pear": b"1"}


def test_counting_goes_on_from_the_state_it_starts_with():
    with FunctionHarness(FUNCTION, CONFIG, state={"counts": {"apple": "41"}}) as fn:
        [out] = fn.send(b"apple", key=b"k1")
        assert (out.topic, out.key, out.value) == ("@NAME@-output", b"k1", b"apple=42")


def test_a_count_that_is_not_a_number_fails_the_record():
    with FunctionHarness(FUNCTION, CONFIG, state={"counts": {"apple": "many"}}) as fn:
        fn.send(b"pear")  # offset 0
        with pytest.raises(RecordError, match=re.escape("(record @NAME@-input[0]@1)")):
            fn.send(b"apple")
