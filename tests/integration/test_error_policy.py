"""Poison records: bounded retries, then the function's error policy (fail, skip, dead-letter),
with a real node and a real broker. Nothing is committed past a record that was neither
processed nor dead-lettered."""

from __future__ import annotations

import pytest

from tests.integration.harness import OutputReader, function_state, produce, read_topic, wait_until

PICKY = b'''
from fs_api import Context, FSProcessorDriver


class Picky(FSProcessorDriver):
    def init(self, ctx: Context, config: dict) -> None:
        pass

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        if data.startswith(b"boom"):
            raise ValueError(f"cannot take {data.decode()}")
        ctx.emit(data.upper(), 0)
'''


def picky_config(bootstrap: str, src: str, dst: str, errors: str) -> str:
    return f"""\
name: picky
type: python
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {src}
        group_id: {src}-picky
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {dst}
errors.retries: 1
{errors}
"""


@pytest.mark.parametrize("policy", ["dead-letter", "skip"])
def test_a_poison_record_is_retried_then_settled_by_the_policy_and_the_rest_flows(
        bootstrap_servers, namespace, client, nodes, policy):
    nodes("n1")
    src, dst, dlq = f"{namespace}-in", f"{namespace}-out", f"{namespace}-dlq"
    errors = f"errors.deadletterqueue.topic.name: {dlq}" if policy == "dead-letter" else "errors.policy: skip"
    client.create_python_function("Picky", [("picky", PICKY)], picky_config(bootstrap_servers, src, dst, errors),
                                  timeout=120)
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k1", b"a"), (b"k2", b"boom 1"), (b"k3", b"b")])
    # At least once: "a" may come again after each failed attempt (the instance restarts
    # from its last commit); "b" comes once the poison record is settled.
    wait_until(lambda: (b"k3", b"B") in out.poll(), 90, "the record after the poison one")
    assert set(out.records) == {(b"k1", b"A"), (b"k3", b"B")}
    info = wait_until(lambda: (f := function_state(client, "picky")) and f.error and f, 30, "the notice")
    assert info.status == "RUNNING"
    assert f"{src}[0]@1" in info.error and "cannot take boom 1" in info.error
    if policy == "dead-letter":
        (letter,) = read_topic(bootstrap_servers, dlq, 1, timeout=60)
        assert (letter.key(), letter.value()) == (b"k2", b"boom 1")  # the record as it came
        headers = dict(letter.headers())
        assert b"ValueError: cannot take boom 1" in headers["fs-bus.error"]
        assert headers["fs-bus.function"] == b"picky"
        assert (headers["fs-bus.source.topic"], headers["fs-bus.source.partition"],
                headers["fs-bus.source.offset"]) == (src.encode(), b"0", b"1")
        assert "1 record(s) dead-lettered" in info.error
    else:
        assert "1 record(s) skipped" in info.error
    # Past the poison for good: the group's offset is after it, and new records flow.
    produce(bootstrap_servers, src, [(b"k4", b"c")])
    wait_until(lambda: (b"k4", b"C") in out.poll(), 30, "a new record")
    described = client.describe_function("picky")
    wait_until(lambda: client.describe_function("picky").lag[0]["committed"] == 4, 30, "offset committed past all")
    assert described.lag[0]["partition"] == 0
    # The node counts the failures (the first attempt and its retry) in its status record.
    (node,) = wait_until(lambda: [n for n in client.describe_function("picky").nodes if n["errors"] >= 2], 30,
                         "the error count in the status")
    assert node["node"] == "n1" and node["errors"] <= 3  # 3: a batch that died whole, then the record alone
    out.close()


def test_fail_stops_at_the_poison_record_and_commits_nothing_past_it(bootstrap_servers, namespace, client, nodes):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_python_function("Picky", [("picky", PICKY)],
                                  picky_config(bootstrap_servers, src, dst, "errors.policy: fail"), timeout=120)
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"k1", b"a"), (b"k2", b"boom"), (b"k3", b"b")])
    assert out.wait_for(1, 60)[0] == (b"k1", b"A")
    info = wait_until(lambda: (f := function_state(client, "picky")) and f.error and "failed 2 times" in f.error
                      and f, 90, "the function to give up after its retry")
    assert info.status == "FAILED" and f"{src}[0]@1" in info.error and "STOP and START" in info.error
    committed = client.describe_function("picky").lag[0]["committed"]
    assert committed is None or committed <= 1  # the poison record (offset 1) is still to do
    assert set(out.poll()) == {(b"k1", b"A")}  # "b" waits behind it
    out.close()
