"""Placement with real node processes: every function runs on exactly its parallelism of live
nodes, the ones every node (and the client) computes alike; labels constrain the choice; a node
joining or leaving moves only what must move; a function that cannot be placed says so."""

from __future__ import annotations

import time

import pytest

from fs_bus.errors import NoLiveNodes
from fs_bus.placement import place
from tests.integration.harness import UPPER_WASM, OutputReader, create_topic, produce, upper_config, wait_until


def config(bootstrap: str, namespace: str, name: str, extra: str = "") -> str:
    return upper_config(bootstrap, name, f"{namespace}-{name}-in", f"{namespace}-{name}-out") + extra


def running_on(client) -> dict[str, set[str]]:
    """Function -> the nodes reporting it RUNNING; and every node reporting anything at all."""
    return {f.name: set(f.nodes) for f in client.show_functions().functions}


def reported_by(client, namespace) -> dict[str, set[str]]:
    """Function -> every node with a status record for it (a node not chosen writes none)."""
    from fs_bus.status.store import StatusReader

    table = StatusReader.read(lambda: client._reader(client.topics.status))
    out: dict[str, set[str]] = {}
    for fn, node in table.functions:
        out.setdefault(fn, set()).add(node)
    return out


def expected(names_parallelism: dict[str, int], node_ids: list[str]) -> dict[str, set[str]]:
    live = {n: {} for n in node_ids}
    return {name: set(place(name, live, parallelism=p).nodes) for name, p in names_parallelism.items()}


def test_each_function_runs_on_exactly_its_placed_nodes_and_joins_and_leaves_move_only_what_must(
        bootstrap_servers, namespace, client, nodes):
    nodes("n1"), nodes("n2")
    wanted = {f"f{i}": 1 for i in range(6)} | {"pair": 2}
    for name, p in wanted.items():
        client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                          config(bootstrap_servers, namespace, name, f"parallelism: {p}\n"))
    before = expected(wanted, ["n1", "n2"])
    assert {n for ns in before.values() for n in ns} == {"n1", "n2"}  # both nodes hold some
    wait_until(lambda: running_on(client) == before, 60, f"functions RUNNING on {before}")
    assert reported_by(client, namespace) == before  # the nodes not chosen opened nothing, said nothing

    # The records flow through the node chosen.
    out = OutputReader(bootstrap_servers, f"{namespace}-f0-out")
    produce(bootstrap_servers, f"{namespace}-f0-in", [(b"k", b"placed")])
    assert out.wait_for(1) == [(b"k", b"PLACED")]
    out.close()

    n3 = nodes("n3")
    after = expected(wanted, ["n1", "n2", "n3"])
    moved = {name for name in wanted if after[name] != before[name]}
    assert all("n3" in after[name] for name in moved)  # only what n3 takes over moves
    wait_until(lambda: running_on(client) == after, 60, f"functions RUNNING on {after} once n3 joined")
    assert reported_by(client, namespace) == after

    # kill -9: n3's functions go back where they were, and only those move.
    n3.kill()
    killed_at = time.monotonic()
    wait_until(lambda: running_on(client) == before, 60, f"n3's functions RUNNING on {before} again")
    print(f"n3's {len(moved)} function(s) RUNNING elsewhere {time.monotonic() - killed_at:.1f} s after kill -9")


def test_default_parallelism_is_the_input_partitions_capped_by_the_nodes(bootstrap_servers, namespace, client, nodes):
    nodes("n1"), nodes("n2")
    create_topic(bootstrap_servers, f"{namespace}-wide-in", partitions=3)
    create_topic(bootstrap_servers, f"{namespace}-narrow-in", partitions=1)
    for name in ("wide", "narrow"):
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), config(bootstrap_servers, namespace, name))
    wait_until(lambda: running_on(client) == {"wide": {"n1", "n2"}, "narrow": expected({"narrow": 1},
                                                                                      ["n1", "n2"])["narrow"]},
               60, "wide on both nodes, narrow on one")
    shown = {f.name: f.placement for f in client.show_functions().functions}
    assert shown["wide"] == "n1,n2 (2/3)"
    described = client.describe_function("wide").placement
    assert described["wanted_from"] == "input partitions" and described["reason"] == "2 of 3 wanted: only 2 live nodes"


def test_labels_constrain_placement_and_an_unplaceable_function_says_why(bootstrap_servers, namespace, client,
                                                                          nodes):
    nodes("a1", args=("--label", "zone=a")), nodes("a2", args=("--label", "zone=a", "--label", "gpu"))
    gpu = config(bootstrap_servers, namespace, "gpu", "parallelism: 2\nplacement:\n  labels:\n    gpu: ''\n")
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), gpu)
    wait_until(lambda: running_on(client)["gpu"] == {"a2"}, 60, "gpu on a2 only")
    assert client.describe_function("gpu").placement["reason"] == "1 of 2 wanted: only 1 live node with gpu"

    zone_b = config(bootstrap_servers, namespace, "zoneb", "placement:\n  labels:\n    zone: b\n")
    with pytest.raises(NoLiveNodes, match="cannot be placed: no live node with zone=b"):
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), zone_b)
    f = next(f for f in client.show_functions().functions if f.name == "zoneb")
    assert f.placement == "unplaced: no live node with zone=b" and f.status == "PENDING"
    assert "zoneb" not in reported_by(client, namespace)  # no node opened anything for it

    nodes("b1", args=("--label", "zone=b"))
    wait_until(lambda: running_on(client)["zoneb"] == {"b1"}, 60, "zoneb RUNNING on b1 once it joined")
    assert running_on(client)["gpu"] == {"a2"}
