"""Function config parsing: the reference configs parse, every error names its field, fuzz yields only InvalidConfig."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from fs_bus.config.model import ChannelRuntime, FunctionConfig, ProcessorRuntime, TaskType
from fs_bus.config.validate import parse_config, validate_config
from fs_bus.errors import InvalidConfig

# --- the reference project's example configs, verbatim ----------------------------------------------------------

GO_PROCESSOR = """\
name: "go-processor-example"
type: processor
input-selector: round-robin
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "localhost:9092"
        topic: "input-topic"
        partition: 0
        group_id: "go-processor-group"
        runtime:
          channel-capacity: 10000
          batch-consume-size: 10000
          poll-timeout-ms: 1000
          sleep-when-full-ms: 10
outputs:
  - output-type: kafka
    bootstrap_servers: "localhost:9092"
    topic: "output-topic"
    partition: 0
    runtime:
      channel-capacity: 10000
      batch-consume-size: 10000
processor-runtime:
  max-batch-size: 1000
  max-idle-count: 10000
  idle-sleep-ms: 500
  control-timeout-ms: 5000
  control-max-retries: 3
"""

PYTHON_PROCESSOR = """\
name: "python-processor-example"
type: python
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "localhost:9092"
        topic: "input-topic"
        partition: 0
        group_id: "python-processor-group"
outputs:
  - output-type: kafka
    bootstrap_servers: "localhost:9092"
    topic: "output-topic"
    partition: 0
init_config:
  emit_threshold: "6"
  class_name: "CounterProcessor"
