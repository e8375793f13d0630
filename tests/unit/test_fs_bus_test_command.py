"""`fs-bus test`: a function on records from a file or stdin, without Kafka, as a user
runs it (a subprocess of `python -m fs_bus`): the seed's Go counter and Python counter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
GO_CONFIG = ROOT / "examples" / "go-processor" / "config.yaml"
PY_COUNTER = ROOT / "examples" / "python-processor" / "counter.py"
PY_CONFIG = ROOT / "examples" / "python-processor" / "config.yaml"


def fs_bus_test(*args: object, stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fs_bus", "test", *map(str, args)], input=stdin, cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=_env())


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_records_from_stdin_print_each_output_with_its_index_topic_and_key(go_counter):
    done = fs_bus_test(go_counter, "--config", GO_CONFIG, stdin="to be or not to be\nbe\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        '0 go-processor-output\tkey=(none)\t{"total_processed": 1, "counter_map": {"to": 2, "be": 2, "or": 1, "not": 1}}',
        '0 go-processor-output\tkey=(none)\t{"total_processed": 2, "counter_map": {"be": 3}}',
    ]


def test_json_input_and_output_carry_keys(go_counter, tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text('{"value": "a", "key": "k1"}\n\n{"value": "a"}\n')
    done = fs_bus_test(go_counter, "--config", GO_CONFIG, "--input", records, "--input-format", "json", "-o", "json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(o["output"], o["topic"], o["key"]) for o in lines] == [(0, "go-processor-output", "k1"),
                                                                (0, "go-processor-output", None)]
    assert json.loads(lines[1]["value"])["counter_map"] == {"a": 2}


def test_the_state_file_is_read_before_and_written_after_the_run(go_counter, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"counter-store": {"count:be": "40"}}))
    assert fs_bus_test(go_counter, "--config", GO_CONFIG, "--state", state, stdin="be\n").returncode == 0
    assert json.loads(state.read_text())["counter-store"]["count:be"] == "41"
    again = fs_bus_test(go_counter, "--config", GO_CONFIG, "--state", state, stdin="be\n")
    assert '"be": 42' in again.stdout  # the next run goes on from it, as a partition does after a restart


def test_the_state_after_the_run_is_printed_with_state_dash():
    done = fs_bus_test(PY_COUNTER, "--config", PY_CONFIG, "--state", "-", stdin="x y x\n")
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout[done.stdout.index("{\n"):])
    assert state == {"counter-store": {"count: total_processed": "1", "count:x": "2", "count:y": "1"}}


@pytest.mark.parametrize("function, config", [("go", GO_CONFIG), (PY_COUNTER, PY_CONFIG)], ids=["go", "python"])
def test_a_failing_record_exits_1_naming_its_line_and_coordinates_and_leaves_the_state(go_counter, tmp_path,
                                                                                      function, config):
    state = tmp_path / "state.json"
    preset = json.dumps({"counter-store": {"count:bad": "many"}})
    state.write_text(preset)
    done = fs_bus_test(go_counter if function == "go" else function, "--config", config, "--state", state,
                       stdin="fine\nbad\nnever\n")
    assert done.returncode == 1
    assert done.stdout.count("\n") == 1  # the record before it was produced
    topic = "go-processor-input" if function == "go" else "python-processor-input"
    assert "input line 2:" in done.stderr and f"(record {topic}[0]@1)" in done.stderr
    assert ("trapped in fs-process" if function == "go" else "raised ValueError") in done.stderr
    assert state.read_text() == preset  # nothing committed, as on a node


def test_a_record_past_its_budget_exits_1(go_counter, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(GO_CONFIG.read_text().replace("control-timeout-ms: 5000", "control-timeout-ms: 100"))
    words = " ".join(f"w{i}" for i in range(400_000))  # ~2 s of kv work even on the native host
    done = fs_bus_test(go_counter, "--config", config, stdin=f"{words}\n")
    assert done.returncode == 1
    assert "input line 1: function 'go-processor-example' ran past its 0.1 s budget in fs-process " \
           "(record go-processor-input[0]@0)" in done.stderr


def test_a_bad_config_is_named(go_counter, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("name: x\n")
    done = fs_bus_test(go_counter, "--config", config, stdin="")
    assert done.returncode == 1 and str(config) in done.stderr and "input-groups" in done.stderr
