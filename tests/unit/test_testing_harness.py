"""fs_bus.testing drives a function without Kafka, as a node runs it: the seed's Go
counter (a reference-world component built from examples/go-processor) and a Python
driver, through records, state, checkpoints, watermarks, fs-custom, a trap and a
budget overrun. No broker: nothing here crosses Kafka."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from fs_bus.errors import GuestError, InvalidArtifact
from fs_bus.testing import ComplexKey, FunctionHarness, Input, Output, RecordError
from tests.guests import build

ROOT = Path(__file__).resolve().parents[2]
GO_CONFIG = ROOT / "examples" / "go-processor" / "config.yaml"


@pytest.fixture
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "compiled-cache"  # shared by the tests: compile once


def config_with(tmp_path: Path, base: Path, **runtime: int) -> Path:
    """``base`` with processor-runtime keys replaced (e.g. control_timeout_ms=100)."""
    text = base.read_text()
    for key, value in runtime.items():
        yaml_key = key.replace("_", "-")
        text, n = re.subn(rf"{yaml_key}: \d+", f"{yaml_key}: {value}", text)
        if not n:
            text = text.replace("processor-runtime:\n", f"processor-runtime:\n  {yaml_key}: {value}\n")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def counts(output: Output) -> dict:
    return json.loads(output.value)


# --- the Go counter (reference world, WebAssembly) ---------------------------------


def test_go_counter_emits_per_record_to_its_output_with_the_input_key(go_counter, cache):
    with FunctionHarness(go_counter, GO_CONFIG, cache_dir=cache) as fn:
        first = fn.send(b"to be or not to be", key=b"k1")
        second = fn.send(b"be quick")
    assert [(o.output, o.topic, o.key) for o in first + second] == [(0, "go-processor-output", b"k1"),
                                                                     (0, "go-processor-output", None)]
    assert counts(first[0]) == {"total_processed": 1, "counter_map": {"to": 2, "be": 2, "or": 1, "not": 1}}
    assert counts(second[0]) == {"total_processed": 2, "counter_map": {"be": 3, "quick": 1}}
    assert fn.values(0) == [first[0].value, second[0].value]


def test_go_counter_state_is_read_back_as_the_guest_wrote_it(go_counter, cache):
    with FunctionHarness(go_counter, GO_CONFIG, cache_dir=cache) as fn:
        fn.send_all([b"a b", b"a"])
        assert fn.state("counter-store") == {b"count:a": b"2", b"count:b": b"1", b"count: total_processed": b"2"}
        assert fn.state() == {"counter-store": fn.state("counter-store")}
        assert fn.checkpoint() == []  # the counter's fs-take-checkpoint emits nothing; the state stays
        assert fn.state("counter-store")[b"count:a"] == b"2"


def test_go_counter_starts_from_a_preset_state(go_counter, cache):
    preset = {"counter-store": {"count:be": "40", b"count: total_processed": b"7"}}
    with FunctionHarness(go_counter, GO_CONFIG, state=preset, cache_dir=cache) as fn:
        [out] = fn.send("be")
    assert counts(out) == {"total_processed": 8, "counter_map": {"be": 41}}


def test_a_go_trap_fails_the_record_as_the_node_names_it(go_counter, cache):
    with FunctionHarness(go_counter, GO_CONFIG, state={"counter-store": {"count:x": "many"}}, cache_dir=cache) as fn:
        with pytest.raises(RecordError) as failed:
            fn.send_all([Input(b"a"), Input(b"x", key=b"bad"), Input(b"b")])
        assert fn.values(0) == [b'{"total_processed": 1, "counter_map": {"a": 1}}']  # the record before it counts
        with pytest.raises(GuestError, match="broken after a previous trap"):
            fn.send(b"c")  # wasmtime will not enter a trapped instance again; a node starts a new one
    message = str(failed.value)
    assert "function 'go-processor-example' trapped in fs-process" in message
    assert message.endswith("(record go-processor-input[0]@1)")
    assert failed.value.record == Input(b"x", key=b"bad")


def test_a_go_record_past_its_budget_is_interrupted_with_the_nodes_message(go_counter, cache, tmp_path):
    config = config_with(tmp_path, GO_CONFIG, control_timeout_ms=100)
    words = " ".join(f"w{i}" for i in range(400_000)).encode()  # 400 000 kv round trips: past 0.1 s on either host
    with FunctionHarness(go_counter, config, cache_dir=cache) as fn:
        fn.send(b"warm")
        with pytest.raises(RecordError, match=re.escape(
                "function 'go-processor-example' ran past its 0.1 s budget in fs-process (record go-processor-input[0]@1)")):
            fn.send(words)


def test_source_ids_and_targets_outside_the_config_are_refused(go_counter, cache):
    with FunctionHarness(go_counter, GO_CONFIG, cache_dir=cache) as fn:
        with pytest.raises(ValueError, match="has 1 input.*no source_id 1"):
            fn.send(b"a", source_id=1)


# --- a Python driver (type: python, its own process) -------------------------------

DRIVER = '''
import time

from fs_bus.api import Context, FSProcessorDriver

from helper import shout


class Echo(FSProcessorDriver):
    def init(self, ctx: Context, config: dict[str, str]) -> None:
        self.store = ctx.getOrCreateKVStore("seen")
        self.suffix = config.get("suffix", "").encode()

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        if data == b"boom":
            raise ValueError("boom is not a word")
        if data == b"loop":
            while True:
                time.sleep(0.01)
        self.store.put_state(data, b"%d" % source_id)
        ctx.emit(shout(data) + self.suffix, source_id)

    def process_watermark(self, ctx: Context, source_id: int, watermark: int) -> None:
        ctx.emit(b"watermark %d" % watermark, 1)

    def take_checkpoint(self, ctx: Context, checkpoint_id: int) -> None:
        ctx.emit(b"checkpoint %d" % checkpoint_id, 1)

    def custom(self, payload: bytes) -> bytes:
        return self.store.get_state(payload) or b"?"
'''

PY_CONFIG = """\
name: echo
type: python
input-groups:
  - inputs:
      - {input-type: kafka, bootstrap_servers: "127.0.0.1:9092", topic: words, group_id: echo}
      - {input-type: kafka, bootstrap_servers: "127.0.0.1:9092", topic: more-words, group_id: echo}
