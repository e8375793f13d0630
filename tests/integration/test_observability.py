"""A real node's metrics and its functions' log lines, as an operator reads them."""

from __future__ import annotations

import json
import subprocess
import sys

import logging

from confluent_kafka import Producer

from fs_bus.local.broker import free_port
from fs_bus.observability.logs import KafkaLogHandler, decode_log_line
from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder
from tests.integration.harness import (
    ROOT, UPPER_WASM, OutputReader, create_topic, function_state, produce, read_topic, upper_config, wait_until,
)

PRINTER = '''
import logging
from fs_api import FSProcessorDriver, Context


class Printer(FSProcessorDriver):
    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        print(f"saw {data.decode()}")
        if data == b"warn":
            logging.getLogger("printer").warning("a warning about %s", data.decode())
        ctx.emit(data, 0)
'''


def test_metrics_count_records_in_and_out_lag_reaches_zero_and_gauges_show_the_instance(
        bootstrap_servers, namespace, client, nodes):
    src, dst = f"{namespace}-in", f"{namespace}-out"
    create_topic(bootstrap_servers, src, partitions=2)
    node = nodes("n1", metrics_port=free_port())
    assert node.metrics()["fs_bus_instances"] == 0
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "upper", src, dst))
    produce(bootstrap_servers, src, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(30)], partition=0)
    produce(bootstrap_servers, src, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(20)], partition=1)
    out = OutputReader(bootstrap_servers, dst)
    out.wait_for(50)

    def settled():
        m = node.metrics()
        assert m.get('fs_bus_records_in_total{function="upper"}') == 50, m.get('fs_bus_records_in_total{function="upper"}')
        assert m.get('fs_bus_consumer_lag{function="upper",partition="0",topic="' + src + '"}') == 0
        assert m.get('fs_bus_consumer_lag{function="upper",partition="1",topic="' + src + '"}') == 0
        return m
    m = wait_until(settled, 30, "records counted and lag 0 on both partitions")
    assert m['fs_bus_records_out_total{function="upper"}'] == 50
    assert m["fs_bus_instances"] == 1
    assert m['fs_bus_partitions_assigned{function="upper"}'] == 2
    assert m['fs_bus_batch_duration_seconds_count{function="upper"}'] >= 2  # at least a batch per partition
    assert m['fs_bus_errors_total{function="upper"}'] == 0
    assert m["fs_bus_artifact_cache_misses_total"] == 1  # fetched from Kafka once
    assert m['fs_bus_node_info{node="n1",version="0.1.0"}'] == 1

    # More records: lag shows them until they are processed, then goes back to 0.
    client.stop_function("upper")
    produce(bootstrap_servers, src, [(b"k", b"late")] * 5, partition=0)
    client.start_function("upper")
    wait_until(lambda: node.metrics().get('fs_bus_records_in_total{function="upper"}') == 55, 30,
               "the 5 late records counted, on top of the 50 (counters survive STOP/START)")
    wait_until(lambda: node.metrics().get(
        'fs_bus_consumer_lag{function="upper",partition="0",topic="' + src + '"}') == 0, 30, "lag 0 again")
    out.close()

    client.drop_function("upper")
    wait_until(lambda: node.metrics()["fs_bus_instances"] == 0, 30, "no instance after DROP")
    assert 'fs_bus_records_in_total{function="upper"}' not in node.metrics()


