"""Parked functions (processor-runtime: idle-park-ms): an idle instance leaves its group and
closes its clients; a record arriving wakes it, and nothing is lost or processed twice."""

from __future__ import annotations

import pytest

from fs_bus.kafka import clients, groups
from fs_bus.kafka.settings import KafkaSettings
from tests.integration.harness import UPPER_WASM, OutputReader, function_state, produce, upper_config, wait_until


def parking_config(bootstrap: str, name: str, src: str, dst: str, guarantee: str) -> str:
    return upper_config(bootstrap, name, src, dst) + (
        f"processing.guarantee: {guarantee}\nprocessor-runtime:\n  idle-park-ms: 1000\n")


def committed(admin, group: str, topic: str) -> int | None:
    (lag,) = groups.lag(admin, group, [topic], timeout=10)
    return lag.committed


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_parked_function_wakes_on_a_record_and_loses_nothing(bootstrap_servers, namespace, client, nodes,
                                                               guarantee):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    group = f"{src}-upper"
    admin = clients.admin(KafkaSettings.resolve(bootstrap_servers))
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), parking_config(bootstrap_servers, "upper", src, dst,
                                                                               guarantee))
    out = OutputReader(bootstrap_servers, dst)  # read_committed: only committed transactions count
    produce(bootstrap_servers, src, [(b"k1", b"one"), (b"k2", b"two"), (b"k3", b"three")])
    assert out.wait_for(3) == [(b"k1", b"ONE"), (b"k2", b"TWO"), (b"k3", b"THREE")]

    # Parked: it left its group (so it holds no clients) with its offsets committed in its own group.
    wait_until(lambda: groups.members(admin, group) == [], 30, "the idle instance to leave its group")
    assert committed(admin, group, src) == 3
    info = function_state(client, "upper")
    assert info.status == "RUNNING" and info.partitions == {"n1": (f"{src}:0",)}

    produce(bootstrap_servers, src, [(b"k4", b"four"), (b"k5", b"five")])
    out.wait_for(5)
    wait_until(lambda: committed(admin, group, src) == 5, 30, "the woken instance to commit the new records")
    assert out.poll() == [(b"k1", b"ONE"), (b"k2", b"TWO"), (b"k3", b"THREE"), (b"k4", b"FOUR"), (b"k5", b"FIVE")]
    # Idle again, it parks again, and a third wake works as the first did.
    wait_until(lambda: groups.members(admin, group) == [], 30, "the instance to park again")
    produce(bootstrap_servers, src, [(b"k6", b"six")])
    assert out.wait_for(6)[5:] == [(b"k6", b"SIX")]
    out.close()


def test_stopping_a_parked_function_stops_it(bootstrap_servers, namespace, client, nodes):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    admin = clients.admin(KafkaSettings.resolve(bootstrap_servers))
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), parking_config(bootstrap_servers, "upper", src, dst,
                                                                               "at_least_once"))
    produce(bootstrap_servers, src, [(b"k", b"a")])
    out = OutputReader(bootstrap_servers, dst)
    out.wait_for(1)
    wait_until(lambda: groups.members(admin, f"{src}-upper") == [], 30, "the idle instance to park")
    assert client.stop_function("upper")
    assert function_state(client, "upper").status == "STOPPED"
    produce(bootstrap_servers, src, [(b"k", b"b")])
    assert client.start_function("upper")
    assert out.wait_for(2) == [(b"k", b"A"), (b"k", b"B")]
    out.close()