outputs:
  - {output-type: kafka, bootstrap_servers: "127.0.0.1:9092", topic: loud}
  - {output-type: kafka, bootstrap_servers: "127.0.0.1:9092", topic: events}
init_config:
  suffix: "!"
processor-runtime:
  control-timeout-ms: 1000
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> tuple[Path, Path]:
    # One directory for the module: an imported module (helper) stays in sys.modules,
    # and a project-local module is found where it was first imported from.
    tmp_path = tmp_path_factory.mktemp("driver")
    (tmp_path / "helper.py").write_text("def shout(data: bytes) -> bytes:\n    return data.upper()\n")
    (tmp_path / "echo_driver.py").write_text(DRIVER)
    (tmp_path / "config.yaml").write_text(PY_CONFIG)
    return tmp_path / "echo_driver.py", tmp_path / "config.yaml"


def test_a_python_driver_runs_with_its_project_modules_and_outputs(driver):
    path, config = driver
    with FunctionHarness(path, config) as fn:
        assert fn.send(b"hi", key=b"k") == [Output(0, "loud", b"k", b"HI!")]
        assert fn.send(b"yo", source_id=1) == [Output(1, "events", None, b"YO!")]
        assert fn.watermark(1234) == [Output(1, "events", None, b"watermark 1234")]
        assert fn.checkpoint() == [Output(1, "events", None, b"checkpoint 1")]
        assert fn.checkpoint() == [Output(1, "events", None, b"checkpoint 2")]
        assert fn.custom(b"yo") == b"1"
        assert fn.heartbeat()
        assert fn.values(1) == [b"YO!", b"watermark 1234", b"checkpoint 1", b"checkpoint 2"]


def test_a_python_drivers_state_is_preset_and_read_with_uncheckpointed_writes(driver):
    path, config = driver
    ck = ComplexKey(b"g", b"k", b"ns", b"u")
    with FunctionHarness(path, config, state={"seen": {"old": "9", ck: b"v"}, "other": {b"x": b"y"}}) as fn:
        fn.send(b"new")  # written after the last checkpoint: still visible
        assert fn.state("seen") == {b"old": b"9", b"new": b"0", ck: b"v"}
        assert fn.state()["other"] == {b"x": b"y"}
        assert fn.custom(b"old") == b"9"


def test_a_python_exception_fails_the_record_with_its_traceback(driver):
    path, config = driver
    with FunctionHarness(path, config) as fn:
        with pytest.raises(RecordError) as failed:
            fn.send_all([b"ok", b"boom", b"later"])
        assert fn.values(0) == [b"OK!"]
    message = str(failed.value)
    assert "raised ValueError: boom is not a word" in message and "echo_driver.py" in message
    assert message.endswith("(record words[0]@1)")


def test_a_python_call_past_its_budget_kills_the_process_and_names_the_record(driver):
    path, config = driver
    with FunctionHarness(path, config) as fn:
        with pytest.raises(RecordError, match=r"^function 'echo' ran past its 1 s budget in process; its process "
                                              r"\(pid \d+\) was killed \(record words\[0\]@0\)$"):
            fn.send(b"loop")