def fs_bus(*args: str, bootstrap: str, namespace: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fs_bus", *args, "-b", bootstrap, "--namespace", namespace],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_fs_bus_logs_shows_what_a_python_function_printed_with_its_node_and_partition(
        bootstrap_servers, namespace, client, nodes, tmp_path, monkeypatch):
    (tmp_path / "printer_fn.py").write_text(PRINTER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import printer_fn

    words, echoes = f"{namespace}-words", f"{namespace}-echoes"
    create_topic(bootstrap_servers, words, partitions=2)
    nodes("n1")
    src = KafkaInput(bootstrap_servers, words, f"{namespace}-printer-group")
    src.data["auto.offset.reset"] = "earliest"
    config = (WasmTaskBuilder().set_name("printer").set_type("python").add_init_config("class_name", "Printer")
              .add_input_group([src]).add_output(KafkaOutput(bootstrap_servers, echoes, 0)).build())
    assert client.create_python_function_from_config(config.to_yaml(), printer_fn.Printer)
    assert function_state(client, "printer").status == "RUNNING"
    produce(bootstrap_servers, words, [(None, b"hello")], partition=1)
    produce(bootstrap_servers, words, [(None, b"warn")], partition=0)

    def lines():
        done = fs_bus("logs", "printer", "-o", "json", bootstrap=bootstrap_servers, namespace=namespace)
        assert done.returncode == 0, done.stderr
        found = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(found) >= 3, found
        return found
    found = wait_until(lines, 60, "three log lines of printer", interval=1.0)
    by_line = {d["line"]: d for d in found}
    hello = by_line["saw hello"]
    assert (hello["function"], hello["node"], hello["topic"], hello["partition"], hello["stream"]) == \
        ("printer", "n1", words, 1, "stdout")
    assert by_line["saw warn"]["partition"] == 0
    warning = next(d for d in found if "a warning about warn" in d["line"])  # logging goes to stderr
    assert (warning["stream"], warning["partition"]) == ("stderr", 0)

    # For people: one readable line each, with node and partition; -n keeps the last ones.
    done = fs_bus("logs", "printer", "--since", "10m", bootstrap=bootstrap_servers, namespace=namespace)
    assert done.returncode == 0, done.stderr
    assert f" n1 {words}:1 stdout: saw hello" in done.stdout
    done = fs_bus("logs", "printer", "-n", "1", bootstrap=bootstrap_servers, namespace=namespace)
    assert len(done.stdout.splitlines()) == 1

    # A function that does not exist is an error, as in every other command (not an empty log).
    done = fs_bus("logs", "nobody", bootstrap=bootstrap_servers, namespace=namespace)
    assert (done.returncode, done.stdout) == (1, "") and "function 'nobody' does not exist" in done.stderr

    # A namespace no node has run in has no logs topic: said so, exit 1.
    done = fs_bus("logs", "printer", bootstrap=bootstrap_servers, namespace=f"{namespace}-none")
    assert done.returncode == 1 and "is not there yet" in done.stderr, done.stderr


def test_fs_bus_logs_follow_prints_lines_as_they_come(bootstrap_servers, namespace, client, nodes, tmp_path,
                                                      monkeypatch):
    (tmp_path / "printer_follow.py").write_text(PRINTER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import printer_follow

    words = f"{namespace}-words"
    nodes("n1")
    src = KafkaInput(bootstrap_servers, words, f"{namespace}-printer-group")
    src.data["auto.offset.reset"] = "earliest"
    config = (WasmTaskBuilder().set_name("printer").set_type("python").add_init_config("class_name", "Printer")
              .add_input_group([src]).add_output(KafkaOutput(bootstrap_servers, f"{namespace}-echoes", 0)).build())
    assert client.create_python_function_from_config(config.to_yaml(), printer_follow.Printer)
    proc = subprocess.Popen([sys.executable, "-m", "fs_bus", "logs", "printer", "-f", "-b", bootstrap_servers,
                             "--namespace", namespace], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        produce(bootstrap_servers, words, [(None, b"first")])
        # Lines read before following are printed only once reading up to the end is
        # done: a record produced after the first line arrives can only come by following.
        assert proc.stdout.readline().rstrip().endswith("stdout: saw first")
        produce(bootstrap_servers, words, [(None, b"second")])
        line = proc.stdout.readline()  # blocks until fs-bus logs prints; the test timeout bounds it
        assert line.rstrip().endswith("stdout: saw second"), line
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, proc.stderr.read()


def test_the_log_handler_keys_lines_by_function_and_drops_when_the_queue_is_full_without_raising(
        bootstrap_servers, namespace):
    topic = f"{namespace}.logs"
    create_topic(bootstrap_servers, topic)
    # Room for two lines, and nothing leaves before the handler closes: the third finds it full.
    producer = Producer({"bootstrap.servers": bootstrap_servers, "queue.buffering.max.messages": 2,
                         "linger.ms": 30_000})
    counts = {"sent": 0, "dropped": 0}
    handler = KafkaLogHandler(producer, topic, "n1", on_sent=lambda: counts.__setitem__("sent", counts["sent"] + 1),
                              on_dropped=lambda: counts.__setitem__("dropped", counts["dropped"] + 1))
    for i in range(5):
        record = logging.LogRecord("fs_bus.function.f.t-0", logging.INFO, __file__, 0, f"line {i}", None, None)
        record.stream = "stdout"
        handler.handle(record)
    assert counts == {"sent": 2, "dropped": 3}
    handler.close()  # flushes
    got = read_topic(bootstrap_servers, topic, 2)
    assert [(m.key(), decode_log_line(m.value()).line) for m in got] == [(b"f", "line 0"), (b"f", "line 1")]
