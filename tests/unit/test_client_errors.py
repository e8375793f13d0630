"""The client never lets a raw librdkafka exception out (issue 17, point 1)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from fs_bus.client import FsClient
from fs_bus.errors import AccessDenied, KafkaUnavailable
from fs_bus.kafka.clients import translate


def test_a_transport_failure_becomes_kafka_unavailable_naming_what_was_done():
    exc = translate(KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure")), "listing functions")
    assert isinstance(exc, KafkaUnavailable)
    assert "listing functions" in str(exc) and "Broker transport failure" in str(exc)


def test_an_authorization_failure_becomes_access_denied():
    exc = translate(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), "reading", "User:bob")
    assert isinstance(exc, AccessDenied) and "User:bob" in str(exc)


@pytest.mark.parametrize("call", [
    lambda c: c.show_functions(), lambda c: c.describe_function("f"), lambda c: c.drop_function("f"),
    lambda c: c.stop_function("f"), lambda c: c.get_function("f"),
    # the upgrade calls, from the client's mixins
    lambda c: c.rollback_function("f"), lambda c: c.function_history("f"), lambda c: c.function_diff("f"),
    lambda c: c.promote_function("f"), lambda c: c.drop_shadow("f"),
])
def test_every_public_method_raises_fs_bus_errors_for_kafka_failures(call, monkeypatch):
    client = FsClient(bootstrap_servers="127.0.0.1:1")

    def broken(*_a, **_k):
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))

    monkeypatch.setattr(client, "_read_control", broken)
    with pytest.raises(KafkaUnavailable, match="Failed to get metadata"):
        call(client)


def test_swapped_function_and_config_paths_name_the_file_and_say_it_is_webassembly(tmp_path):
    from tests.integration.harness import UPPER_WASM

    from fs_bus.errors import InvalidConfig

    config = tmp_path / "config.yaml"
    config.write_text("name: f\n")
    with pytest.raises(InvalidConfig) as refused:
        FsClient(bootstrap_servers="127.0.0.1:1").create_function_from_files(config, UPPER_WASM)
    assert str(UPPER_WASM) in str(refused.value)
    assert "WebAssembly" in str(refused.value) and "swapped" in str(refused.value)


def test_a_config_file_that_is_not_text_is_named(tmp_path):
    from fs_bus.errors import InvalidConfig

    config, function = tmp_path / "config.yaml", tmp_path / "f.wasm"
    config.write_bytes(b"name: \xff\xfe\n")
    function.write_bytes(b"\0asm")
    with pytest.raises(InvalidConfig, match=f"config file {config} is not UTF-8"):
        FsClient(bootstrap_servers="127.0.0.1:1").create_function_from_files(function, config)
