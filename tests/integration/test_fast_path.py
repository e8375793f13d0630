"""fs-bus's fast path (world fs-bus:batch/fast-processor) through a real node on a
real broker: examples/upper-fast (Go SDK) as a user builds it, and the Python SDK's
probe showing that keys, headers, partitions, offsets and outputs cross Kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer

from tests.guests import build
from tests.integration.harness import OutputReader, create_topic, function_state, produce, wait_until
from tests.integration.test_world import example_config


@pytest.fixture(scope="session")
def upper_fast() -> bytes:
    return build.example("upper-fast")


@pytest.fixture(scope="session")
def fast_probe(tmp_path_factory) -> bytes:
    return build.fast_probe(tmp_path_factory.mktemp("guest"))


def probe_config(bootstrap: str, source: str, outputs: list[str]) -> str:
    outs = "".join(f"""\
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {topic}
""" for topic in outputs)
    return f"""\
name: probe
type: processor
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {source}
        group_id: {source}-g
        auto.offset.reset: earliest
outputs:
{outs}init_config:
  greeting: hi
"""


def test_upper_fast_built_from_source_upper_cases_every_record_in_order_keeping_keys(
        bootstrap_servers, namespace, client, nodes, upper_fast):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    create_topic(bootstrap_servers, src, partitions=2)
    client.create_function_from_bytes(upper_fast, example_config("upper-fast", bootstrap_servers, src, dst),
                                      timeout=120)
    out = OutputReader(bootstrap_servers, dst)
    sent = [(b"k%d" % (i % 7), b"record %d of the batch" % i) for i in range(3000)]
    produce(bootstrap_servers, src, sent)
    got = out.wait_for(len(sent), timeout=120)
    assert sorted(got) == sorted((k, v.upper()) for k, v in sent)
    for key in {k for k, _ in sent}:  # one key, one partition: order kept per key
        assert [v for k, v in got if k == key] == [v.upper() for k, v in sent if k == key]
    assert len(out.poll()) == len(sent)  # nothing twice
    out.close()


def test_record_metadata_and_chosen_outputs_keys_and_headers_cross_kafka(
        bootstrap_servers, namespace, client, nodes, fast_probe):
    nodes("n1")
    src, dst, other = f"{namespace}-in", f"{namespace}-out", f"{namespace}-other"
    client.create_function_from_bytes(fast_probe, probe_config(bootstrap_servers, src, [dst, other]), timeout=120)
    p = Producer({"bootstrap.servers": bootstrap_servers})
    p.produce(src, b"hello", b"k1", partition=0, timestamp=1_700_000_000_000, headers=[("trace", b"t-1")])
    p.produce(src, b"twice", b"k2", partition=0)
    p.produce(src, b"to:1 elsewhere", b"k3", partition=0)
    assert p.flush(30) == 0

    reader = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"{namespace}-r",
                       "auto.offset.reset": "earliest"})
    reader.subscribe([dst, other])
    got = []
    wait_until(lambda: got.extend(m for m in reader.consume(100, 0.2) if m.error() is None) or len(got) >= 4, 60,
               "4 output records")
    by_value = {m.value(): m for m in got}
    hello = by_value[b"HELLO"]
    assert hello.topic() == dst and hello.key() == b"k1"
    assert dict(hello.headers()) == {"offset": b"0", "partition": b"0", "timestamp": b"1700000000000",
                                     "source": b"0", "greeting": b"hi", "in-trace": b"t-1"}
    assert by_value[b"one"].key() == b"k2" and by_value[b"two"].key() == b"k2"  # the input's key, and a chosen one
    assert by_value[b"to:1 elsewhere"].topic() == other and by_value[b"to:1 elsewhere"].key() is None
    reader.close()


def test_a_failing_record_fails_the_function_naming_its_offset(bootstrap_servers, namespace, client, nodes,
                                                                fast_probe):
    nodes("n1")
    src, dst = f"{namespace}-in", f"{namespace}-out"
    client.create_function_from_bytes(fast_probe, probe_config(bootstrap_servers, src, [dst]), timeout=120)
    out = OutputReader(bootstrap_servers, dst)
    produce(bootstrap_servers, src, [(b"a", b"first"), (b"b", b"fail"), (b"c", b"after")], partition=0)
    info = wait_until(lambda: (f := function_state(client, "probe")) and f.status == "FAILED" and f, 60,
                      "the function to fail")
    assert "asked to fail" in info.error and f"{src}[0]@1" in info.error
    assert [v for _, v in out.wait_for(1)] == [b"FIRST"]  # the record before it still counts
    out.close()
