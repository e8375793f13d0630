"""``fs-bus console``'s JSON API and event streams, against a real broker and node (no browser)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import urllib.request

import pytest

from fs_bus.local.broker import free_port
from tests.integration.console_harness import PRINTER_SOURCE, ConsoleProcess, printer_config
from tests.integration.harness import ROOT, UPPER_WASM, create_topic, produce, upper_config, wait_until


@pytest.fixture
def consoles(bootstrap_servers, namespace, tmp_path):
    started: list[ConsoleProcess] = []

    def start(*args: str) -> ConsoleProcess:
        c = ConsoleProcess(bootstrap_servers, namespace, tmp_path, *args)
        started.append(c)
        return c

    yield start
    for c in started:
        c.close()


def two_functions(bootstrap: str, namespace: str, client) -> tuple[str, str]:
    """``upper`` (2 input partitions) and ``lower`` (1), created with the client and RUNNING."""
    a, b = f"{namespace}-a", f"{namespace}-b"
    create_topic(bootstrap, a, partitions=2)
    create_topic(bootstrap, b, partitions=1)
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap, "upper", a, f"{a}-out"))
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap, "lower", b, f"{b}-out"))
    return a, b


def test_the_api_lists_both_functions_with_status_and_partitions_and_the_node_that_holds_them(
        bootstrap_servers, namespace, client, nodes, consoles):
    nodes("n1")
    a, b = two_functions(bootstrap_servers, namespace, client)
    console = consoles()

    def both_placed():
        status, state = console.get("/api/state")
        assert status == 200 and state["error"] is None, state
        by_name = {f["name"]: f for f in state["functions"]}
        assert set(by_name) == {"upper", "lower"}
        assert by_name["upper"]["nodes"] == {"n1": [f"{a}:0", f"{a}:1"]}, by_name["upper"]
        assert by_name["lower"]["nodes"] == {"n1": [f"{b}:0"]}, by_name["lower"]
        # A node may report a transient failure (and retry) just after an input topic is created.
        assert [f["status"] for f in by_name.values()] == ["RUNNING"] * 2, by_name
        return state
    state = wait_until(both_placed, 60, "both functions placed on n1 and RUNNING")
    upper = next(f for f in state["functions"] if f["name"] == "upper")
    assert (upper["type"], upper["status"], upper["desired"], upper["revision"]) == \
        ("processor", "RUNNING", "RUNNING", 1), upper["error"]
    assert [(p["topic"], p["partition"], p["node"]) for p in upper["partitions"]] == [(a, 0, "n1"), (a, 1, "n1")]
    assert state["allow_writes"] is False
    (node,) = state["nodes"]
    assert (node["node_id"], node["alive"], node["instances"]) == ("n1", True, 2)
    assert {f["name"] for f in node["functions"]} == {"upper", "lower"}

    status, detail = console.get("/api/functions/upper")
    assert status == 200
    assert detail["config_yaml"].startswith("name: upper")
    assert detail["artifact"]["size"] == len(UPPER_WASM.read_bytes())
    assert [(h["revision"], h["desired"]) for h in detail["history"]] == [(1, "RUNNING")]
    status, missing = console.get("/api/functions/nobody")
    assert status == 404 and "nobody" in missing["error"]


def test_the_event_stream_shows_the_record_count_rise_while_records_flow(
        bootstrap_servers, namespace, client, nodes, consoles):
    nodes("n1")
    a, _ = two_functions(bootstrap_servers, namespace, client)
    console = consoles()
    stream = console.events("/api/events")
    counts = []
    produced = False
    for event, state in itertools.islice(stream, 200):
        assert event == "state"
        upper = next((f for f in state["functions"] if f["name"] == "upper"), None)
        if upper is None or upper["records_in"] is None:
            continue
        counts.append(upper["records_in"])
        if not produced and upper["status"] == "RUNNING":
            produce(bootstrap_servers, a, [(f"k{i}".encode(), b"v") for i in range(40)])
            produced = True
        if upper["records_in"] == 40:
            assert upper["lag"] == 0
            break
    else:
        raise AssertionError(f"records_in never reached 40: {counts}")
    assert counts[0] == 0 and counts[-1] == 40, counts
    assert counts == sorted(counts), counts  # it only rises


def test_errors_per_second_rise_while_a_function_fails_on_records(
        bootstrap_servers, namespace, client, nodes, consoles):
    from tests.integration.test_error_policy import PICKY, picky_config
    nodes("n1")
    src = f"{namespace}-in"
    create_topic(bootstrap_servers, src, partitions=1)
    client.create_python_function("Picky", [("picky", PICKY)],
                                  picky_config(bootstrap_servers, src, f"{namespace}-out", "errors.policy: skip"),
                                  timeout=120)
    console = consoles()
    produce(bootstrap_servers, src, [(f"k{i}".encode(), b"boom %d" % i) for i in range(3)])

    def failing():
        picky = next((f for f in console.get("/api/state")[1]["functions"] if f["name"] == "picky"), None)
        assert picky is not None, "not listed yet"
        # Each poison record fails twice (its first attempt and one retry) before it is skipped.
        assert picky["errors"] is not None and picky["errors"] >= 2 and picky["errors_per_s"], picky
        return picky
    wait_until(failing, 90, "errors counted and a rate of errors")
    counted = wait_until(lambda: [r["errors"] for r in console.get("/api/functions/picky")[1]["node_reports"]
                                  if r["errors"] >= 6], 60, "every poison record's failures counted")
    assert counted[0] <= 9, counted  # at most 3 per record: a batch that died whole, then the record alone


def test_a_read_only_console_refuses_every_write_and_nothing_changes(
        bootstrap_servers, namespace, client, nodes, consoles):
    nodes("n1")
    two_functions(bootstrap_servers, namespace, client)
    console = consoles()
    for path in ("/api/functions/upper/stop", "/api/functions/upper/start", "/api/functions/upper/drop",
                 "/api/functions"):
        status, doc = console.post(path, {"config": "name: x", "artifact_base64": "AA=="})
        assert status == 403, (path, doc)
        assert "--allow-writes" in doc["error"]
    # GET never writes either: the action paths are not pages.
    assert console.get("/api/functions/upper/stop")[0] == 404
    assert {(f.name, f.desired) for f in client.show_functions().functions} == \
        {("upper", "RUNNING"), ("lower", "RUNNING")}
    assert client.describe_function("upper").revision == 1


def test_with_allow_writes_stop_goes_through_the_client_and_other_origins_are_refused(
        bootstrap_servers, namespace, client, nodes, consoles):
    nodes("n1")
    two_functions(bootstrap_servers, namespace, client)
    console = consoles("--allow-writes")
    assert console.get("/api/state")[1]["allow_writes"] is True
    # A page on another site could post to 127.0.0.1: the console refuses it.
    status, doc = console.post("/api/functions/upper/stop", headers={"Origin": "http://elsewhere.example"})
    assert status == 403 and "another origin" in doc["error"]
    status, doc = console.request("POST", "/api/functions/upper/stop", None, {"Content-Type": "text/plain"})
    assert status == 403 and "JSON" in doc["error"]
    assert client.describe_function("upper").desired == "RUNNING"

    status, doc = console.post("/api/functions/upper/stop")
    assert (status, doc) == (200, {"ok": True, "message": "function 'upper' stopped"})
    assert client.describe_function("upper").desired == "STOPPED"
    wait_until(lambda: {f["name"]: f["status"] for f in console.get("/api/state")[1]["functions"]}["upper"]
               == "STOPPED", 30, "the console showing upper STOPPED")
    status, detail = console.get("/api/functions/upper")
    assert [(h["revision"], h["desired"]) for h in detail["history"]] == [(1, "RUNNING"), (2, "STOPPED")]

    status, doc = console.post("/api/functions/nobody/drop")
    assert status == 404 and "nobody" in doc["error"]
    status, doc = console.post("/api/functions", {"config": "name: bad\n", "artifact_base64": "AGFzbQ=="})
    assert status == 400, doc


def test_the_log_stream_sends_a_line_the_function_printed(bootstrap_servers, namespace, client, nodes, consoles,
                                                          tmp_path):
    words = f"{namespace}-words"
    create_topic(bootstrap_servers, words)
    nodes("n1")
    assert client.create_python_function("Printer", [("printer_fn", PRINTER_SOURCE)],
                                         printer_config(bootstrap_servers, namespace, words))
    produce(bootstrap_servers, words, [(None, b"hello console")])
    console = consoles()
    # The stream first sends what the logs topic already holds, then follows it.
    for event, data in console.events("/api/functions/printer/logs?since=10m", timeout=90):
        if event == "line" and data["line"] == "saw hello console":
            assert (data["function"], data["node"], data["topic"], data["stream"]) == \
                ("printer", "n1", words, "stdout")
            break
    else:
        raise AssertionError("the log stream ended without the printed line")


def test_fs_bus_local_up_starts_the_console_and_prints_its_address(tmp_path):
    d, port = str(tmp_path / "local"), str(free_port())

    def fs_bus(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fs_bus", "local", *args, "--dir", d], capture_output=True,
                              text=True, timeout=180, cwd=ROOT)

    try:
        up = fs_bus("up", "--port", port, "--console-port", "0")
        assert up.returncode == 0, up.stderr
        found = re.search(r"console: (http://127\.0\.0\.1:\d+/) \(read-only", up.stderr)
        assert found, up.stderr
        url = found.group(1)
        state = wait_until(lambda: (lambda s: s if s["nodes"] else None)(
            json.loads(urllib.request.urlopen(url + "api/state", timeout=10).read())), 30, "the local node listed")
        assert (state["namespace"], state["allow_writes"], state["nodes"][0]["node_id"]) == \
            ("fs-bus", False, "local-1")
        status = fs_bus("status", "-o", "json")
        assert json.loads(status.stdout)["console_url"] == url
    finally:
        down = fs_bus("down")
    assert "console stopped" in down.stderr, down.stderr
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "api/state", timeout=5)


def test_a_replace_shows_as_a_new_code_revision_on_the_functions_page_and_each_node(
        bootstrap_servers, namespace, client, nodes, consoles):
    nodes("n1")
    a, _ = two_functions(bootstrap_servers, namespace, client)
    console = consoles()
    config = upper_config(bootstrap_servers, "upper", a, f"{a}-out2")  # the outputs may change in place
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(), config, replace=True)

    def replaced():
        status, detail = console.get("/api/functions/upper")
        assert status == 200 and detail["code_revision"] == 2, detail
        assert [(r["code_revision"], r["running"]) for r in detail["revisions"]] == [(2, True), (1, False)], detail
        assert "outputs" in detail["revisions"][0]["changes"], detail["revisions"][0]
        assert [r["code_revision"] for r in detail["node_reports"]] == [2], detail["node_reports"]
        return detail

    wait_until(replaced, 60, "the console showing revision 2 running on n1")
