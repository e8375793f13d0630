"""The progress watchdog with a real broker (fs_bus.node.watchdog): an instance whose outputs
are never acknowledged while the cluster answers is restarted from its last commit, says so,
counts it, and after the third stall in ten minutes is FAILED with the reason; once the cause
is gone it runs again by itself. A broker that does not answer at all is an outage, not a stall."""

from __future__ import annotations

import re
import time

import pytest

from fs_bus.client import FsClient
from fs_bus.local.broker import BrokerSpec, LocalBroker, free_port, resolve_kafka_classpath
from tests.integration.harness import UPPER_WASM, NodeProcess, OutputReader, create_topic, produce, upper_config, wait_until
from tests.integration.test_faults import SteadyProducer, _client_quota

STALL_CONFIG = "processor-runtime: {stall-timeout-ms: 3000, max-batch-size: 50}\n"
OUTAGE_CONFIG = "processor-runtime: {stall-timeout-ms: 5000, max-batch-size: 50}\n"


def _node_errors(client: FsClient, name: str) -> list[str]:
    return [n.get("error") or "" for n in client.describe_function(name).nodes]


def test_outputs_never_acknowledged_are_a_stall_restarted_then_failed_then_healed(
        bootstrap_servers, namespace, client, tmp_path, compiled_cache):
    name, src, dst = f"stall-{namespace}", f"{namespace}-in", f"{namespace}-out"
    port = free_port()
    node = NodeProcess(bootstrap_servers, namespace, "n1", tmp_path, compiled_cache, metrics_port=port).start()
    node.wait_alive()
    # Writes by the function's producers crawl at 1 byte/s: the broker answers everything
    # else, but acknowledges the outputs of a commit point only many seconds later.
    _client_quota(bootstrap_servers, f"fn-{name}", 1)
    try:
        client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                          upper_config(bootstrap_servers, name, src, dst) + STALL_CONFIG)
        produce(bootstrap_servers, src, [(b"%d" % i, b"x" * 1000) for i in range(500)])
        restarted = wait_until(lambda: [e for e in _node_errors(client, name) if "stalled: restarted" in e], 60,
                               "a 'stalled: restarted' status")
        assert f"(partitions {src}:0, stalled " in restarted[0], restarted
        metric = f'fs_bus_instance_stall_restarts_total{{function="{name}"}}'
        assert node.metrics().get(metric, 0) >= 1
        failed = wait_until(lambda: (f := client.describe_function(name)).status == "FAILED" and f, 90,
                            "FAILED after the third stall")
        reason = " ".join(_node_errors(client, name))
        # FAILED (and retried with back-off) until a commit point goes through, not only until records run
        assert re.search(r"stalled [3-9] times in 10 min: no progress for \d+ s on partitions " + src + ":0",
                         reason), failed
    finally:
        _client_quota(bootstrap_servers, f"fn-{name}", None)
    # The cause is gone: the next retry gets through, everything comes out, RUNNING again.
    out = OutputReader(bootstrap_servers, dst)
    wanted = {b"%d" % i for i in range(500)}
    wait_until(lambda: wanted <= {k for k, _ in out.poll()}, 180, "every record out once the quota is lifted")
    wait_until(lambda: client.describe_function(name).status == "RUNNING", 60, "RUNNING again")
    out.close()
    node.close()


@pytest.fixture
def own_broker(tmp_path_factory):
    spec = BrokerSpec(data_dir=tmp_path_factory.mktemp("kafka-frozen"), port=free_port(), controller_port=free_port())
    broker = LocalBroker(spec, classpath=resolve_kafka_classpath())
    broker.start(wait_timeout=120.0)
    try:
        yield broker
    finally:
        try:
            broker.resume()
        except Exception:  # noqa: BLE001 - not frozen
            pass
        broker.stop()


def test_a_broker_that_does_not_answer_is_an_outage_not_a_stall(own_broker, namespace, tmp_path, compiled_cache):
    bootstrap = own_broker.bootstrap_servers
    name, src, dst = "upper", f"{namespace}-in", f"{namespace}-out"
    create_topic(bootstrap, src)
    node = NodeProcess(bootstrap, namespace, "n1", tmp_path, compiled_cache).start()
    try:
        node.wait_alive()
        with FsClient(bootstrap, namespace=namespace, timeout=60) as client:
            client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                              upper_config(bootstrap, name, src, dst) + OUTAGE_CONFIG)
        out = OutputReader(bootstrap, dst)
        upstream = SteadyProducer(bootstrap, src).start()
        out.wait_for(200, 60)
        own_broker.freeze()  # mid-stream: a commit point waits for acknowledgements that cannot come
        time.sleep(15)  # the fault itself: three stall timeouts with the broker answering nothing
        own_broker.resume()
        wait_until(lambda: upstream.sent > 3000, 60, "more records written after the freeze")
        upstream.stop()
        wanted = {v.upper() for v in upstream.acked}
        wait_until(lambda: wanted <= {v for _, v in out.poll()}, 120, f"all {len(wanted)} records out")
        out.close()
        log = node.log_path.read_text(errors="replace")
        assert "but its cluster does not answer: an outage, not a stall" in log  # the watchdog did look
        assert "stalled" not in log
    finally:
        node.close()


def test_a_function_failed_for_a_passing_cause_is_running_again_without_waiting_for_a_record(
        bootstrap_servers, namespace, client, nodes, tmp_path_factory):
    """Its output cluster is not there yet: FAILED, retried. Once it is, the retry opens and has
    nothing to do: RUNNING. (It stayed FAILED until a record came, for good on a quiet input.)"""
    later = LocalBroker(BrokerSpec(data_dir=tmp_path_factory.mktemp("kafka-later"), port=free_port(),
                                   controller_port=free_port()), classpath=resolve_kafka_classpath())
    src, dst = f"{namespace}-in", f"{namespace}-out"
    config = upper_config(bootstrap_servers, "upper", src, dst).replace(
        f'outputs:\n  - output-type: kafka\n    bootstrap_servers: "{bootstrap_servers}"',
        f'outputs:\n  - output-type: kafka\n    bootstrap_servers: "{later.bootstrap_servers}"')
    assert later.bootstrap_servers in config
    nodes("n1")
    try:
        client.create_function_from_bytes(UPPER_WASM.read_bytes(), config, wait=False)
        wait_until(lambda: (f := client.describe_function("upper")).status == "FAILED" and "retry" in (
            " ".join(n.get("error") or "" for n in f.nodes)), 60, "FAILED while its output cluster is away")
        later.start(wait_timeout=120.0)
        wait_until(lambda: client.describe_function("upper").status == "RUNNING", 120,
                   "RUNNING once a retry opened, with no record to process")
    finally:
        later.stop()
