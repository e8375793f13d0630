"""Shared fixtures. The broker is started lazily: only tests that ask for it pay for it.

Set FS_BUS_TEST_BOOTSTRAP=host:port to run against an existing broker instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import settings

from fs_bus.local.broker import BrokerSpec, LocalBroker, free_port, resolve_kafka_classpath


# Property tests check behaviour, not speed: on a shared, loaded machine an example can take
# longer than hypothesis' default 200 ms deadline, and that would fail a correct test.
settings.register_profile("fs-bus", deadline=None)
settings.load_profile("fs-bus")


@dataclass
class ExternalBroker:
    """Stands in for LocalBroker when FS_BUS_TEST_BOOTSTRAP names a broker we do not own."""

    bootstrap_servers: str

    def is_running(self) -> bool:
        return True


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | ExternalBroker]:
    """A Kafka broker for the whole session. Tests that stop or restart it need a
    LocalBroker and should skip on an ExternalBroker."""
    external = os.environ.get("FS_BUS_TEST_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    # Resolve first so a one-time jar download does not eat into the startup deadline.
    classpath = resolve_kafka_classpath()
    spec = BrokerSpec(data_dir=tmp_path_factory.mktemp("kafka"), port=free_port())
    broker = LocalBroker(spec, classpath=classpath)
    broker.start(wait_timeout=120.0)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_broker: LocalBroker | ExternalBroker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def namespace() -> str:
    """A fresh prefix for this test's topics and groups, so tests never see each other's data."""
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def compiled_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("compiled")


@pytest.fixture
def nodes(bootstrap_servers: str, namespace: str, tmp_path, compiled_cache):
    """Start ``fs-bus node`` processes: ``nodes("n1")``; all are killed at the end of the test."""
    from tests.integration.harness import NodeProcess

    started: list = []

    def start(node_id: str = "n1", wait: bool = True, **options):
        node = NodeProcess(bootstrap_servers, namespace, node_id, tmp_path, compiled_cache, **options).start()
        started.append(node)
        return node.wait_alive() if wait else node

    yield start
    for node in started:
        node.close()


@pytest.fixture
def client(bootstrap_servers: str, namespace: str):
    from fs_bus.client import FsClient

    with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace, timeout=60) as c:
        yield c
