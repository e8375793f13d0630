"""Avro single-object encoding: round trips, and every kind of bad input is a DecodeError."""

from hypothesis import given, settings, strategies as st

from fs_bus.control import codec
from fs_bus.control.records import (
    ArtifactKind, ArtifactManifest, ChunkRef, DesiredState, FunctionRecord, decode_function, encode_function,
)
from fs_bus.errors import DecodeError
from fs_bus.status import records as status

import pytest

text = st.text(max_size=40)
records = st.builds(
    FunctionRecord,
    name=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    task_type=st.sampled_from(["processor", "python"]),
    config_yaml=text,
    artifact=st.builds(
        ArtifactManifest,
        sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
        size=st.integers(0, 2**40),
        kind=st.sampled_from(list(ArtifactKind)),
        topic=st.just("fs-bus.artifacts"),
        chunks=st.lists(st.builds(ChunkRef, st.integers(0, 100), st.integers(0, 2**50), st.integers(0, 2**20)),
                        max_size=5).map(tuple),
        signature=st.none() | st.binary(min_size=64, max_size=64),
        signed_by=st.none() | st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    ),
    desired_state=st.sampled_from(list(DesiredState)),
    revision=st.integers(1, 2**40),
    updated_at=st.integers(0, 2**42),
    updated_by=text,
    state_generation=st.integers(0, 2**40),
    code_revision=st.integers(1, 2**40),
    upgrade_from=st.none() | st.integers(1, 2**40),
    reason=st.none() | text,
    shadow_of=st.none() | st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    source_headers=st.booleans(),
    shadow_from=st.lists(st.from_regex(r"[a-z]{1,8}:[0-9]{1,3}:[0-9]{1,9}", fullmatch=True), max_size=3).map(tuple),
)


SAMPLE = FunctionRecord(
    name="upper", task_type="processor", config_yaml="name: upper\n",
    artifact=ArtifactManifest("ab" * 32, 10, ArtifactKind.WASM_COMPONENT, "fs-bus.artifacts", (ChunkRef(0, 7, 10),)),
    desired_state=DesiredState.RUNNING, revision=3, updated_at=1_700_000_000_000, updated_by="me@host")


@given(records)
def test_function_record_round_trips(record):
    assert decode_function(encode_function(record)) == record


def _encode_v1(record: FunctionRecord) -> bytes:
    """A record as an fs-bus from before the signature and state-generation fields wrote it."""
    import io
    import fastavro
    old = codec._load(codec.HISTORY_DIR / "function_record.v1.avsc")
    a = record.artifact
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old.parsed, {
        "name": record.name, "task_type": record.task_type, "config_yaml": record.config_yaml,
        "artifact": {"sha256": a.sha256, "size": a.size, "kind": a.kind.value, "topic": a.topic,
                     "chunks": [{"partition": c.partition, "offset": c.offset, "size": c.size} for c in a.chunks]},
        "desired_state": record.desired_state.value, "revision": record.revision,
        "updated_at": record.updated_at, "updated_by": record.updated_by})
    return codec.MAGIC + old.fingerprint + buf.getvalue()


def test_records_written_with_an_older_schema_read_with_the_new_fields_defaulted():
    old = _encode_v1(SAMPLE)
    assert old[2:10] != codec.schemas()["FunctionRecord"].fingerprint  # really another writer schema
    assert decode_function(old) == SAMPLE
    assert SAMPLE.state_generation == 0 and SAMPLE.artifact.signature is None


def _encode_with(history_file: str, datum: dict) -> bytes:
    import io
    import fastavro
    old = codec._load(codec.HISTORY_DIR / history_file)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old.parsed, datum)
    return codec.MAGIC + old.fingerprint + buf.getvalue()


def test_records_written_before_code_revisions_read_as_revision_1_with_no_upgrade():
    a = SAMPLE.artifact
    old = _encode_with("function_record.v2.avsc", {
        "name": SAMPLE.name, "task_type": SAMPLE.task_type, "config_yaml": SAMPLE.config_yaml,
        "artifact": {"sha256": a.sha256, "size": a.size, "kind": a.kind.value, "topic": a.topic,
                     "chunks": [{"partition": c.partition, "offset": c.offset, "size": c.size} for c in a.chunks],
                     "signature": None, "signed_by": None},
        "desired_state": "RUNNING", "revision": 3, "updated_at": SAMPLE.updated_at, "updated_by": SAMPLE.updated_by,
        "state_generation": 2})
    assert old[2:10] != codec.schemas()["FunctionRecord"].fingerprint
    got = decode_function(old)
    assert got.state_generation == 2
    assert (got.code_revision, got.upgrade_from, got.reason, got.shadow_of, got.source_headers, got.shadow_from) == (
        1, None, None, None, False, ())


def test_status_written_before_code_revisions_reads_code_revision_0():
    old = _encode_with("function_status.v2.avsc", {
        "function": "f", "node_id": "n1", "revision": 4, "state": "RUNNING", "error": None, "partitions": ["t:0"],
        "updated_at": 1_700_000_000_000, "errors": 2})
    table = status.apply(status.StatusTable(), b"function/f/n1", old)
    st_ = table.functions[("f", "n1")]
    assert (st_.revision, st_.errors, st_.code_revision) == (4, 2, 0)


def test_header_names_the_writer_schema():
    data = encode_function(SAMPLE)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec.schemas()["FunctionRecord"].fingerprint


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_decode_error(data):
    try:
        codec.decode(data)
    except DecodeError:
        pass


@settings(max_examples=500)
@given(records, st.data())
def test_mutated_records_decode_or_fail_cleanly(record, data):
    raw = bytearray(encode_function(record))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        decode_function(bytes(raw[:cut]))
    except DecodeError:
        pass


def test_unknown_fingerprint_is_reported():
    body = encode_function(SAMPLE)
    forged = body[:2] + b"\x00" * 8 + body[10:]
    with pytest.raises(DecodeError, match="unknown schema"):
        codec.decode(forged)


def test_a_status_record_on_the_control_topic_is_refused():
    hb = status.encode_heartbeat(status.NodeHeartbeat("n", "h", 1, "v", 0, 0, 1000, 0))
    with pytest.raises(DecodeError, match="expected a FunctionRecord"):
        decode_function(hb)


def test_trailing_bytes_are_refused():
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode(encode_function(SAMPLE) + b"x")


def test_heartbeats_of_an_older_node_read_with_no_labels_and_no_footprint():
    import io
    import fastavro
    old = codec._load(codec.HISTORY_DIR / "node_heartbeat.v1.avsc")
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old.parsed, {
        "node_id": "n1", "host": "h", "pid": 7, "version": "0.1.0", "started_at": 1, "heartbeat_at": 2,
        "interval_ms": 2000, "functions": 3})
    data = codec.MAGIC + old.fingerprint + buf.getvalue()
    assert data[2:10] != codec.schemas()["NodeHeartbeat"].fingerprint
    table = status.apply(status.StatusTable(), b"node/n1", data)
    assert table.nodes["n1"] == status.NodeHeartbeat("n1", "h", 7, "0.1.0", 1, 2, 2000, 3)
    assert table.nodes["n1"].labels == {} and table.nodes["n1"].rss_bytes == 0


def test_heartbeat_labels_and_footprint_round_trip():
    hb = status.NodeHeartbeat("n1", "h", 7, "0.1.0", 1, 2, 2000, 3, {"zone": "a", "gpu": ""}, 123456, 17)
    assert status.apply(status.StatusTable(), b"node/n1", status.encode_heartbeat(hb)).nodes["n1"] == hb
