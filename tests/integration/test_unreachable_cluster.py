"""One function whose input cluster is not there (issue 17, point 1): it says so, quickly,
and every listing and command stays usable for it and for every other function."""

from __future__ import annotations

import time

import pytest

from fs_bus.client import FsClient
from fs_bus.errors import FunctionFailed
from fs_bus.local.broker import free_port
from tests.integration.harness import UPPER_WASM, create_topic, function_state, upper_config, wait_until


@pytest.fixture
def two_functions(bootstrap_servers: str, namespace: str, nodes):
    """``good`` on the test broker; ``bad`` reading from a port nobody listens on."""
    nodes("n1")
    source, sink = f"{namespace}-in", f"{namespace}-out"
    create_topic(bootstrap_servers, source)
    nowhere = f"127.0.0.1:{free_port()}"
    with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace, timeout=30) as client:
        client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                          upper_config(bootstrap_servers, "good", source, sink))
        bad_config = upper_config(bootstrap_servers, "bad", source, sink).replace(
            f'bootstrap_servers: "{bootstrap_servers}"\n        topic: {source}',
            f'bootstrap_servers: "{nowhere}"\n        topic: {source}')
        assert nowhere in bad_config
        yield client, nowhere, bad_config


def test_create_of_a_function_whose_input_cluster_is_unreachable_fails_with_the_reason(two_functions):
    client, nowhere, bad_config = two_functions
    started = time.monotonic()
    with pytest.raises(FunctionFailed) as failed:
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), bad_config)
    assert time.monotonic() - started < 20, "the node's verdict came only when the client's wait ran out"
    assert "input cluster cannot be reached" in str(failed.value) and nowhere in str(failed.value)


def test_listings_show_the_unreachable_cluster_in_its_row_and_stay_correct_for_the_rest(two_functions):
    client, nowhere, bad_config = two_functions
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), bad_config, wait=False)
    wait_until(lambda: (function_state(client, "bad") or None) and function_state(client, "bad").status == "FAILED",
               30, "bad FAILED")
    started = time.monotonic()
    rows = {f.name: f for f in client.show_functions().functions}
    assert time.monotonic() - started < 15
    assert rows["bad"].lag is None and nowhere in (rows["bad"].lag_error or "")
    assert nowhere in (rows["bad"].error or "")
    assert rows["good"].status == "RUNNING" and rows["good"].lag == 0 and rows["good"].lag_error is None

    started = time.monotonic()
    described = client.describe_function("bad")
    assert time.monotonic() - started < 15
    assert described.lag == [] and nowhere in (described.lag_error or "")


def test_drop_of_a_function_on_an_unreachable_cluster_succeeds(two_functions):
    client, nowhere, bad_config = two_functions
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), bad_config, wait=False)
    started = time.monotonic()
    assert client.drop_function("bad") is True
    assert time.monotonic() - started < 20
    assert [f.name for f in client.show_functions().functions] == ["good"]


def _forward(port: int, target: str) -> None:
    """Accept on ``port`` and pipe every connection to ``target`` (host:port), in daemon threads."""
    import socket
    import threading

    host, _, tport = target.rpartition(":")
    server = socket.create_server(("127.0.0.1", port))

    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            a.close(), b.close()

    def serve():
        while True:
            client_side, _ = server.accept()
            broker_side = socket.create_connection((host, int(tport)))
            threading.Thread(target=pipe, args=(client_side, broker_side), daemon=True).start()
            threading.Thread(target=pipe, args=(broker_side, client_side), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()


def test_a_function_whose_cluster_comes_back_is_running_again_without_a_record(
        bootstrap_servers, namespace, client, nodes):
    """FAILED while its cluster is out of reach; RUNNING once a retry gets through, though its
    input stays idle (it used to stay FAILED until a record passed)."""
    nodes("n1")
    source, sink = f"{namespace}-in", f"{namespace}-out"
    create_topic(bootstrap_servers, source)
    port = free_port()
    config = upper_config(bootstrap_servers, "later", source, sink).replace(
        f'bootstrap_servers: "{bootstrap_servers}"\n        topic: {source}',
        f'bootstrap_servers: "127.0.0.1:{port}"\n        topic: {source}')
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), config, wait=False)
    failed = wait_until(lambda: (f := function_state(client, "later")) and f.status == "FAILED" and f, 60,
                        "later FAILED while its cluster is out of reach")
    assert "cannot be reached" in failed.error
    _forward(port, bootstrap_servers)  # the cluster is there now (its metadata names the broker itself)
    wait_until(lambda: function_state(client, "later").status == "RUNNING", 90, "later RUNNING again")