def test_a_python_function_needs_its_driver_class_named_when_the_file_has_several(tmp_path):
    (tmp_path / "two.py").write_text(
        "from fs_bus.api import FSProcessorDriver\n"
        "class A(FSProcessorDriver):\n    def process(self, ctx, s, d): pass\n"
        "class B(FSProcessorDriver):\n    def process(self, ctx, s, d): pass\n")
    (tmp_path / "config.yaml").write_text(PY_CONFIG.replace('  suffix: "!"', '  suffix: ""'))
    with pytest.raises(InvalidArtifact, match=r"defines 2 FSProcessorDriver subclasses \(A, B\); name the one"):
        FunctionHarness(tmp_path / "two.py", tmp_path / "config.yaml")


def test_a_wasm_function_is_refused_a_driver_class(driver, go_counter):
    with pytest.raises(InvalidArtifact, match="give the path of its .wasm component"):
        FunctionHarness(type("X", (), {}), GO_CONFIG)


def test_a_missing_component_says_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"component not found: .*nothing.wasm \(build it first\?\)"):
        FunctionHarness(tmp_path / "nothing.wasm", GO_CONFIG)


def test_the_driver_class_may_be_given_directly(tmp_path):
    module = tmp_path / "direct_driver.py"
    module.write_text(textwrap.dedent('''
        from fs_bus.api import FSProcessorDriver

        class Direct(FSProcessorDriver):
            def process(self, ctx, source_id, data):
                ctx.emit(data[::-1], 0)
    '''))
    (tmp_path / "config.yaml").write_text(PY_CONFIG)
    from fs_bus.testing.harness import _import_file

    cls = _import_file(module).Direct
    with FunctionHarness(cls, tmp_path / "config.yaml") as fn:
        assert fn.send(b"abc") == [Output(0, "loud", None, b"cba")]


# --- a fast-world component (fs-bus:batch, examples/upper-fast) --------------------


def test_a_fast_world_component_gets_whole_records_and_emits_with_its_own_key(cache, tmp_path):
    wasm = tmp_path / "upper-fast.wasm"
    wasm.write_bytes(build.example("upper-fast"))
    with FunctionHarness(wasm, ROOT / "examples" / "upper-fast" / "config.yaml", cache_dir=cache) as fn:
        out = fn.send_all([Input(b"hello", key=b"k1", timestamp=1_700_000_000_000), Input(b"world"), Input(None)])
    assert [(o.output, o.topic, o.key, o.value) for o in out] == [(0, "upper-fast-output", b"k1", b"HELLO"),
                                                                 (0, "upper-fast-output", None, b"WORLD")]


# --- the node's memory limit ---------------------------------------------------------


def test_a_component_past_its_memory_limit_traps_naming_the_limit(go_counter, cache, tmp_path):
    config = config_with(tmp_path, GO_CONFIG, memory_limit_mb=24)
    with FunctionHarness(go_counter, config, cache_dir=cache) as fn:
        fn.send(b"small")
        with pytest.raises(RecordError, match=r"(?s)trapped in fs-process \(its memory is limited to 24 MiB\).*"
                                              r"\(record go-processor-input\[0\]@1\)$"):
            fn.send(b"x" * (32 << 20))  # the record alone does not fit


def test_a_python_driver_past_its_memory_limit_fails_the_record(tmp_path):
    (tmp_path / "hog_driver.py").write_text(
        "from fs_bus.api import FSProcessorDriver\n"
        "class Hog(FSProcessorDriver):\n"
        "    def process(self, ctx, source_id, data):\n"
        "        self.kept = bytearray(int(data) << 20)\n"
        "        ctx.emit(b'ok', 0)\n")
    (tmp_path / "config.yaml").write_text(PY_CONFIG.replace("control-timeout-ms: 1000",
                                                            "control-timeout-ms: 5000\n  memory-limit-mb: 300"))
    with FunctionHarness(tmp_path / "hog_driver.py", tmp_path / "config.yaml") as fn:
        assert fn.send(b"10") == [Output(0, "loud", None, b"ok")]
        with pytest.raises(RecordError, match=r"(?s)raised MemoryError.*\(record words\[0\]@1\)$"):
            fn.send(b"1000")


def test_a_python_driver_runs_in_the_webassembly_sandbox_with_python_runtime_wasm(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "examples" / "python-processor" / "config.yaml").read_text()
                      .replace("type: python\n", "type: python\npython-runtime: wasm\n"))
    counter = ROOT / "examples" / "python-processor" / "counter.py"
    # The runtime component is built with componentize-py once, into the default cache.
    with FunctionHarness(counter, config, state={"counter-store": {"count:a": "9"}}) as fn:
        [out] = fn.send(b"a b")
        assert counts(out) == {"total_processed": 1, "counter_map": {"a": 10, "b": 1}}
        assert fn.state("counter-store")[b"count:a"] == b"10"
        assert fn.custom(b"a") == b"10"
