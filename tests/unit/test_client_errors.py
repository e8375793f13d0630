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
])
def test_every_public_method_raises_fs_bus_errors_for_kafka_failures(call, monkeypatch):
    client = FsClient(bootstrap_servers="127.0.0.1:1")

    def broken(*_a, **_k):
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))

    monkeypatch.setattr(client, "_read_control", broken)
    with pytest.raises(KafkaUnavailable, match="Failed to get metadata"):
        call(client)
