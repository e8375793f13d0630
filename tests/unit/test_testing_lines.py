"""fs-bus test's input lines and state file (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fs_bus.state.kv import ComplexKey, decode_key, encode_key
from fs_bus.testing import Input
from fs_bus.testing.lines import InputError, parse_record, state_from_json, state_to_json


def test_a_plain_line_is_a_value_without_key():
    assert parse_record("hello world", "lines", "input line 1") == Input(b"hello world")


def test_a_json_line_carries_key_headers_timestamp_and_source():
    line = ('{"value": "v", "key": {"base64": "AAE="}, "headers": {"h": "1", "n": null}, '
            '"timestamp": 5, "source_id": 1, "partition": 2}')
    assert parse_record(line, "json", "input line 1") == Input(b"v", b"\x00\x01", [("h", b"1"), ("n", None)], 5, 1, 2)


@pytest.mark.parametrize("line, message", [
    ("hello", "input line 3: not JSON"),
    ("[1]", "input line 3: a record is a JSON object, not list"),
    ('{"valu": "x"}', "input line 3: unknown field(s) valu"),
    ('{"value": 5}', "input line 3: value: bytes are a string (UTF-8), null or"),
    ('{"value": "x", "timestamp": -1}', "input line 3: timestamp must be a whole number >= 0"),
])
def test_a_bad_json_line_is_named_with_what_is_wrong(line, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_record(line, "json", "input line 3")


keys = st.one_of(st.binary(max_size=8),
                 st.builds(ComplexKey, st.binary(max_size=4), st.binary(max_size=4), st.binary(max_size=4),
                           st.binary(max_size=4)))
states = st.dictionaries(st.text(min_size=1, max_size=6), st.dictionaries(keys, st.binary(max_size=8), max_size=5),
                         max_size=3)


@given(states)
def test_a_state_file_reads_back_what_was_written(state):
    assert state_from_json(state_to_json(state), "state file") == state


@given(keys)
def test_backend_keys_decode_to_the_key_the_guest_used(key):
    assert decode_key(encode_key(key)) == key


def test_a_state_file_of_simple_utf8_keys_is_a_plain_mapping():
    assert state_to_json({"counts": {b"apple": b"2"}}) == {"counts": {"apple": "2"}}
    assert state_from_json({"counts": {"apple": "2"}}, "f") == {"counts": {b"apple": b"2"}}


def test_a_null_stored_value_is_refused_naming_its_key():
    with pytest.raises(InputError, match="state.json: store 'counts', key 'apple': a stored value cannot be null"):
        state_from_json({"counts": {"apple": None}}, "state.json")
