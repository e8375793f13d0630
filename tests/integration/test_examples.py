"""The examples that build from source, each built by its own build.sh and run
through a real node on the real broker: python-processor (a type: python function
registered by its main.py), c-processor (zig cc), zig-processor (Zig) and
js-processor (componentize-js).

They are the seed's word counter, so they must emit exactly what the Go and
componentize-py counters emit (test_world.py), and keep their counts in the kv
store across STOP/START.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.guests import build
from tests.integration.harness import ROOT, OutputReader, function_state, produce, wait_until
from tests.integration.test_world import example_config

EXPECTED = [
    {"total_processed": 1, "counter_map": {"hello": 2, "world": 1}},
    {"total_processed": 2, "counter_map": {"hello": 3}},
    {"total_processed": 3, "counter_map": {"fs": 2, "bus": 1}},
]
SAMPLE = [(b"a", b"hello world hello"), (b"b", b"hello"), (b"c", b"fs bus fs")]


@pytest.mark.parametrize("example", ["c-processor", "zig-processor", "js-processor"])
def test_a_component_example_built_from_source_counts_like_the_seed_and_keeps_state_across_stop_start(
        bootstrap_servers, namespace, client, nodes, example):
    component = build.example(example)
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(component, example_config(example, bootstrap_servers, src, dst), timeout=120)
    name = f"{example}-example"
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, SAMPLE)
    assert [json.loads(v) for _, v in out.wait_for(3)] == EXPECTED
    assert [k for k, _ in out.records] == [b"a", b"b", b"c"]

    client.stop_function(name)
    client.start_function(name)
    produce(bootstrap_servers, src, [(b"d", b'hello "quoted"\tbus')])
    got = out.wait_for(4)[3][1]
    # Escaping as Python's json.dumps(ensure_ascii=False) writes it, like the Go counter.
    assert got == b'{"total_processed": 4, "counter_map": {"hello": 4, "\\"quoted\\"": 1, "bus": 2}}'
    # An empty record is an empty list across the boundary: no words, one more record.
    produce(bootstrap_servers, src, [(b"e", b"")])
    assert out.wait_for(5)[4] == (b"e", b'{"total_processed": 5, "counter_map": {}}')
    assert function_state(client, name).status == "RUNNING"
    out.close()


def run_example(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the checkout's fs_bus, as `pip install -e .` gives
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_python_processor_builds_registers_from_main_py_and_counts_like_the_seed(
        bootstrap_servers, namespace, nodes, client, tmp_path):
    built = run_example(["bash", "examples/python-processor/build.sh"])
    assert built.returncode == 0, built.stdout + built.stderr
    assert built.stdout.splitlines()[0] == json.dumps(EXPECTED[0])

    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    config = tmp_path / "config.yaml"
    config.write_text(example_config("python-processor", bootstrap_servers, src, dst))
    host, port = bootstrap_servers.rsplit(":", 1)
    registered = run_example([sys.executable, "examples/python-processor/main.py", "--host", host, "--port", port,
                              "--namespace", namespace, "--config", str(config)])
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert json.loads(registered.stdout.splitlines()[-1]) == {
        "name": "python-processor-example", "type": "python", "status": "RUNNING"}

    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, SAMPLE)
    assert [json.loads(v) for _, v in out.wait_for(3, timeout=60)] == EXPECTED
    # custom() answers a word's count from the partition's state.
    assert wait_until(lambda: client.call_function("python-processor-example", b"hello") == b"3", 30,
                      "fs-custom answering hello's count")
    out.close()
