"""The fast path in process: real components of fs-bus's fast-processor world
(wit/fs-bus/batch.wit), one written with the Python SDK (tests/guests/fast_probe)
and one with the Go SDK (examples/upper-fast), run by WasmProcessor."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from fs_bus.errors import BatchFailed, GuestError
from fs_bus.runtime.framing import Record
from fs_bus.runtime.wasm import LoadedComponent, WasmEngine, WasmProcessor
from tests.guests import build
from tests.wasm_hosts import AVAILABLE


@pytest.fixture(scope="session", params=AVAILABLE)
def engine(request: pytest.FixtureRequest) -> Iterator[WasmEngine]:
    with WasmEngine(build.CACHE / "compiled", host=request.param) as e:
        yield e


def _load(engine: WasmEngine, wasm: bytes) -> LoadedComponent:
    return engine.load(hashlib.sha256(wasm).hexdigest(), wasm)


@pytest.fixture(scope="session")
def probe(engine: WasmEngine, tmp_path_factory: pytest.TempPathFactory) -> LoadedComponent:
    try:
        return _load(engine, build.fast_probe(tmp_path_factory.mktemp("guest")))
    except build.GuestBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def upper_fast(engine: WasmEngine) -> LoadedComponent:
    try:
        return _load(engine, build.example("upper-fast"))
    except build.GuestBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def processor(engine: WasmEngine, probe: LoadedComponent) -> Iterator[WasmProcessor]:
    with WasmProcessor(engine, probe, {"greeting": "hi"}, function_name="probe") as p:
        yield p


def test_a_component_exporting_the_batch_interface_is_recognised(probe, upper_fast, processor):
    assert probe.fast and upper_fast.fast
    assert "fs-process" not in probe.exports
    assert processor.fast and processor.parallel_batches  # a batch is one call without the GIL


def test_the_guest_sees_each_records_key_headers_timestamp_partition_offset_and_source(processor):
    emitted = processor.process_records(3, [Record(b"hello", b"k1", [("h", b"v"), ("empty", None)], 1234, 2, 77),
                                            Record(b"world", None, None, -1, 2, 78)])
    assert emitted.records == [
        (0, b"HELLO", b"k1", [("offset", b"77"), ("partition", b"2"), ("timestamp", b"1234"), ("source", b"3"),
                              ("greeting", b"hi"), ("in-h", b"v"), ("in-empty", None)]),
        (0, b"WORLD", None, [("offset", b"78"), ("partition", b"2"), ("timestamp", b"-1"), ("source", b"3"),
                             ("greeting", b"hi")]),
    ]


def test_emitted_records_choose_their_output_key_and_count(processor):
    emitted = processor.process_records(0, [Record(b"twice", b"in"), Record(b"drop"), Record(b"to:1 x", b"k")])
    assert emitted.records == [(0, b"one", b"in", None), (0, b"two", b"k2", None), (1, b"to:1 x", None, None)]


def test_a_failing_record_names_its_index_and_what_ran_before_it_counts(processor):
    with pytest.raises(BatchFailed) as info:
        processor.process_records(0, [Record(b"twice"), Record(b"fail"), Record(b"never")])
    assert info.value.index == 1 and "ValueError: asked to fail" in str(info.value)
    assert [r[1] for e in info.value.done for r in e.records] == [b"one", b"two"]
    # A failing record is the function's error, not a trap: the instance goes on.
    assert not processor.broken
    assert processor.process_records(0, [Record(b"again")]).records[0][1] == b"AGAIN"


def test_the_reference_entry_points_still_work_on_a_fast_guest(processor):
    assert processor.process(0, b"abc").records[0][:2] == (0, b"ABC")
    per_record = processor.process_batch(0, [b"a", b"b"])
    assert len(per_record) == 2 and [r[1] for e in per_record for r in e.records] == [b"A", b"B"]


def test_the_guest_sees_only_its_batch_directory(engine, probe):
    p = WasmProcessor(engine, probe, {}, function_name="probe")
    directory = p._files.dir  # the host side of /fs-bus
    assert sorted(os.listdir(directory)) == ["in", "out"]
    p.close()
    assert not os.path.exists(directory)  # nothing left behind


def test_the_go_sdk_upper_cases_every_byte_value_and_keeps_keys(engine, upper_fast):
    values = [bytes(range(256)), bytes(range(255, -1, -1)), b"", b"mixed Case 123 zZ{`", None]
    with WasmProcessor(engine, upper_fast, {}, function_name="upper-fast") as p:
        emitted = p.process_records(0, [Record(v, b"k%d" % i) for i, v in enumerate(values)])
        upper = lambda v: bytes(c - 32 if 97 <= c <= 122 else c for c in v)
        assert emitted.records == [(0, upper(v), b"k%d" % i, None) for i, v in enumerate(values) if v is not None]
        big = [Record(b"x" * 100, None, None, 1, 0, i) for i in range(5000)]  # batches larger than any before
        assert [r[1] for r in p.process_records(0, big).records] == [b"X" * 100] * 5000


def test_a_trap_in_a_fast_guest_breaks_the_instance(engine, upper_fast):
    with WasmProcessor(engine, upper_fast, {}, function_name="upper-fast") as p:
        os.pwrite(p._files.in_fd, b"garbage!", 0)  # not an input batch: the SDK panics, which traps
        with pytest.raises(GuestError, match="trapped in process-batch"):
            if engine.host == "native":
                p._call("process-batch", p._native.process_batch, 0, 8)
            else:
                p._call("process-batch", p._process_batch, 0, 8)
        assert p.broken
