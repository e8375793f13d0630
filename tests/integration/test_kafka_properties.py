"""A mistyped Kafka property is refused by CREATE; a record that has one anyway (written by
an older client) makes the function FAILED for good on a node, with the key's path
(issue 17, point 3)."""

from __future__ import annotations

import pytest

from fs_bus.client import FsClient
from fs_bus.errors import FunctionFailed, InvalidConfig
from fs_bus.kafka import clients
from tests.integration.harness import UPPER_WASM, function_state, upper_config, wait_until


def typo_config(bootstrap: str, namespace: str) -> str:
    config = upper_config(bootstrap, "typo", f"{namespace}-in", f"{namespace}-out")
    return config.replace("auto.offset.reset: earliest", "auto.offset.rest: earliest")


def test_create_refuses_a_mistyped_kafka_property_before_writing_anything(bootstrap_servers, namespace):
    with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace) as client:
        with pytest.raises(InvalidConfig, match=r"input-groups\[0\]\.inputs\[0\]\.auto\.offset\.rest"):
            client.create_function_from_bytes(UPPER_WASM.read_bytes(), typo_config(bootstrap_servers, namespace))
        assert client.show_functions().functions == []


def test_a_node_fails_such_a_function_for_good_with_the_path(bootstrap_servers, namespace, nodes, monkeypatch):
    nodes("n1")
    monkeypatch.setattr(clients, "check_properties", lambda config: None)  # as a client without the check
    with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace) as client:
        with pytest.raises(FunctionFailed, match=r"inputs\[0\]\.auto\.offset\.rest") as failed:
            client.create_function_from_bytes(UPPER_WASM.read_bytes(), typo_config(bootstrap_servers, namespace))
        assert "retry" not in str(failed.value)
        state = wait_until(lambda: function_state(client, "typo"), 10, "typo listed")
        assert state.status == "FAILED" and "retry" not in (state.error or "")
