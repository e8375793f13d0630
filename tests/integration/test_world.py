"""The reference world through a real node: the seed's counters built from source,
every kv operation, state across STOP/START, checkpoints, heartbeats, fs-custom."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.guests import build
from tests.integration.harness import ROOT, OutputReader, function_state, produce, wait_until


@pytest.fixture(scope="session")
def go_counter() -> bytes:
    return build.example("go-processor")


@pytest.fixture(scope="session")
def python_counter() -> bytes:
    return build.example("python-component")


@pytest.fixture(scope="session")
def kv_probe(tmp_path_factory) -> bytes:
    return build.kv_probe(tmp_path_factory.mktemp("guest"))


def example_config(example: str, bootstrap: str, source: str, sink: str) -> str:
    """The example's own config.yaml, pointed at the test broker and topics."""
    text = (ROOT / "examples" / example / "config.yaml").read_text()
    text = text.replace("127.0.0.1:9092", bootstrap).replace(f'"{example}-input"', source)
    text = text.replace(f'"{example}-output"', sink)
    return text.replace('group_id: "', f'group_id: "{source}-')


def probe_config(bootstrap: str, name: str, source: str, sink: str, checkpoints: str) -> str:
    return f"""\
name: {name}
type: processor
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {source}
        group_id: {source}-g
        auto.offset.reset: earliest
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {sink}
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {checkpoints}
init_config:
  probe: "yes"
"""


@pytest.mark.parametrize("example, wasm", [("go-processor", "go_counter"), ("python-component", "python_counter")])
def test_the_seed_counter_built_from_source_counts_exactly_and_keeps_state_across_stop_start(
        request, bootstrap_servers, namespace, client, nodes, example, wasm):
    component = request.getfixturevalue(wasm)
    first = nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    config = example_config(example, bootstrap_servers, src, dst)
    client.create_function_from_bytes(component, config, timeout=120)
    name = next(f.name for f in client.show_functions().functions)
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"a", b"hello world hello"), (b"b", b"hello"), (b"c", b"fs bus fs")])
    got = [json.loads(v) for _, v in out.wait_for(3)]
    assert got == [
        {"total_processed": 1, "counter_map": {"hello": 2, "world": 1}},
        {"total_processed": 2, "counter_map": {"hello": 3}},
        {"total_processed": 3, "counter_map": {"fs": 2, "bus": 1}},
    ]
    assert [k for k, _ in out.records] == [b"a", b"b", b"c"]

    client.stop_function(name)
    client.start_function(name, timeout=120)
    produce(bootstrap_servers, src, [(b"d", b"hello world")])
    assert json.loads(out.wait_for(4)[3][1]) == {"total_processed": 4, "counter_map": {"hello": 4, "world": 2}}
    assert len(out.poll()) == 4

    # Another machine takes over: the component's state comes back from its changelog.
    first.terminate()
    nodes("n2")
    produce(bootstrap_servers, src, [(b"e", b"hello")])
    assert json.loads(out.wait_for(5, 120)[4][1]) == {"total_processed": 5, "counter_map": {"hello": 5}}
    assert len(out.poll()) == 5
    out.close()