"""


def test_go_processor_reference_config_parses_with_every_value():
    c = parse_config(GO_PROCESSOR)
    assert isinstance(c, FunctionConfig)
    assert c.name == "go-processor-example"
    assert c.type is TaskType.PROCESSOR
    assert c.input_selector == "round-robin"
    assert len(c.input_groups) == 1 and len(c.inputs) == 1
    (inp,) = c.inputs
    assert (inp.bootstrap_servers, inp.topic, inp.partition, inp.group_id) == (
        "localhost:9092", "input-topic", 0, "go-processor-group")
    assert inp.properties == {}
    assert inp.runtime == ChannelRuntime(channel_capacity=10000, batch_consume_size=10000, poll_timeout_ms=1000,
                                         sleep_when_full_ms=10)
    assert c.group_id == "go-processor-group"
    (out,) = c.outputs
    assert (out.bootstrap_servers, out.topic, out.partition) == ("localhost:9092", "output-topic", 0)
    # keys left out keep their defaults
    assert out.runtime == ChannelRuntime(channel_capacity=10000, batch_consume_size=10000,
                                         poll_timeout_ms=ChannelRuntime().poll_timeout_ms,
                                         sleep_when_full_ms=ChannelRuntime().sleep_when_full_ms)
    assert c.processor_runtime == ProcessorRuntime(max_batch_size=1000, max_idle_count=10000, idle_sleep_ms=500,
                                                   control_timeout_ms=5000, control_max_retries=3)
    assert c.init_config == {}
    assert c.runtime == ChannelRuntime()


def test_python_processor_reference_config_parses_with_init_config_as_strings():
    c = parse_config(PYTHON_PROCESSOR)
    assert c.name == "python-processor-example"
    assert c.type is TaskType.PYTHON
    assert c.inputs[0].partition == 0 and c.outputs[0].partition == 0
    assert c.inputs[0].topic == "input-topic" and c.outputs[0].topic == "output-topic"
    assert c.group_id == "python-processor-group"
    assert c.init_config == {"emit_threshold": "6", "class_name": "CounterProcessor"}
    assert all(isinstance(v, str) for v in c.init_config.values())


def test_bytes_config_is_decoded_as_utf8():
    text = PYTHON_PROCESSOR.replace('"CounterProcessor"', '"Caf\u00e9Processor"')
    c = parse_config(text.encode("utf-8"))
    assert c.init_config["class_name"] == "Caf\u00e9Processor"
    assert c == parse_config(text)


# --- one test per error -----------------------------------------------------------------------------------------


def base() -> dict:
    """A minimal valid config as a dict, for tests to break one piece of."""
    return {
        "name": "f1",
        "type": "processor",
        "input-groups": [{"inputs": [{"input-type": "kafka", "bootstrap_servers": "b:9092", "topic": "in",
                                      "group_id": "g"}]}],
        "outputs": [{"output-type": "kafka", "bootstrap_servers": "b:9092", "topic": "out"}],
    }


def refused(data, **kw) -> InvalidConfig:
    text = data if isinstance(data, (str, bytes)) else yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(InvalidConfig) as info:
        parse_config(text, **kw)
    return info.value


def mutated(fn) -> dict:
    d = base()
    fn(d)
    return d


def first_input(d: dict) -> dict:
    return d["input-groups"][0]["inputs"][0]


def test_base_is_valid():
    c = parse_config(yaml.safe_dump(base()))
    assert c.name == "f1" and c.inputs[0].partition is None and c.outputs[0].partition is None


def test_missing_name():
    exc = refused(mutated(lambda d: d.pop("name")))
    assert exc.field == "name"
    assert str(exc) == "name: is required"


@pytest.mark.parametrize("name", ["my fn", "-lead", ".hidden", "a/b", "x" * 201, "caf\u00e9"])
def test_bad_name_characters(name):
    exc = refused(mutated(lambda d: d.update(name=name)))
    assert exc.field == "name"
    assert "letters, digits" in str(exc) and "at most 200" in str(exc)


@pytest.mark.parametrize("name", ["a", "0", "my-fn_2.v1", "x" * 200])
def test_good_names(name):
    assert parse_config(yaml.safe_dump(mutated(lambda d: d.update(name=name)))).name == name


def test_name_with_trailing_newline_is_refused():
    exc = refused(mutated(lambda d: d.update(name="f1\n")))
    assert exc.field == "name"


def test_topic_with_trailing_newline_is_refused():
    exc = refused(mutated(lambda d: first_input(d).update(topic="in\n")))
    assert exc.field == "input-groups[0].inputs[0].topic"


def test_bad_topic_name():
    exc = refused(mutated(lambda d: d["outputs"][0].update(topic="bad topic!")))
    assert exc.field == "outputs[0].topic"
    assert "not a legal Kafka topic name" in str(exc)


def test_missing_input_groups():
    exc = refused(mutated(lambda d: d.pop("input-groups")))
    assert exc.field == "input-groups"
    assert "is required and must be a non-empty list" in str(exc)


def test_empty_input_groups():
    exc = refused(mutated(lambda d: d.update({"input-groups": []})))
    assert exc.field == "input-groups"
    assert "non-empty list" in str(exc)


def test_input_groups_not_a_list():
    exc = refused(mutated(lambda d: d.update({"input-groups": {"inputs": []}})))
    assert exc.field == "input-groups"
    assert "non-empty list, not a dict" in str(exc)


def test_empty_inputs_of_a_group():
    exc = refused(mutated(lambda d: d["input-groups"][0].update(inputs=[])))
    assert exc.field == "input-groups[0].inputs"


def test_missing_outputs():
    exc = refused(mutated(lambda d: d.pop("outputs")))
    assert exc.field == "outputs"
    assert "is required" in str(exc)


@pytest.mark.parametrize("key", ["topic", "bootstrap_servers", "group_id"])
def test_input_missing_required_key(key):
    exc = refused(mutated(lambda d: first_input(d).pop(key)))
    assert exc.field == f"input-groups[0].inputs[0].{key}"
    assert str(exc) == f"input-groups[0].inputs[0].{key}: is required"


def test_second_input_error_names_its_index():
    def fn(d):
        d["input-groups"][0]["inputs"].append({"bootstrap_servers": "b:9092", "group_id": "g"})
    exc = refused(mutated(fn))
    assert exc.field == "input-groups[0].inputs[1].topic"


def test_empty_group_id_string():
    exc = refused(mutated(lambda d: first_input(d).update(group_id="  ")))
    assert exc.field == "input-groups[0].inputs[0].group_id"
    assert "non-empty string" in str(exc)


def test_input_type_other_than_kafka():
    exc = refused(mutated(lambda d: first_input(d).update({"input-type": "pulsar"})))
    assert exc.field == "input-groups[0].inputs[0].input-type"
    assert "only 'kafka' is supported, not 'pulsar'" in str(exc)


def test_output_type_other_than_kafka():
    exc = refused(mutated(lambda d: d["outputs"][0].update({"output-type": "http"})))
    assert exc.field == "outputs[0].output-type"
    assert "only 'kafka'" in str(exc)


def test_negative_partition():
    exc = refused(mutated(lambda d: first_input(d).update(partition=-1)))
    assert exc.field == "input-groups[0].inputs[0].partition"
    assert "must be 0 or more" in str(exc)


@pytest.mark.parametrize("value, kind", [("0", "the string '0'"), (1.5, "the number 1.5"), ([0], "a list")])
def test_partition_not_an_int(value, kind):
    exc = refused(mutated(lambda d: d["outputs"][0].update(partition=value)))
    assert exc.field == "outputs[0].partition"
    assert str(exc) == f"outputs[0].partition: must be an integer, not {kind}"


def test_bool_where_int_expected_partition():
    exc = refused(mutated(lambda d: first_input(d).update(partition=True)))
    assert exc.field == "input-groups[0].inputs[0].partition"
    assert "must be an integer, not the boolean True" in str(exc)


def test_bool_where_int_expected_runtime():
    exc = refused(mutated(lambda d: first_input(d).update(runtime={"channel-capacity": False})))
    assert exc.field == "input-groups[0].inputs[0].runtime.channel-capacity"
    assert "non-negative integer, not False" in str(exc)


def test_bool_where_int_expected_processor_runtime_and_checkpoint_interval():
    exc = refused(mutated(lambda d: d.update({"processor-runtime": {"max-batch-size": True}})))
    assert exc.field == "processor-runtime.max-batch-size"
    exc = refused(mutated(lambda d: d.update(checkpoint_interval_seconds=True)))
    assert exc.field == "checkpoint_interval_seconds"


def test_negative_runtime_value():
    exc = refused(mutated(lambda d: d["outputs"][0].update(runtime={"poll-timeout-ms": -5})))
    assert exc.field == "outputs[0].runtime.poll-timeout-ms"


def test_unknown_top_level_key_suggests_nearest():
    exc = refused(mutated(lambda d: d.update({"init-config": {"a": "b"}})))
    assert exc.field == "init-config"
    assert "unknown key; did you mean 'init_config'?" in str(exc)
    exc = refused(mutated(lambda d: d.update(outptus=d.pop("outputs"))))
    assert exc.field == "outptus"
    assert "did you mean 'outputs'?" in str(exc)


def test_unknown_top_level_key_without_close_match_lists_known_keys():
    exc = refused(mutated(lambda d: d.update(zzzzzzzz=1)))
    assert exc.field == "zzzzzzzz"
    assert "known keys: name, type, input-groups" in str(exc)


def test_unknown_key_in_an_input_suggests_nearest():
    exc = refused(mutated(lambda d: first_input(d).update(grup_id=first_input(d).pop("group_id"))))
    assert exc.field == "input-groups[0].inputs[0].grup_id"
    assert "did you mean 'group_id'?" in str(exc)


def test_unknown_undotted_key_in_an_input_mentions_kafka_properties():
    exc = refused(mutated(lambda d: first_input(d).update(zzzzzzzz="x")))
    assert exc.field == "input-groups[0].inputs[0].zzzzzzzz"
    assert "dotted keys such as auto.offset.reset go to the Kafka client" in str(exc)


def test_dotted_keys_pass_through_as_strings():
    def fn(d):
        first_input(d).update({"auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                               "enable.auto.commit": True, "fetch.wait.max.ms": 1.5})
        d["outputs"][0].update({"linger.ms": 5, "enable.idempotence": False})
    c = parse_config(yaml.safe_dump(mutated(fn)))
    assert c.inputs[0].properties == {"auto.offset.reset": "earliest", "session.timeout.ms": "6000",
                                      "enable.auto.commit": "true", "fetch.wait.max.ms": "1.5"}
    assert c.outputs[0].properties == {"linger.ms": "5", "enable.idempotence": "false"}


@pytest.mark.parametrize("value, kind", [({"a": 1}, "a dict"), ([1], "a list"), (None, "nothing")])
def test_dotted_key_with_non_scalar_value_refused(value, kind):
    exc = refused(mutated(lambda d: first_input(d).update({"auto.offset.reset": value})))
    assert exc.field == "input-groups[0].inputs[0].auto.offset.reset"
    assert f"must be a scalar, not {kind}" in str(exc)


def test_dotted_key_at_top_level_is_not_passed_through():
    exc = refused(mutated(lambda d: d.update({"auto.offset.reset": "earliest"})))
    assert exc.field == "auto.offset.reset"


@pytest.mark.parametrize("value", [{"x": 1}, [1, 2]])
def test_init_config_nested_value_refused(value):
    exc = refused(mutated(lambda d: d.update(init_config={"ok": "1", "nested": value})))
    assert exc.field == "init_config.nested"
    assert "must be scalars" in str(exc)


def test_init_config_scalars_coerced_to_strings():
    c = parse_config(yaml.safe_dump(mutated(lambda d: d.update(
        init_config={"n": 6, "f": 0.5, "t": True, "no": False, "none": None, "s": "x"}))))
    assert c.init_config == {"n": "6", "f": "0.5", "t": "true", "no": "false", "none": "", "s": "x"}


def test_init_config_not_a_mapping():
    exc = refused(mutated(lambda d: d.update(init_config=["a", "b"])))
    assert exc.field == "init_config"
    assert "must be a mapping, not a list" in str(exc)


@pytest.mark.parametrize("text, kind", [
    ("- a\n- b\n", "a list"),
    ("just a string\n", "the string 'just a string'"),
    ("42\n", "the number 42"),
    ("", "nothing"),
    ("# only a comment\n", "nothing"),
])
def test_top_level_not_a_mapping(text, kind):
    exc = refused(text)
    assert exc.field == "config"
    assert str(exc) == f"config: must be a mapping, not {kind}"


def test_non_string_top_level_key():
    exc = refused("1: x\nname: f\n")
    assert exc.field == "config"
    assert "keys must be strings, found 1" in str(exc)


def test_invalid_yaml_reports_line_and_column():
    text = "name: f1\ntype: processor\noutputs: [a, b\ninput-groups: []\n"
    exc = refused(text)
    assert exc.field is None
    # the flow sequence opened on line 3 is still open when line 4's mapping key arrives
    assert str(exc).startswith("config is not valid YAML at line 4, column 13:")
    exc = refused("name: f1\n  bad: indent\n")
    assert "at line 2, column 6" in str(exc)


def test_tab_indentation_reports_position():
    exc = refused("name: f1\n\tbad: x\n")
    assert exc.field is None
    assert "not valid YAML at line 2, column 1" in str(exc)


def test_non_utf8_bytes():
    exc = refused(b"name: caf\xe9\n")
    assert exc.field is None
    assert str(exc) == "config is not UTF-8 text (invalid continuation byte at byte 9)"


def test_inputs_with_different_group_ids_refused():
    def fn(d):
        d["input-groups"][0]["inputs"].append({"bootstrap_servers": "b:9092", "topic": "in2", "group_id": "g"})
        d["input-groups"].append({"inputs": [{"bootstrap_servers": "b:9092", "topic": "in3", "group_id": "other"}]})
    exc = refused(mutated(fn))
    assert exc.field == "input-groups[].inputs[].group_id"
    assert "['g', 'other']" in str(exc)


def test_inputs_sharing_a_group_across_groups_accepted():
    def fn(d):
        d["input-groups"].append({"inputs": [{"bootstrap_servers": "b:9092", "topic": "in3", "group_id": "g"}]})
    c = parse_config(yaml.safe_dump(mutated(fn)))
    assert [i.topic for i in c.inputs] == ["in", "in3"] and c.group_id == "g"


def test_unknown_processor_runtime_key():
    exc = refused(mutated(lambda d: d.update({"processor-runtime": {"max-batch-sise": 10}})))
    assert exc.field == "processor-runtime.max-batch-sise"
    assert "did you mean 'max-batch-size'?" in str(exc)


def test_unknown_channel_runtime_key():
    exc = refused(mutated(lambda d: d["outputs"][0].update(runtime={"channel-capacty": 10})))
    assert exc.field == "outputs[0].runtime.channel-capacty"
    assert "did you mean 'channel-capacity'?" in str(exc)


def test_missing_type_without_default():
    exc = refused(mutated(lambda d: d.pop("type")))
    assert exc.field == "type"
    assert "is required" in str(exc) and "processor" in str(exc) and "python" in str(exc)


@pytest.mark.parametrize("default", [TaskType.PROCESSOR, TaskType.PYTHON])
def test_missing_type_with_default(default):
    c = parse_config(yaml.safe_dump(mutated(lambda d: d.pop("type"))), default_type=default)
    assert c.type is default


def test_explicit_type_wins_over_default():
    c = parse_config(yaml.safe_dump(base()), default_type=TaskType.PYTHON)
    assert c.type is TaskType.PROCESSOR


def test_unknown_type():
    exc = refused(mutated(lambda d: d.update(type="lambda")))
    assert exc.field == "type"
    assert "must be 'processor' or 'python', not 'lambda'" in str(exc)


def test_bad_input_selector():
    exc = refused(mutated(lambda d: d.update({"input-selector": "random"})))
    assert exc.field == "input-selector"
    assert "round-robin, sequential" in str(exc)


def test_checkpoint_interval_below_one():
    exc = refused(mutated(lambda d: d.update(checkpoint_interval_seconds=0)))
    assert exc.field == "checkpoint_interval_seconds"


def test_field_prefixes_the_message():
    exc = refused(mutated(lambda d: first_input(d).update(partition=-3)))
    assert str(exc).startswith(exc.field + ": ")


# --- properties -----------------------------------------------------------------------------------------------


_YAMLISH = st.lists(st.sampled_from(list(":-[]{}#&*!|>'\"%@`,?.\\ \t\n") + ["name", "type", "inputs", "a", "0"]),
                    max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.text() | _YAMLISH)
def test_arbitrary_text_only_raises_invalid_config(text):
    try:
        parse_config(text)
    except InvalidConfig:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_only_raise_invalid_config(data):
    try:
        parse_config(data)
    except InvalidConfig:
        pass


_KEYS = st.sampled_from(["name", "type", "input-groups", "outputs", "inputs", "topic", "group_id", "partition",
                         "bootstrap_servers", "init_config", "runtime", "processor-runtime", "input-type",
                         "channel-capacity", "auto.offset.reset", "input-selector", "checkpoint_interval_seconds",
                         "enable_checkpoint", "x"]) | st.text(max_size=8)
_SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=8)
            | st.sampled_from(["processor", "python", "kafka", "f1", "b:9092", "in", "g"]))
_TREES = st.recursive(_SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_KEYS, kids, max_size=5),
                      max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _TREES, max_size=6) | _TREES)
def test_arbitrary_yaml_structures_only_raise_invalid_config(tree):
    text = yaml.safe_dump(tree)
    try:
        c = parse_config(text)
    except InvalidConfig:
        return
    assert isinstance(c, FunctionConfig)
    # and the structure, handed over directly, gives the same answer
    assert validate_config(yaml.safe_load(text)) == c


_PATHS = st.sampled_from([
    ("name",), ("type",), ("input-groups",), ("outputs",), ("init_config",), ("processor-runtime",), ("runtime",),
    ("input-groups", 0), ("input-groups", 0, "inputs"), ("input-groups", 0, "inputs", 0),
    ("input-groups", 0, "inputs", 0, "topic"), ("input-groups", 0, "inputs", 0, "partition"),
    ("input-groups", 0, "inputs", 0, "group_id"), ("input-groups", 0, "inputs", 0, "runtime"),
    ("input-groups", 0, "inputs", 0, "a.b"), ("outputs", 0), ("outputs", 0, "partition"),
    ("outputs", 0, "runtime"), ("outputs", 0, "output-type"),
])


@settings(max_examples=300, deadline=None)
@given(_PATHS, _TREES)
def test_near_valid_configs_only_raise_invalid_config(path, junk):
    """Put random junk at one place of a valid config: the only error is an InvalidConfig."""
    d = base()
    target = d
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = junk
    try:
        parse_config(yaml.safe_dump(d))
    except InvalidConfig:
        pass


NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,30}\Z")
TOPICS = st.from_regex(r"\A[A-Za-z0-9._-]{1,40}\Z").filter(lambda t: t not in (".", ".."))
PARTITIONS = st.none() | st.integers(0, 2**31 - 1)
INIT_VALUES = st.text(max_size=10) | st.integers() | st.booleans()


def _str(v) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


@st.composite
def valid_configs(draw):
    group = draw(st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20))
    bootstrap = draw(st.sampled_from(["localhost:9092", "b1:9092,b2:9092", "127.0.0.1:1"]))

    def endpoint(kind):
        e = {f"{kind}-type": "kafka", "bootstrap_servers": bootstrap, "topic": draw(TOPICS)}
        if kind == "input":
            e["group_id"] = group
        p = draw(PARTITIONS)
        if p is not None:
            e["partition"] = p
        return e

    n_in = draw(st.integers(1, 3))
    inputs = [endpoint("input") for _ in range(n_in)]
    # spread the inputs over one or more groups, in order
    cuts = sorted(draw(st.sets(st.integers(1, n_in - 1), max_size=n_in - 1))) if n_in > 1 else []
    bounds = [0, *cuts, n_in]
    groups = [{"inputs": inputs[a:b]} for a, b in zip(bounds, bounds[1:])]
    d = {
        "name": draw(NAMES),
        "type": draw(st.sampled_from(["processor", "python"])),
        "input-groups": groups,
        "outputs": [endpoint("output") for _ in range(draw(st.integers(1, 3)))],
    }
    init = draw(st.dictionaries(st.text(string.ascii_letters + "_", min_size=1, max_size=10), INIT_VALUES,
                                max_size=4))
    if init or draw(st.booleans()):
        d["init_config"] = init
    return d


@settings(max_examples=200, deadline=None)
@given(valid_configs())
def test_valid_generated_configs_round_trip(d):
    c = parse_config(yaml.safe_dump(d))
    assert c.name == d["name"]
    assert c.type.value == d["type"]
    ins = [i for g in d["input-groups"] for i in g["inputs"]]
    assert [i.topic for i in c.inputs] == [i["topic"] for i in ins]
    assert [i.partition for i in c.inputs] == [i.get("partition") for i in ins]
    assert [len(g.inputs) for g in c.input_groups] == [len(g["inputs"]) for g in d["input-groups"]]
    assert c.group_id == ins[0]["group_id"]
    assert [o.topic for o in c.outputs] == [o["topic"] for o in d["outputs"]]
    assert [o.partition for o in c.outputs] == [o.get("partition") for o in d["outputs"]]
    assert c.init_config == {k: _str(v) for k, v in d.get("init_config", {}).items()}


def _python_config(requirements) -> str:
    return yaml.safe_dump({
        "name": "py", "type": "python", "requirements": requirements,
        "input-groups": [{"inputs": [{"bootstrap_servers": "b:9092", "topic": "t", "group_id": "g"}]}],
        "outputs": [{"bootstrap_servers": "b:9092", "topic": "o"}],
    })


def test_requirements_are_normalised_and_sorted():
    assert parse_config(_python_config(["Six == 1.16.0", "tabulate>=0.9"])).requirements == (
        "Six==1.16.0", "tabulate>=0.9")


@pytest.mark.parametrize("requirements, field", [
    ("six", "requirements"),
    (["six", 3], "requirements[1]"),
    (["not a requirement!"], "requirements[0]"),
    (["pkg @ https://example.invalid/pkg.whl"], "requirements[0]"),
])
def test_bad_requirements_are_refused_with_the_field(requirements, field):
    with pytest.raises(InvalidConfig) as info:
        parse_config(_python_config(requirements))
    assert info.value.field == field


def test_only_python_functions_take_requirements():
    text = _python_config(["six"]).replace("type: python", "type: processor")
    with pytest.raises(InvalidConfig) as info:
        parse_config(text)
    assert info.value.field == "requirements"


# --- delivery guarantee and error policy -------------------------------------------------------------------------


def test_guarantee_and_error_policy_defaults():
    c = parse_config(yaml.safe_dump(base()))
    assert c.guarantee.value == "at_least_once" and c.commit_interval_ms is None
    assert (c.error_policy.value, c.error_retries, c.dead_letter_topic) == ("fail", 3, None)


def test_a_dead_letter_topic_makes_dead_letter_the_default_policy():
    c = parse_config(yaml.safe_dump({**base(), "errors.deadletterqueue.topic.name": "dlq", "errors.retries": 0}))
    assert (c.error_policy.value, c.error_retries, c.dead_letter_topic) == ("dead-letter", 0, "dlq")


@pytest.mark.parametrize("extra, field, message", [
    ({"processing.guarantee": "exactly-once"}, "processing.guarantee", "at_least_once, exactly_once"),
    ({"commit.interval.ms": 0}, "commit.interval.ms", "at least 1"),
    ({"errors.policy": "ignore"}, "errors.policy", "fail, skip, dead-letter"),
    ({"errors.policy": "dead-letter"}, "errors.policy", "errors.deadletterqueue.topic.name"),
    ({"errors.retries": -1}, "errors.retries", "between 0 and 100"),
    ({"errors.deadletterqueue.topic.name": "no/slash"}, "errors.deadletterqueue.topic.name", "not a Kafka topic"),
    ({"processing.guarantee": "exactly_once", "outputs": [{"bootstrap_servers": "other:9092", "topic": "o"}]},
     "outputs[0].bootstrap_servers", "inputs' cluster"),
])
def test_guarantee_and_error_keys_are_checked(extra, field, message):
    exc = refused({**base(), **extra})
    assert exc.field == field and message in str(exc)


# --- sandbox grants and limits ------------------------------------------------------------------------------------

def test_wasi_grants_are_explicit_keys_and_nothing_is_granted_without_them():
    assert parse_config(GO_PROCESSOR).wasi.env == {} and parse_config(GO_PROCESSOR).wasi.dirs == ()
    config = parse_config(GO_PROCESSOR + """\
