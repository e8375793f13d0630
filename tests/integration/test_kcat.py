"""Kafka-native tooling with Debian's kcat: `fs-bus decode` reads the control topic as
kcat prints it, and one `kcat -P` of a JSON FunctionRecord stops a function."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.integration.harness import ROOT, UPPER_WASM, OutputReader, function_state, produce, upper_config, wait_until

FORMAT = r"%t %p %o %k\t%s\n"


@pytest.fixture(scope="module")
def kcat() -> str:
    path = shutil.which("kcat")
    assert path, "kcat is not installed: ./test installs it (system-packages.txt), or apt-get install kcat"
    return path


def decode_topic(kcat: str, bootstrap: str, topic: str, *decode_args: str) -> subprocess.CompletedProcess:
    """kcat -C ... | fs-bus decode ..., as the README shows it."""
    read = subprocess.run([kcat, "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", FORMAT],
                          capture_output=True, timeout=60, check=True)
    return subprocess.run([sys.executable, "-m", "fs_bus", "decode", "-f", FORMAT, *decode_args], input=read.stdout,
                          capture_output=True, timeout=60, cwd=ROOT)


def test_decode_shows_the_control_topic_and_one_kcat_command_stops_a_function(
        kcat, bootstrap_servers, namespace, client, nodes):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))
    control = f"{namespace}.control"

    decoded = decode_topic(kcat, bootstrap_servers, control)
    assert decoded.returncode == 0, decoded.stderr
    # A CREATE writes the function's code revision 1 under its history key, then its record.
    history, doc = [json.loads(line) for line in decoded.stdout.splitlines()]
    assert history["key"] == "history/upper/1" and history["schema"] == "FunctionRevision"
    assert history["value"]["code_revision"] == 1 and history["value"]["reason"] == {"string": "create"}  # Avro's JSON: a union names its branch
    assert doc["topic"] == control and doc["partition"] == 0 and doc["key"] == "upper"
    assert doc["schema"] == "FunctionRecord" and doc["encoding"] == "avro"
    assert doc["value"]["desired_state"] == "RUNNING" and doc["value"]["config_yaml"].startswith("name: upper\n")

    # The whole record, STOPPED, with the next revision: one kcat command.
    stopped = doc["value"] | {"desired_state": "STOPPED", "revision": doc["value"]["revision"] + 1}
    subprocess.run([kcat, "-P", "-b", bootstrap_servers, "-t", control, "-K", "|"],
                   input=f"upper|{json.dumps(stopped)}\n".encode(), timeout=60, check=True)
    wait_until(lambda: (f := function_state(client, "upper")) and f.desired == "STOPPED" and f.status == "STOPPED",
               30, "upper STOPPED by the JSON record")

    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(None, b"while stopped")])
    client.start_function("upper")  # the client continues from the hand-written revision
    assert out.wait_for(1)[0][1] == b"WHILE STOPPED"
    assert function_state(client, "upper").revision == stopped["revision"] + 1
    out.close()

    # Both records read back; the JSON one as JSON.
    encodings = [json.loads(line)["encoding"] for line in decode_topic(kcat, bootstrap_servers, control).stdout.splitlines()]
    assert encodings[:3] == ["avro", "avro", "json"]


def test_decode_reports_a_bad_control_record_with_its_coordinates_and_still_prints_the_rest(
        kcat, bootstrap_servers, namespace, client):
    control = f"{namespace}.control"
    client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                      upper_config(bootstrap_servers, "upper", f"{namespace}-in", f"{namespace}-out"),
                                      wait=False)
    subprocess.run([kcat, "-P", "-b", bootstrap_servers, "-t", control, "-K", "|"],
                   input=b'junk|not a record\nupper|{"name": "upper"}\n', timeout=60, check=True)
    decoded = decode_topic(kcat, bootstrap_servers, control)
    assert decoded.returncode == 1
    assert [json.loads(line)["offset"] for line in decoded.stdout.splitlines()] == [0, 1]  # history, record
    errors = decoded.stderr.decode()
    assert f"{control}[0]@2 key='junk': not Avro single-object encoding" in errors
    assert f"{control}[0]@3 key='upper': FunctionRecord: missing field 'task_type'" in errors
    # The node and the client skip them the same way: upper is still there, RUNNING.
    assert function_state(client, "upper").desired == "RUNNING"
