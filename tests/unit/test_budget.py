"""The process's budget of Kafka clients (fs_bus.kafka.budget): counted from creation until freed."""

from __future__ import annotations

import gc
import threading

import pytest

from fs_bus.kafka import budget, clients
from fs_bus.kafka.budget import ClientBudget, ClientLimitReached
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.node.parking import SHORT_OF_CLIENTS_PARK_S, Berth


def wait_until(condition, timeout: float, what: str) -> None:
    done = threading.Event()
    while not condition():
        if done.wait(0.01) or timeout <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        timeout -= 0.01


class Client:
    """Stands for a client object: what the budget tracks is its lifetime."""


def test_past_the_limit_a_client_waits_and_then_fails_saying_what_to_do():
    b = ClientBudget(limit=2)
    kept = []
    for _ in range(2):
        b.acquire("consumer")
        kept.append(b.track(Client()))
    with pytest.raises(ClientLimitReached) as err:
        b.acquire("fn-f", timeout=0.2)
    message = str(err.value)
    assert "fn-f" in message and "holds 2" in message and "park" in message and "--max-kafka-clients" in message
    assert b.in_use == 2 and b.waiting == 0 and len(kept) == 2


def test_freeing_a_client_wakes_one_that_waits():
    b = ClientBudget(limit=1)
    b.acquire("first")
    first = b.track(Client())
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (b.acquire("second", timeout=30), got.set()))
    waiter.start()
    wait_until(lambda: b.waiting == 1, 10, "the second client to wait")
    assert b.short() and not got.is_set()
    del first  # freed: its slot (its thread-local key) is free again
    waiter.join(10)
    assert got.is_set() and b.in_use == 1 and b.waiting == 0


def test_a_client_kept_alive_only_by_a_reference_cycle_is_collected_for_one_that_waits():
    b = ClientBudget(limit=1)
    b.acquire("producer")
    cycle = b.track(Client())
    cycle.me = cycle  # a producer whose delivery callback refers back to its owner
    gc.disable()
    try:
        del cycle
        b.acquire("next", timeout=0.5)  # no wait: acquiring collects first
    finally:
        gc.enable()
    assert b.in_use == 1


def test_every_client_fs_bus_makes_is_counted_until_it_is_freed():
    before = budget.BUDGET.in_use
    made = clients.consumer(KafkaSettings("127.0.0.1:1"), "test", log_level=0)
    producer = clients.producer(KafkaSettings("127.0.0.1:1"), "test", log_level=0)
    assert budget.BUDGET.in_use == before + 2
    made.close()
    assert budget.BUDGET.in_use == before + 2  # closed is not freed: its key is held until then
    del made, producer
    gc.collect()
    assert budget.BUDGET.in_use == before


def test_the_node_limit_is_bounded_by_what_the_process_has(monkeypatch):
    monkeypatch.setattr(budget, "BUDGET", ClientBudget())
    budget.set_limit(10)
    assert budget.BUDGET.limit == 10
    budget.set_limit(10 ** 6)
    assert budget.BUDGET.limit == budget.default_limit() < 1024
    with pytest.raises(ValueError):
        budget.set_limit(0)


def test_idle_instances_park_early_while_another_waits_for_a_client(monkeypatch):
    short = ClientBudget(limit=1)
    monkeypatch.setattr("fs_bus.node.parking.BUDGET", short)
    berth = Berth("f", object(), 60_000, None)  # type: ignore[arg-type]
    assert not berth.due(SHORT_OF_CLIENTS_PARK_S)
    short.acquire("held")
    assert berth.due(SHORT_OF_CLIENTS_PARK_S)  # none free: idle ones make room
    assert not berth.due(SHORT_OF_CLIENTS_PARK_S - 1)  # a function between records keeps its clients
    assert not Berth("f", object(), 0, None).due(3600)  # type: ignore[arg-type]  # idle-park-ms 0: never


def test_a_shared_client_is_taken_at_once_even_past_the_limit():
    b = ClientBudget(limit=1)
    b.acquire("consumer")
    b.acquire("admin", timeout=0, wait=False)  # an idle function needs it to park and make room
    assert b.in_use == 2 and b.short()


def test_a_reservation_takes_its_slots_together_and_gives_back_what_it_did_not_use():
    b = ClientBudget(limit=3)
    b.acquire("other")
    with pytest.raises(ClientLimitReached):
        with b.reserve(3, "fn-f", timeout=0.2):  # 2 free: it waits for all 3, taking none meanwhile
            pass
    assert b.in_use == 1
    with b.reserve(2, "fn-f"):
        b.acquire("consumer", timeout=0)  # drawn from the reservation: no wait, no new slot
        assert b.in_use == 3
    assert b.in_use == 2  # the unused one went back
    with pytest.raises(ClientLimitReached, match="needs 4 at once"):
        with b.reserve(4, "fn-g"):
            pass
