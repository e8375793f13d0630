"""The fast path's framing (fs_bus/runtime/framing.py) and the Python guest SDK's
copy of it (sdk/python/fs_bus_guest.py): each side reads exactly what the other
wrote, and a batch that breaks the framing is a FramingError, never anything else."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings, strategies as st

from fs_bus.runtime.framing import (
    FramingError, Record, decode_input, decode_output, encode_input, encode_output,
)
from tests.guests.build import REPO

sys.path.insert(0, str(REPO / "sdk" / "python"))
import fs_bus_guest as guest  # noqa: E402 - the guest SDK is a plain file outside the package

blobs = st.binary(max_size=64)
maybe_blobs = st.none() | blobs
headers = st.lists(st.tuples(st.text(max_size=12), maybe_blobs), max_size=4)
records = st.builds(
    Record, value=maybe_blobs, key=maybe_blobs, headers=st.none() | headers.filter(bool),
    timestamp=st.integers(-1, 2**62), partition=st.integers(0, 2**31 - 1), offset=st.integers(0, 2**62))
outputs = st.tuples(st.integers(0, 2**32 - 1), maybe_blobs, maybe_blobs, st.none() | headers.filter(bool))


@given(st.lists(records, max_size=20))
def test_an_input_batch_decodes_to_the_records_it_was_made_of(batch):
    assert decode_input(encode_input(batch)) == batch


@given(st.lists(records, max_size=20), st.integers(0, 2**32 - 1))
def test_the_guest_sdk_reads_every_field_the_host_wrote(batch, source_id):
    seen = guest.decode_input(encode_input(batch), source_id)
    assert [(r.value, r.key, r.headers, r.timestamp, r.partition, r.offset, r.source_id) for r in seen] == [
        (r.value(), r.key(), list(r.headers() or []), r.timestamp()[1], r.partition(), r.offset(), source_id)
        for r in batch]


@given(st.lists(outputs, max_size=20), st.integers(-1, 2**31 - 1), st.text(max_size=40))
def test_an_output_batch_decodes_to_what_was_emitted_and_why_it_stopped(emitted, failed, error):
    assert decode_output(encode_output(emitted, failed, error)) == (emitted, failed, error)


@given(st.lists(records, min_size=1, max_size=10), st.data())
def test_the_guest_sdk_reports_what_ran_before_a_failing_record_and_its_index(batch, data):
    fails_at = data.draw(st.integers(0, len(batch)))  # == len(batch): nothing fails

    def process(r):
        if r.offset == fails_at:  # offsets below are the records' indexes
            raise KeyError("boom")
        return [guest.Output(r.value, target=1), guest.Output(b"h", key=None, headers=[("n", b"v")]), b"plain"]

    distinct = [Record(r.value(), r.key(), r.headers(), r.timestamp()[1], r.partition(), i)
                for i, r in enumerate(batch)]
    records_in = guest.decode_input(encode_input(distinct))
    out, failed, error = decode_output(guest.run_batch(records_in, process))
    ran = distinct[:fails_at]
    assert failed == (fails_at if fails_at < len(batch) else -1)
    assert ("KeyError" in error) == (fails_at < len(batch))
    assert out == [o for r in ran for o in (
        (1, r.value(), r.key(), None), (0, b"h", None, [("n", b"v")]), (0, b"plain", r.key(), None))]


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_garbage_is_a_framing_error(data):
    for decode in (decode_input, decode_output):
        try:
            decode(data)
        except FramingError:
            pass


@given(st.lists(outputs, min_size=1, max_size=5), st.data())
def test_a_truncated_output_batch_is_a_framing_error(emitted, data):
    raw = encode_output(emitted)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FramingError):
        decode_output(raw[:cut])


@given(st.lists(records, min_size=1, max_size=5), st.data())
def test_a_truncated_input_batch_is_a_framing_error(batch, data):
    raw = encode_input(batch)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FramingError):
        decode_input(raw[:cut])


def test_the_magic_names_the_direction():
    with pytest.raises(FramingError, match="expected b'FSBO'"):
        decode_output(encode_input([Record(b"x")]))
