"""The CLI for scripts, against a real broker and node: `fs-bus sql -o json` and `fs-bus fetch`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from tests.integration.harness import ROOT, UPPER_WASM, upper_config


def fs_bus(bootstrap: str, namespace: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fs_bus", *args, "-b", bootstrap, "--namespace", namespace],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_sql_json_output_gives_one_object_per_statement_and_errors_as_json(
        bootstrap_servers, namespace, nodes, tmp_path):
    nodes("n1")
    config = tmp_path / "upper.yaml"
    config.write_text(upper_config(bootstrap_servers, "upper", f"{namespace}-in", f"{namespace}-out"))
    script = (f"CREATE FUNCTION WITH ('function_path'='{UPPER_WASM}', 'config_path'='{config}'); "
              "STOP FUNCTION upper; SHOW FUNCTIONS;")
    r = fs_bus(bootstrap_servers, namespace, "sql", "-o", "json", "-e", script)
    assert r.returncode == 0, r.stderr
    created, stopped, shown = [json.loads(line) for line in r.stdout.splitlines()]
    assert created == {"statement": "CREATE FUNCTION", "function": "upper", "function_path": str(UPPER_WASM),
                       "config_path": str(config), "result": "created"}
    assert stopped == {"statement": "STOP FUNCTION", "function": "upper", "result": "stopped"}
    (upper,) = shown["functions"]
    assert upper["name"] == "upper" and upper["desired"] == "STOPPED" and upper["status"] == "STOPPED"
    assert upper["revision"] == 2 and upper["artifact_sha256"] == hashlib.sha256(UPPER_WASM.read_bytes()).hexdigest()
    assert [n["node_id"] for n in shown["nodes"] if n["alive"]] == ["n1"]

    r = fs_bus(bootstrap_servers, namespace, "sql", "-o", "json", "-e", "START FUNCTION nope;")
    assert r.returncode == 1 and r.stdout == ""
    assert json.loads(r.stderr) == {"error": "function 'nope' does not exist (SHOW FUNCTIONS lists the ones that do)",
                                    "type": "FunctionNotFound", "exit_code": 1}


def test_fetch_downloads_the_artifact_the_nodes_run_byte_for_byte(bootstrap_servers, namespace, client, tmp_path):
    big = _with_padding_section(UPPER_WASM.read_bytes(), 3 << 20)
    client.create_function_from_bytes(big, upper_config(bootstrap_servers, "big", f"{namespace}-in",
                                                        f"{namespace}-out"), wait=False)
    out = tmp_path / "big.wasm"
    r = fs_bus(bootstrap_servers, namespace, "fetch", "big", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == big
    assert hashlib.sha256(big).hexdigest() in r.stderr
    assert "downloading" not in r.stderr  # no progress bar when stderr is not a terminal

    r = fs_bus(bootstrap_servers, namespace, "fetch", "nope")
    assert r.returncode == 1 and "function 'nope' does not exist" in r.stderr


def _with_padding_section(component: bytes, size: int) -> bytes:
    """A valid component made large by a custom section (id 0) appended at the end."""
    name = b"padding"
    body = _leb(len(name)) + name + b"\0" * size
    return component + b"\x00" + _leb(len(body)) + body


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
