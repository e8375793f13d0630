"""The whole lifecycle against a real broker and real node processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fs_bus.errors import FunctionAlreadyExists, FunctionNotFound, InvalidConfig, NoLiveNodes
from tests.integration.harness import (
    ROOT, UPPER_WASM, OutputReader, function_state, produce, upper_config, wait_until,
)


def test_client_lifecycle_with_data_flowing_and_keys_kept(bootstrap_servers, namespace, client, nodes):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))
    info = function_state(client, "upper")
    assert (info.name, info.task_type, info.status, info.desired) == ("upper", "processor", "RUNNING", "RUNNING")
    assert info.nodes == ("n1",)

    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k1", b"hello"), (b"k2", b"world"), (None, b"no key")])
    assert sorted(out.wait_for(3), key=repr) == sorted([(b"k1", b"HELLO"), (b"k2", b"WORLD"), (None, b"NO KEY")], key=repr)

    with pytest.raises(FunctionAlreadyExists):
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))

    assert client.stop_function("upper")
    assert client.stop_function("upper")  # idempotent
    assert function_state(client, "upper").status == "STOPPED"
    produce(bootstrap_servers, src, [(b"k3", b"while stopped")])
    assert client.start_function("upper")
    # START resumes from the group's committed offsets: the new record once, nothing replayed.
    records = out.wait_for(4)
    assert records[3:] == [(b"k3", b"WHILE STOPPED")]
    produce(bootstrap_servers, src, [(b"k4", b"after")])
    assert out.wait_for(5)[4:] == [(b"k4", b"AFTER")]
    assert len(out.poll()) == 5

    assert client.drop_function("upper")
    assert function_state(client, "upper") is None
    with pytest.raises(FunctionNotFound):
        client.drop_function("upper")
    with pytest.raises(FunctionNotFound):
        client.start_function("upper")
    out.close()


def _sql(bootstrap, namespace, text, cwd):
    return subprocess.run([sys.executable, "-m", "fs_bus", "sql", "-b", bootstrap, "--namespace", namespace,
                           "-e", text], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_sql_lifecycle_with_relative_paths_and_exit_codes(bootstrap_servers, namespace, nodes, tmp_path):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    (tmp_path / "fn.wasm").write_bytes(UPPER_WASM.read_bytes())
    (tmp_path / "config.yaml").write_text(upper_config(bootstrap_servers, "upper", src, dst))

    r = _sql(bootstrap_servers, namespace, "create function with ('function_path'='fn.wasm', "
             "'config_path'='config.yaml'); SHOW FUNCTIONS;", tmp_path)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if "upper" in line and "processor" in line)
    assert "RUNNING" in row and "n1" in row

    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k", b"sql")])
    assert out.wait_for(1) == [(b"k", b"SQL")]

    r = _sql(bootstrap_servers, namespace, 'STOP FUNCTION upper; show functions', tmp_path)
    assert r.returncode == 0, r.stderr
    assert "STOPPED" in next(line for line in r.stdout.splitlines() if "upper" in line and "processor" in line)
    r = _sql(bootstrap_servers, namespace, 'START FUNCTION "upper"; DROP FUNCTION upper; SHOW FUNCTIONS', tmp_path)
    assert r.returncode == 0, r.stderr
    assert "0 function(s)" in r.stdout

    r = _sql(bootstrap_servers, namespace, "DROP FUNCTION upper", tmp_path)
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = _sql(bootstrap_servers, namespace, "DROP FUNCTION IF EXISTS upper", tmp_path)
    assert r.returncode == 0, r.stderr
    r = _sql(bootstrap_servers, namespace, "SHOW FUNCTIONS; STRAT FUNCTION upper", tmp_path)
    assert r.returncode == 2 and "column 17" in r.stderr and "^" in r.stderr
    r = _sql(bootstrap_servers, namespace, "CREATE FUNCTION WITH ('function_path'='missing.wasm', "
             "'config_path'='config.yaml')", tmp_path)
    assert r.returncode == 1 and "missing.wasm" in r.stderr
    out.close()


def test_sql_file_option(bootstrap_servers, namespace, nodes, tmp_path):
    nodes("n1")
    (tmp_path / "config.yaml").write_text(upper_config(bootstrap_servers, "f1", f"{namespace}-a", f"{namespace}-b"))
    script = tmp_path / "deploy.sql"
    script.write_text(f"CREATE FUNCTION WITH ('function_path'='{UPPER_WASM}', 'config_path'='config.yaml');\n"
                      "STOP FUNCTION f1;\nSHOW FUNCTIONS;\n")
    r = subprocess.run([sys.executable, "-m", "fs_bus", "sql", "-b", bootstrap_servers, "--namespace", namespace,
                        "-f", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "STOPPED" in next(line for line in r.stdout.splitlines() if "f1" in line and "processor" in line)


@pytest.mark.parametrize("mutate, field", [
    (lambda c: c.replace("topic: in-topic", "topic: 'bad topic!'"), "input-groups[0].inputs[0].topic"),
    (lambda c: c.replace("group_id:", "grup_id:"), "input-groups[0].inputs[0].grup_id"),
    (lambda c: c.replace("outputs:", "outptus:"), "outptus"),
    (lambda c: c.replace("type: processor", "type: lambda"), "type"),
])
def test_invalid_config_is_refused_with_the_field_named_and_nothing_written(
        bootstrap_servers, namespace, client, mutate, field):
    config = mutate(upper_config(bootstrap_servers, "bad", "in-topic", "out"))
    with pytest.raises(InvalidConfig) as info:
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), config)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    assert client.show_functions().functions == []


def test_unknown_key_suggests_the_nearest_known_one(bootstrap_servers, client):
    config = upper_config(bootstrap_servers, "bad", "a", "b").replace("group_id:", "grup_id:")
    with pytest.raises(InvalidConfig, match="did you mean 'group_id'"):
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), config)


def test_no_live_node_is_reported_instead_of_hanging(bootstrap_servers, namespace, client):
    with pytest.raises(NoLiveNodes, match="no fs-bus node is alive"):
        client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                          upper_config(bootstrap_servers, "lonely", "a", "b"), timeout=60)
    info = function_state(client, "lonely")  # the record is durable all the same
    assert info is not None and info.desired == "RUNNING" and info.status == "PENDING"


def test_wait_false_returns_once_durable(bootstrap_servers, namespace, client):
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                             upper_config(bootstrap_servers, "later", "a", "b"), wait=False)
    assert client.stop_function("later", wait=False)
    assert function_state(client, "later").desired == "STOPPED"


def test_readme_flow_with_kcat(bootstrap_servers, namespace, client, nodes):
    """The README's `kcat -P ... <<< 'hello'` reaches the function and comes out upper-cased."""
    import shutil

    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: ./test installs it (system-packages.txt), or apt-get install kcat"
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))
    subprocess.run([kcat, "-P", "-b", bootstrap_servers, "-t", src], input="hello\n", text=True, check=True,
                   timeout=30)
    out = wait_until(lambda: subprocess.run(
        [kcat, "-C", "-b", bootstrap_servers, "-t", dst, "-e", "-q"], capture_output=True, text=True,
        timeout=30).stdout.split(), 30, "HELLO on the output topic")
    assert out == ["HELLO"]
