"""A function's spec: the control record's config parsed once, its derived values, an invalid config as state."""

from dataclasses import dataclass, replace

from fs_bus.control.records import encode_function
from fs_bus.control.spec import FunctionSpec
from fs_bus.control.store import ControlState
from fs_bus.errors import InvalidConfig
from fs_bus.state.changelog import changelog_topic
from tests.unit.test_codec import SAMPLE

CONFIG = """\
name: f
type: processor
input-groups: [{inputs: [{bootstrap_servers: "in:9092", topic: b, group_id: g},
                         {bootstrap_servers: "in:9092", topic: a, group_id: g}]}]
outputs: [{bootstrap_servers: "out:9092", topic: o}]
processor-runtime: {control-timeout-ms: 2500}
"""


@dataclass
class Msg:
    """What ControlState.fold reads of a consumed record (a confluent_kafka.Message has these)."""

    k: bytes
    v: bytes | None

    def key(self): return self.k
    def value(self): return self.v
    def topic(self): return "ns.control"
    def partition(self): return 0
    def offset(self): return 0


def spec(config: str = CONFIG, generation: int = 3) -> FunctionSpec:
    return FunctionSpec(replace(SAMPLE, name="f", config_yaml=config, state_generation=generation))


def test_derived_values_come_from_the_parsed_config() -> None:
    s = spec()
    assert s.error is None and s.config is not None and s.config.group_id == "g"
    assert s.input_servers == "in:9092"
    assert s.input_topics == ["a", "b"]
    assert s.call_budget_s == 2.5
    assert s.changelog_topics("ns") == {"b": changelog_topic("ns", "f", 3, "b"), "a": changelog_topic("ns", "f", 3, "a")}
    assert s.changelog_topics("ns", 7)["a"] == changelog_topic("ns", "f", 7, "a")
    assert s.transactional_id("ns", "n1") == "fs-bus.ns.f.n1"


def test_the_call_budget_has_a_floor() -> None:
    assert spec(CONFIG.replace("2500", "1")).call_budget_s == 0.1


def test_an_invalid_config_is_state_not_an_exception() -> None:
    s = spec("name: f\ntype: processor\n")
    assert s.config is None
    assert s.error is not None and "input-groups" in s.error
    try:
        s.input_servers
    except InvalidConfig as exc:
        assert str(exc) == s.error  # the parser's own message, naming the field
    else:
        raise AssertionError("a derived value of an invalid config must raise InvalidConfig")


def test_the_config_is_parsed_once_per_record(monkeypatch) -> None:
    import fs_bus.control.spec as module
    calls = []
    real = module.parse_config
    monkeypatch.setattr(module, "parse_config", lambda text: calls.append(text) or real(text))
    s = spec()
    for _ in range(3):
        assert s.config is not None and s.changelog_topics("ns") and s.call_budget_s
    assert len(calls) == 1


def test_the_control_state_keeps_a_spec_per_function_and_forgets_dropped_ones() -> None:
    state = ControlState()
    rec = replace(SAMPLE, name="f", config_yaml=CONFIG)
    state.fold(Msg(b"f", encode_function(rec)))
    first = state.spec("f")
    assert first is not None and first.record == rec and first.config is not None
    state.fold(Msg(b"f", encode_function(replace(rec, revision=rec.revision + 1))))
    second = state.spec("f")
    assert second is not None and second is not first and second.record.revision == rec.revision + 1
    state.fold(Msg(b"f", None))
    assert state.spec("f") is None


def test_a_new_record_with_the_same_config_text_is_not_parsed_again() -> None:
    state = ControlState()
    first = replace(SAMPLE, name="f", config_yaml=CONFIG, revision=1)
    state.fold(Msg(b"f", encode_function(first)))
    parsed = state.spec("f").config
    state.fold(Msg(b"f", encode_function(replace(first, revision=2))))  # STOP/START: same text
    assert state.spec("f").record.revision == 2 and state.spec("f").config is parsed
    state.fold(Msg(b"f", encode_function(replace(first, revision=3, config_yaml=CONFIG + "# changed\n"))))
    assert state.spec("f").config is not parsed and state.spec("f").config == parsed
