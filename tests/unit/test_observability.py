"""The pure parts of observability: log line records, --since, metric names and exposition."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from fs_bus.errors import DecodeError, FsBusError
from fs_bus.observability.logs import LogLine, decode_log_line, encode_log_line, line_from_record
from fs_bus.observability.metrics import InstanceView, NodeMetrics, consumer_lag, metric_name
from fs_bus.observability.tail import format_line, parse_since
from fs_bus.runtime.base import Emitted

lines = st.builds(LogLine, function=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
                  node=st.text(max_size=20), topic=st.text(max_size=20), partition=st.integers(-1, 10_000),
                  stream=st.sampled_from(["stdout", "stderr"]), level=st.sampled_from(["INFO", "WARNING"]),
                  timestamp_ms=st.integers(0, 2**42), line=st.text(max_size=200))


@given(lines)
def test_a_log_line_decodes_to_what_was_encoded(line):
    assert decode_log_line(encode_log_line(line)) == line


def test_a_log_line_is_json_a_person_or_jq_can_read():
    line = LogLine("counter", "n1", "words", 3, "stdout", "INFO", 1_700_000_000_123, "héllo")
    assert encode_log_line(line) == (b'{"function":"counter","node":"n1","topic":"words","partition":3,'
                                     b'"stream":"stdout","level":"INFO","timestamp_ms":1700000000123,'
                                     b'"line":"h\xc3\xa9llo"}')


@pytest.mark.parametrize("value", [b"", b"not json", b'{"line": "x"}', b"[1]"])
def test_what_is_not_a_log_line_is_refused(value):
    with pytest.raises(DecodeError):
        decode_log_line(value)


def guest_record(logger: str, function: str | None, stream: str, text: str) -> logging.LogRecord:
    """A record as the runtimes log a guest's line."""
    record = logging.getLogger(logger).makeRecord(
        logger, logging.INFO if stream == "stdout" else logging.WARNING, __file__, 1, "%s: %s", (stream, text), None)
    if function is not None:
        record.function_name, record.guest_stream = function, stream
    return record


def test_a_guest_line_names_its_function_topic_partition_and_stream():
    # A function name with dots and a topic with dashes: the extras say where the name ends.
    record = guest_record("fs_bus.function.my.fn.in-put-topic-12", "my.fn", "stderr", "stderr: is not a prefix")
    line = line_from_record(record, "n1")
    assert line == LogLine("my.fn", "n1", "in-put-topic", 12, "stderr", "WARNING", int(record.created * 1000),
                           "stderr: is not a prefix")


def test_records_outside_the_function_hierarchy_are_not_log_lines():
    assert line_from_record(guest_record("fs_bus.node.node", None, "stdout", "x"), "n1") is None
    assert line_from_record(guest_record("fs_bus.functionary", None, "stdout", "x"), "n1") is None


def test_a_line_for_people_shows_time_node_partition_and_stream():
    line = LogLine("counter", "n1", "words", 0, "stdout", "INFO", 1_700_000_000_123, "hello")
    assert format_line(line) == "2023-11-14T22:13:20.123Z n1 words:0 stdout: hello"


@pytest.mark.parametrize("text, back_s", [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400),
                                          ("1h30m", 5400), ("1.5m", 90)])
def test_since_takes_a_duration_back_from_now(text, back_s):
    assert parse_since(text, 10_000_000_000) == 10_000_000_000 - back_s * 1000


def test_since_takes_a_time_in_utc_or_with_its_offset():
    assert parse_since("2026-11-30T05:00:00Z", 0) == 1796014800000
    assert parse_since("2026-11-30T05:00:00", 0) == 1796014800000
    assert parse_since("2026-11-30T06:00:00+01:00", 0) == 1796014800000


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "10x", "m10"])
def test_since_refuses_what_it_cannot_read_and_says_what_it_takes(text):
    with pytest.raises(FsBusError, match="30s, 10m"):
        parse_since(text, 0)


def test_metric_names_carry_the_fs_bus_prefix_and_refuse_what_prometheus_would():
    assert metric_name("records_in") == "fs_bus_records_in"
    for bad in ("", "records-in", "2x", "a b"):
        with pytest.raises(ValueError):
            metric_name(bad)


def exposition(metrics: NodeMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_a_batch_counts_records_in_and_out_per_function_and_one_latency_sample():
    views = [InstanceView("upper", ["in:0", "in:1"], {("in", 0): 5, ("in", 1): 0}),
             InstanceView("idle", ["quiet:0"], {}, parked=True)]
    metrics = NodeMetrics("n1", "0.1.0", views=lambda: views)
    fn = metrics.for_function("upper")
    fn.batch(3, [Emitted([(0, b"A"), (0, b"B")]), Emitted(), None], 0.002)
    fn.batch(1, [Emitted([(0, b"C")])], 0.001)
    fn.error()
    fn.dead_lettered(2)
    text = exposition(metrics)
    for sample in ('fs_bus_node_info{node="n1",version="0.1.0"} 1.0',
                   'fs_bus_records_in_total{function="upper"} 4.0',
                   'fs_bus_records_out_total{function="upper"} 3.0',
                   'fs_bus_errors_total{function="upper"} 1.0',
                   'fs_bus_dead_lettered_total{function="upper"} 2.0',
                   'fs_bus_batch_duration_seconds_count{function="upper"} 2.0',
                   'fs_bus_batch_duration_seconds_bucket{function="upper",le="0.0025"} 2.0',
                   'fs_bus_instances 2.0',
                   'fs_bus_instances_parked 1.0',
                   'fs_bus_partitions_assigned{function="upper"} 2.0',
                   'fs_bus_consumer_lag{function="upper",partition="0",topic="in"} 5.0',
                   'fs_bus_consumer_lag{function="upper",partition="1",topic="in"} 0.0'):
        assert sample in text, sample


def test_a_dropped_functions_series_go_and_another_nodes_registry_is_its_own():
    a, b = NodeMetrics("a"), NodeMetrics("b")
    a.for_function("f").batch(1, [None], 0.001)
    assert 'fs_bus_records_in_total{function="f"}' not in exposition(b)
    a.forget("f")
    assert 'function="f"' not in exposition(a)


def test_lag_is_the_high_watermark_minus_the_position_and_unknowns_are_left_out():
    highs = {("t", 0): 10, ("t", 1): 7, ("t", 2): -1001}
    positions = {("t", 0): 4, ("t", 1): 7, ("t", 2): 3, ("t", 3): 5, ("t", 4): None}
    assert consumer_lag(highs, positions) == {("t", 0): 6, ("t", 1): 0}


def test_metrics_are_served_over_http_on_the_port_asked_for():
    import urllib.request

    metrics = NodeMetrics("n1", views=lambda: [])
    port = metrics.serve(0, "127.0.0.1")
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "fs_bus_instances 0.0" in body
    finally:
        metrics.close()


def test_a_metrics_port_in_use_is_refused_naming_the_option():
    first = NodeMetrics("a")
    port = first.serve(0, "127.0.0.1")
    try:
        with pytest.raises(FsBusError, match=f"127.0.0.1:{port}.*--metrics-port"):
            NodeMetrics("b").serve(port, "127.0.0.1")
    finally:
        first.close()


def test_fs_bus_logs_exits_3_naming_the_address_when_kafka_is_away():
    from click.testing import CliRunner

    from fs_bus.cli.main import cli
    from fs_bus.local.broker import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(cli, ["logs", "counter", "-b", address])
    assert result.exit_code == 3, result.output
    assert f"cannot reach Kafka at {address}" in result.output
