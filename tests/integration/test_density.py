"""Parked functions (processor-runtime: idle-park-ms): an idle instance leaves its group and
closes its clients; a record arriving wakes it, and nothing is lost or processed twice."""

from __future__ import annotations

import pytest

from fs_bus.kafka import clients, groups
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.local.broker import free_port
from tests.integration.harness import (UPPER_WASM, OutputReader, function_state, produce, read_topic, upper_config,
                                       wait_until)


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


def test_functions_beyond_the_nodes_kafka_clients_wait_for_idle_ones_to_park(bootstrap_servers, namespace, client,
                                                                            nodes):
    """A process may hold only so many Kafka clients (fs_bus.kafka.budget). With room for one
    open function, three all start and all process their records: each waits for a client,
    and an idle one parks early to make room; nothing fails."""
    names = ["f1", "f2", "f3"]
    configs = {n: upper_config(bootstrap_servers, n, f"{namespace}-{n}-in", f"{namespace}-{n}-out") for n in names}
    wasm = UPPER_WASM.read_bytes()
    # What the node holds with one function open and working: its own clients, and the function's.
    first = nodes("n1", metrics_port=free_port())
    client.create_function_from_bytes(wasm, configs["f1"])
    produce(bootstrap_servers, f"{namespace}-f1-in", [(b"k", b"a")])
    assert read_topic(bootstrap_servers, f"{namespace}-f1-out", 1)[0].value() == b"A"
    one_open = int(first.metrics()["fs_bus_kafka_clients"])
    first.proc.terminate()  # leaves its groups cleanly
    first.proc.wait(30)

    limit = one_open + 1  # the node's own clients, one open function, and one to spare: not two functions
    node = nodes("n1", metrics_port=free_port(), args=("--max-kafka-clients", str(limit)))
    assert node.metrics()["fs_bus_kafka_clients_limit"] == limit
    for name in names[1:]:
        client.create_function_from_bytes(wasm, configs[name], timeout=120)  # RUNNING: it got its clients
    # f3 holds the room for one open function: the other two made way for it
    wait_until(lambda: node.metrics()["fs_bus_instances_parked"] == 2, 30, "f1 and f2 parked")
    for name in names:
        produce(bootstrap_servers, f"{namespace}-{name}-in", [(b"k", b"b")])
    held = []
    for name in names:
        out = read_topic(bootstrap_servers, f"{namespace}-{name}-out", 2 if name == "f1" else 1, timeout=120)
        assert out[-1].value() == b"B", (name, [m.value() for m in out])
        held.append(node.metrics()["fs_bus_kafka_clients"])
    assert max(held) <= limit
    assert all(function_state(client, n).status == "RUNNING" for n in names)
    log = node.log_path.read_text(errors="replace")
    assert "to free Kafka clients" in log  # an idle one made room before its idle-park-ms
    assert "thread local storage" not in log