def test_every_kv_operation_checkpoints_and_fs_custom_through_a_node(
        bootstrap_servers, namespace, client, nodes, kv_probe, tmp_path):
    nodes("n1")
    src, dst, cps = f"{namespace}-in", f"{namespace}-out", f"{namespace}-checkpoints"
    client.create_function_from_bytes(kv_probe, probe_config(bootstrap_servers, "probe", src, dst, cps), timeout=120)
    out = OutputReader(bootstrap_servers, dst)
    h = lambda b: b.hex()
    ck = lambda kg, k, ns, uk: [h(kg), h(k), h(ns), h(uk)]
    commands = [
        {"op": "put_state", "key": h(b"a"), "value": h(b"1")},
        {"op": "put_state", "key": h(b"b"), "value": h(b"2")},
        {"op": "put_state", "key": h(b"c"), "value": h(b"3")},
        {"op": "get_state", "key": h(b"b")},
        {"op": "get_state", "key": h(b"missing")},
        {"op": "list_states", "start": h(b"a"), "end": h(b"c")},
        {"op": "delete_state", "key": h(b"a")},
        {"op": "list_states", "start": h(b""), "end": h(b"z")},
        {"op": "put", "ck": ck(b"g", b"k", b"n", b"u1"), "value": h(b"x")},
        {"op": "merge", "ck": ck(b"g", b"k", b"n", b"u1"), "value": h(b"y")},
        {"op": "merge", "ck": ck(b"g", b"k", b"n", b"u2"), "value": h(b"z")},
        {"op": "get", "ck": ck(b"g", b"k", b"n", b"u1")},
        {"op": "list_complex", "kg": h(b"g"), "k": h(b"k"), "ns": h(b"n"), "start": h(b"u"), "end": h(b"v")},
        {"op": "delete_prefix", "ck": ck(b"g", b"k", b"n", b"u1")},
        {"op": "list_complex", "kg": h(b"g"), "k": h(b"k"), "ns": h(b"n"), "start": h(b""), "end": h(b"\xff")},
        {"op": "delete", "ck": ck(b"g", b"k", b"n", b"u2")},
        {"op": "get", "ck": ck(b"g", b"k", b"n", b"u2")},
        {"op": "fill", "kg": h(b"big"), "k": h(b"k"), "ns": h(b"n"), "n": 10_000},
        {"op": "scan", "kg": h(b"big"), "k": h(b"k"), "ns": h(b"n")},
        {"op": "report"},
    ]
    produce(bootstrap_servers, src, [(b"cmd", json.dumps(c).encode()) for c in commands])
    answers = [json.loads(v) for _, v in out.wait_for(len(commands), timeout=120)]
    assert answers[:17] == [
        {"ok": None}, {"ok": None}, {"ok": None}, {"ok": h(b"2")}, {"ok": None},
        {"ok": [h(b"a"), h(b"b")]}, {"ok": None}, {"ok": [h(b"b"), h(b"c")]},
        {"ok": None}, {"ok": None}, {"ok": None}, {"ok": h(b"xy")}, {"ok": [h(b"u1"), h(b"u2")]},
        {"ok": None}, {"ok": [h(b"u2")]}, {"ok": None}, {"ok": None},
    ]
    assert answers[17] == {"ok": 10_000}
    assert answers[18]["ok"]["count"] == 10_000 and answers[18]["ok"]["after_end"] is None
    assert answers[19]["ok"]["config"] == {"probe": "yes"}

    # fs-take-checkpoint ran at commits, with ids growing by one; it emitted on output 1.
    checkpoints = OutputReader(bootstrap_servers, cps)
    ids = [int(v.split()[1]) for _, v in checkpoints.wait_for(1)]
    assert ids == list(range(1, len(ids) + 1))

    # fs-custom round trip from the CLI.
    r = subprocess.run([sys.executable, "-m", "fs_bus", "call", "-b", bootstrap_servers, "--namespace", namespace,
                        "probe", "hello"], cwd=ROOT, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"custom:olleh\n"  # a text answer is a line
    assert client.call_function("probe", b"\x00\x01") == b"custom:\x01\x00"
    out.close()
    checkpoints.close()


def test_a_heartbeat_returning_false_restarts_the_instance_and_keeps_its_state(
        bootstrap_servers, namespace, client, nodes, kv_probe):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(kv_probe, probe_config(bootstrap_servers, "probe", src, dst, f"{namespace}-c"),
                                      timeout=120)
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k", json.dumps({"op": "put_state", "key": "6b", "value": "76"}).encode()),
                                     (b"k", json.dumps({"op": "heartbeat", "healthy": False}).encode())])
    out.wait_for(2)
    info = wait_until(lambda: (f := function_state(client, "probe")) and f.error and "restarted" in f.error and f,
                      60, "the status to say the instance restarted")
    assert "fs-check-heartbeat returned false" in info.error and info.status == "RUNNING"
    produce(bootstrap_servers, src, [(b"k", json.dumps({"op": "get_state", "key": "6b"}).encode()),
                                     (b"k", json.dumps({"op": "report"}).encode())])
    answers = [json.loads(v) for _, v in out.wait_for(4)]
    assert answers[2] == {"ok": "76"}  # the state outlived the instance
    assert answers[3]["ok"]["checkpoints"] == []  # a fresh instance: its module globals are new
    out.close()


def test_stop_start_and_drop_of_state(bootstrap_servers, namespace, client, nodes, kv_probe):
    node = nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(kv_probe, probe_config(bootstrap_servers, "probe", src, dst, f"{namespace}-c"),
                                      timeout=120)
    state_dir = node.cache_dir / "state" / namespace / "probe"
    wait_until(lambda: list(state_dir.glob("g0/*.sqlite")), 60, "the partition's state file")
    client.drop_function("probe")
    assert not state_dir.exists()  # DROP forgets the state on the node
