"""Every decoder of records read from Kafka refuses bad bytes with a DecodeError and nothing else.

Random bytes, random bodies behind a known schema fingerprint (so they reach
the Avro reader), and mutations of valid records of every schema, fed the way a
node or client reads them: control records through the desired-table fold,
status records through the status fold, calls and replies through their decoders.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from fs_bus.calls import records as calls
from fs_bus.config.validate import parse_config
from fs_bus.control import codec, table
from fs_bus.control import history as revisions
from fs_bus.control.history import History, encode_revision, revision_of
from fs_bus.control.records import (
    ArtifactKind, ArtifactManifest, ChunkRef, DesiredState, FunctionRecord, encode_function,
)
from fs_bus.artifacts.store import check_manifest
from fs_bus.errors import ArtifactError, DecodeError, InvalidConfig
from fs_bus.status import records as status
from tests.fuzz.cases import Mutator, feed

BATCH = 200
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)

_RECORD = FunctionRecord(
    name="upper", task_type="processor", config_yaml="name: upper\ntype: processor\n",
    artifact=ArtifactManifest("ab" * 32, 10, ArtifactKind.WASM_COMPONENT, "fs-bus.artifacts",
                              (ChunkRef(0, 7, 6), ChunkRef(0, 8, 4)), b"s" * 64, "0123456789abcdef"),
    desired_state=DesiredState.RUNNING, revision=3, updated_at=1_700_000_000_000, updated_by="me@host",
    state_generation=2, code_revision=3, upgrade_from=2, reason="rollback to 1", shadow_of="up",
    source_headers=True, shadow_from=("in:0:12",))
SEEDS = [
    encode_function(_RECORD),
    encode_function(FunctionRecord("f", "python", "", ArtifactManifest("", 0, ArtifactKind.PYTHON_MODULES, "", ()),
                                   DesiredState.STOPPED, 1, 0)),
    status.encode_status(status.FunctionStatus("upper", "n1", 3, status.ObservedState.FAILED, "trap at t[0]@4",
                                               ("t-0", "t-1"), 1_700_000_000_000)),
    status.encode_status(status.FunctionStatus("f", "n", 1, status.ObservedState.RUNNING, None, (), 0)),
    status.encode_heartbeat(status.NodeHeartbeat("n1", "host", 4242, "0.1.0", 1, 2, 2000, 3)),
    calls.encode_request(calls.CallRequest("c0ffee", "upper", b"payload \x00\xff", 1, 2)),
    calls.encode_reply(calls.CallReply("c0ffee", "upper", "n1", "t-0", True, b"answer")),
    calls.encode_reply(calls.CallReply("c0ffee", "upper", "n1", "t-0", False, b"", "it failed")),
    encode_revision(revision_of(_RECORD, "artifact abababab -> cdcdcdcd; config: outputs[0].topic")),
]
FINGERPRINTS = [s.fingerprint for s in codec.schemas().values()]


def control(value: bytes) -> None:
    """What a node does with a control record: fold it (as history under a history key), then
    validate the config it carries."""
    try:
        revisions.apply(History(), b"history/upper/3", value)
    except DecodeError:
        pass
    t = table.apply(table.DesiredTable(), b"upper", value)
    record = t.get("upper")
    if record is not None:
        try:
            parse_config(record.config_yaml)
        except InvalidConfig:
            pass
        try:
            check_manifest(record.artifact)
        except ArtifactError:
            pass


def status_fold(value: bytes) -> None:
    for key in (b"node/n1", b"function/upper/n1"):
        try:
            status.apply(status.StatusTable(), key, value)
        except DecodeError:
            pass


def reply_or_request(value: bytes) -> None:
    try:
        calls.decode_request(value)
    except DecodeError:
        pass
    calls.decode_reply(value)


TARGETS = {"control": control, "status": status_fold, "calls": reply_or_request}


@FUZZ
@given(seed=st.integers(0, 2**64))
def test_mutated_records_of_every_schema_are_refused_cleanly(seed):
    inputs = Mutator(seed, SEEDS).batch(BATCH)
    for name, run in TARGETS.items():
        feed(name, run, inputs, (DecodeError,))


@FUZZ
@given(body=st.binary(max_size=300), fingerprint=st.sampled_from(FINGERPRINTS), seed=st.integers(0, 2**64))
def test_random_bodies_behind_a_known_fingerprint_are_refused_cleanly(body, fingerprint, seed):
    # Behind a real header the bytes reach the Avro reader instead of the magic check.
    head = codec.MAGIC + fingerprint
    inputs = [head + body] + [head + m for m in Mutator(seed, [body or b"\x00"]).batch(BATCH // 2)]
    for name, run in TARGETS.items():
        feed(name, run, inputs, (DecodeError,))


@FUZZ
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=50))
def test_random_bytes_are_refused_cleanly(values):
    for name, run in TARGETS.items():
        feed(name, run, values, (DecodeError,))
    feed("status-keys", lambda k: status.apply(status.StatusTable(), k, SEEDS[2]), values, (DecodeError,))
    feed("control-keys", lambda k: table.apply(table.DesiredTable(), k, SEEDS[0]), values, (DecodeError,))
    feed("history-keys", lambda k: revisions.apply(History(), b"history/" + k, SEEDS[-1]), values, (DecodeError,))


_text = st.text(max_size=200)
schema_valid = st.builds(
    FunctionRecord, name=st.just("upper"), task_type=_text, config_yaml=_text,
    artifact=st.builds(ArtifactManifest, sha256=_text, size=st.integers(-2**63, 2**63 - 1),
                       kind=st.sampled_from(list(ArtifactKind)), topic=_text,
                       chunks=st.lists(st.builds(ChunkRef, st.integers(-2**31, 2**31 - 1),
                                                 st.integers(-2**63, 2**63 - 1), st.integers(-2**31, 2**31 - 1)),
                                       max_size=8).map(tuple),
                       signature=st.none() | st.binary(max_size=80), signed_by=st.none() | _text),
    desired_state=st.sampled_from(list(DesiredState)), revision=st.integers(-2**63, 2**63 - 1),
    updated_at=st.integers(0, 2**42), updated_by=_text, state_generation=st.integers(-2**63, 2**63 - 1))


@FUZZ
@given(st.lists(schema_valid, min_size=1, max_size=20))
def test_schema_valid_nonsense_is_refused_by_config_and_manifest_checks(records):
    feed("control-nonsense", control, [encode_function(r) for r in records], (DecodeError,))