wasi:
  env: {TZ: UTC, LEVEL: 3}
  dirs:
    - {host: /srv/models, guest: /models, read-only: true}
    - {host: /tmp/scratch, guest: /scratch}
""")
    assert config.wasi.env == {"TZ": "UTC", "LEVEL": "3"}
    assert [(d.host, d.guest, d.read_only) for d in config.wasi.dirs] == [
        ("/srv/models", "/models", True), ("/tmp/scratch", "/scratch", False)]


@pytest.mark.parametrize("grant, field", [
    ("wasi: {dirs: [{host: srv, guest: /d}]}", "wasi.dirs[0].host"),
    ("wasi: {dirs: [{host: /srv/../etc, guest: /d}]}", "wasi.dirs[0].host"),
    ("wasi: {dirs: [{host: /a, guest: /d}, {host: /b, guest: /d}]}", "wasi.dirs[1].guest"),
    ("wasi: {dirs: [{host: /a, guest: /d, writable: true}]}", "wasi.dirs[0].writable"),
    ("wasi: {env: {A: [1]}}", "wasi.env.A"),
    ("wasi: {network: true}", "wasi.network"),
])
def test_bad_wasi_grants_name_their_field(grant, field):
    with pytest.raises(InvalidConfig) as e:
        parse_config(GO_PROCESSOR + grant + "\n")
    assert e.value.field == field


def test_wasi_grants_do_not_apply_to_python_functions_in_their_own_process():
    with pytest.raises(InvalidConfig) as e:
        parse_config(PYTHON_PROCESSOR + "wasi: {env: {A: b}}\n")
    assert e.value.field == "wasi"


def test_cpu_and_memory_limits():
    config = parse_config(PYTHON_PROCESSOR + "processor-runtime: {memory-limit-mb: 256, cpu-limit-seconds: 600}\n")
    assert (config.processor_runtime.memory_limit_mb, config.processor_runtime.cpu_limit_seconds) == (256, 600)


def test_parallelism_and_placement_labels():
    c = parse_config(yaml.safe_dump(mutated(lambda d: d.update(parallelism=2, placement={"labels": {
        "zone": "a", "gpu": None, "tier": ""}}))))
    assert c.parallelism == 2 and c.placement_labels == {"zone": "a", "gpu": "", "tier": ""}
    plain = parse_config(yaml.safe_dump(base()))
    assert plain.parallelism is None and plain.placement_labels == {}


@pytest.mark.parametrize("value", [0, -1, 10_001, "2", True])
def test_bad_parallelism_names_the_field(value):
    exc = refused(mutated(lambda d: d.update(parallelism=value)))
    assert exc.field == "parallelism"


@pytest.mark.parametrize("placement,field", [
    ({"label": {"zone": "a"}}, "placement.label"),
    ({"labels": ["zone"]}, "placement.labels"),
    ({"labels": {"zone": ["a"]}}, "placement.labels.zone"),
    ({"labels": {"zo ne": "a"}}, "placement.labels.zo ne"),
    ("zone=a", "placement"),
])
def test_bad_placement_names_the_field(placement, field):
    exc = refused(mutated(lambda d: d.update(placement=placement)))
    assert exc.field == field
