"""Kafka client properties in a function's config are judged by librdkafka itself, without a
broker, and a refused one is named by its path (issue 17, point 3)."""

from __future__ import annotations

import pytest

from fs_bus.config.validate import parse_config
from fs_bus.errors import InvalidConfig
from fs_bus.kafka.clients import check_properties

CONFIG = """\
name: f
type: processor
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "127.0.0.1:9092"
        topic: in
        group_id: g
        {input_prop}
outputs:
  - output-type: kafka
    bootstrap_servers: "127.0.0.1:9092"
    topic: out
    {output_prop}
"""


def config(input_prop: str = "auto.offset.reset: earliest", output_prop: str = "linger.ms: 5"):
    return parse_config(CONFIG.format(input_prop=input_prop, output_prop=output_prop))


def test_known_properties_with_good_values_pass():
    check_properties(config())


def test_a_mistyped_input_property_is_refused_with_its_path():
    with pytest.raises(InvalidConfig, match="No such configuration property") as refused:
        check_properties(config(input_prop="auto.offset.rest: earliest"))
    assert refused.value.field == "input-groups[0].inputs[0].auto.offset.rest"


def test_a_bad_value_is_refused_with_its_path():
    with pytest.raises(InvalidConfig, match="Invalid value") as refused:
        check_properties(config(input_prop="auto.offset.reset: earliset"))
    assert refused.value.field == "input-groups[0].inputs[0].auto.offset.reset"


def test_a_mistyped_output_property_is_refused_with_its_path():
    with pytest.raises(InvalidConfig) as refused:
        check_properties(config(output_prop="linger.mss: 5"))
    assert refused.value.field == "outputs[0].linger.mss"
