"""`fs-bus decode`'s reading of kcat output: records found again whatever bytes their values hold."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from fs_bus.control.records import encode_function
from fs_bus.inspect.decode import BadRecord, decode_stream
from fs_bus.inspect.kcat import FormatError, parse_format
from tests.unit.test_codec import SAMPLE, records

# A value whose config holds every separator a format might use.
TRICKY = encode_function(replace(SAMPLE, config_yaml="a:\n\tb: 1\n%s\n"))


def decoded(data: bytes, fmt: str) -> list:
    return list(decode_stream(data, fmt))


def test_key_tab_value_lines_with_newlines_and_tabs_inside_values():
    data = b"upper\t" + TRICKY + b"\n" + b"lower\t" + encode_function(SAMPLE) + b"\n"
    got = decoded(data, r"%k\t%s\n")
    assert [d["key"] for d in got] == ["upper", "lower"]
    assert got[0]["value"]["config_yaml"] == "a:\n\tb: 1\n%s\n"
    assert got[0]["schema"] == "FunctionRecord" and got[0]["encoding"] == "avro"


@given(st.lists(records, min_size=1, max_size=4))
def test_raw_values_one_per_line_as_kcat_prints_by_default(rs):
    data = b"\n".join(encode_function(r) for r in rs) + b"\n"
    got = decoded(data, r"%s\n")
    assert [d["value"]["name"] for d in got] == [r.name for r in rs]


def test_lengths_from_the_format_are_used_when_given_and_a_null_value_is_a_tombstone():
    v = TRICKY
    data = b"[c 0 5 5 %d]upper" % len(v) + v + b"\n" + b"[c 0 6 5 -1]upper\n"
    got = decoded(data, r"[%t %p %o %K %S]%k%s\n")
    assert got[0]["offset"] == 5 and got[0]["value"]["name"] == "upper"
    assert got[1] == {"topic": "c", "partition": 0, "offset": 6, "key": "upper", "schema": None, "value": None}


def test_a_record_that_does_not_decode_is_reported_with_its_coordinates_and_the_rest_still_decode():
    data = (b"fs-bus.control 0 7\tupper\t" + encode_function(SAMPLE) + b"\n"
            b"fs-bus.control 0 8\tjunk\tnot avro\n"
            b"fs-bus.control 0 9\tupper\t" + encode_function(SAMPLE) + b"\n")
    got = decoded(data, r"%t %p %o\t%k\t%s\n")
    assert isinstance(got[1], BadRecord)
    assert str(got[1]).startswith("fs-bus.control[0]@8 key='junk': not Avro single-object encoding")
    assert [d["offset"] for d in (got[0], got[2])] == [7, 9]


def test_without_coordinates_a_bad_record_is_named_by_its_place_in_the_input():
    got = decoded(b"x\tnope\n", r"%k\t%s\n")
    assert str(got[0]).startswith("record #1 of the input key='x'")


def test_a_json_value_is_read_as_a_function_record():
    doc = decoded(b"upper\t" + encode_function(SAMPLE) + b"\n", r"%k\t%s\n")[0]["value"]
    got = decoded(b"upper\t" + json.dumps(doc).encode() + b"\n", r"%k\t%s\n")[0]
    assert got["encoding"] == "json" and got["value"] == doc


def test_the_last_record_may_lack_its_closing_separator():
    assert len(decoded(encode_function(SAMPLE) + b"\n" + encode_function(SAMPLE), r"%s\n")) == 2


@pytest.mark.parametrize("fmt, message", [
    ("%k%s", "need something between"), ("%k\\t%x\\n", "%x is not a field"), ("%k\\n", "no %s"),
])
def test_formats_that_cannot_be_read_back_are_refused(fmt, message):
    with pytest.raises(FormatError, match=message):
        parse_format(fmt)


def test_input_that_does_not_follow_the_format_names_the_byte():
    with pytest.raises(FormatError, match="byte 0 of the input"):
        decoded(b"no brackets here\n", r"[%k]%s\n")
