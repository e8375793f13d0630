"""Avro's JSON encoding: what `fs-bus decode` prints and what the control topic accepts from kcat."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from fs_bus.control import avro_json, codec, table
from fs_bus.control.records import DesiredState, decode_function, encode_function
from fs_bus.errors import DecodeError
from tests.unit.test_codec import SAMPLE, records


def as_json(record) -> str:
    return avro_json.to_json(*codec.decode(encode_function(record)))


@given(records)
def test_a_record_in_json_means_exactly_what_its_binary_form_means(record):
    assert avro_json.to_single_object(as_json(record), "FunctionRecord") == encode_function(record)
    assert decode_function(as_json(record).encode()) == record


def test_json_is_one_line_with_timestamps_as_epoch_milliseconds():
    text = as_json(SAMPLE)
    assert "\n" not in text
    assert json.loads(text)["updated_at"] == 1_700_000_000_000


def test_the_control_table_takes_a_json_record_produced_by_hand():
    stopped = json.loads(as_json(SAMPLE)) | {"desired_state": "STOPPED", "revision": 4}
    t = table.apply(table.DesiredTable(), b"upper", encode_function(SAMPLE))
    t = table.apply(t, b"upper", json.dumps(stopped).encode())
    assert t.get("upper").desired_state is DesiredState.STOPPED and t.get("upper").revision == 4


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("task_type"), "missing field 'task_type'"),
    (lambda d: d.update(desired_sate="STOPPED"), "unknown field 'desired_sate'"),
    (lambda d: d.update(desired_state="PAUSED"), "FunctionRecord.desired_state: 'PAUSED' is not one of RUNNING, STOPPED"),
    (lambda d: d["artifact"]["chunks"][0].update(extra=1), "FunctionRecord.artifact.chunks[0]: unknown field 'extra'"),
    (lambda d: d.update(revision="4"), "revision"),
])
def test_a_json_record_that_does_not_fit_the_schema_is_refused_naming_the_field(change, message):
    doc = json.loads(as_json(SAMPLE))
    change(doc)
    with pytest.raises(DecodeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_function(json.dumps(doc).encode())


@pytest.mark.parametrize("value", [b"{", b"{\xff}", b'{"name": [1]}'])
def test_broken_json_is_a_decode_error_and_leaves_the_table_as_it_was(value):
    before = table.apply(table.DesiredTable(), b"upper", encode_function(SAMPLE))
    with pytest.raises(DecodeError):
        table.apply(before, b"upper", value)
    assert before.get("upper") == SAMPLE
