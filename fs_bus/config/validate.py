"""Parse and validate a function's YAML config. Pure: text in, ``FunctionConfig`` out.

Every error is an ``InvalidConfig`` whose ``field`` is the dotted path of the
offending key (``input-groups[0].inputs[1].topic``); an unknown key suggests the
nearest known one. The client validates before writing anything, and the node
validates again, since anyone can write to the control topic.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable, TypeVar

import yaml

from fs_bus.config import yaml_text
from fs_bus.config.model import (
    ChannelRuntime, ErrorPolicy, FunctionConfig, Guarantee, InputGroup, KafkaInput, KafkaOutput, ProcessorRuntime,
    TaskType, WasiAccess, WasiDir,
)
from fs_bus.errors import InvalidConfig

T = TypeVar("T")

# A config is a few KB; anyone can write the control topic, so a bigger one is refused
# before YAML parsing spends seconds and memory on it.
MAX_CONFIG_BYTES = 256 * 1024

# A function name becomes a Kafka record key, a status key and a SQL identifier.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
INPUT_SELECTORS = ("round-robin", "sequential")
_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]{1,249}")

_CHANNEL_KEYS = {
    "channel-capacity": "channel_capacity",
    "batch-consume-size": "batch_consume_size",
    "poll-timeout-ms": "poll_timeout_ms",
    "sleep-when-full-ms": "sleep_when_full_ms",
}
_PROCESSOR_RUNTIME_KEYS = {
    "max-batch-size": "max_batch_size",
    "max-idle-count": "max_idle_count",
    "idle-sleep-ms": "idle_sleep_ms",
    "control-timeout-ms": "control_timeout_ms",
    "control-max-retries": "control_max_retries",
    "memory-limit-mb": "memory_limit_mb",
    "cpu-limit-seconds": "cpu_limit_seconds",
    "stall-timeout-ms": "stall_timeout_ms",
    "idle-park-ms": "idle_park_ms",
}
# Below this, a commit point waiting a moment for its acknowledgements would count as a stall.
MIN_STALL_TIMEOUT_MS = 1000
_TOP_KEYS = (
    "name", "type", "input-groups", "outputs", "init_config", "input-selector", "runtime",
    "processor-runtime", "use_builtin_event_serialization", "enable_checkpoint",
    "checkpoint_interval_seconds", "requirements", "python-runtime", "wasi", "processing.guarantee",
    "commit.interval.ms", "errors.policy", "errors.retries", "errors.deadletterqueue.topic.name",
    "parallelism", "placement",
)
_INPUT_KEYS = ("input-type", "bootstrap_servers", "topic", "group_id", "partition", "runtime")
_OUTPUT_KEYS = ("output-type", "bootstrap_servers", "topic", "partition", "runtime")


def parse_config(text: str | bytes, *, default_type: TaskType | None = None) -> FunctionConfig:
    """Parse YAML text into a validated config.

    ``default_type`` fills a missing ``type`` (the client knows it from the
    artifact: a ``.wasm`` is a processor).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidConfig(f"config is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise InvalidConfig(f"config is {len(text)} characters long, more than the {MAX_CONFIG_BYTES} a function "
                            "config may have")
    try:
        # libyaml where the text cannot nest deeply (it crashes on deep input), else PyYAML's own.
        data = yaml_text.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidConfig(f"config is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise InvalidConfig("config nests too deeply to be a function config") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidConfig(f"config holds a value YAML cannot convert: {exc}") from None
    return validate_config(data, default_type=default_type)


def validate_config(data: Any, *, default_type: TaskType | None = None) -> FunctionConfig:
    top = _mapping(data, "config")
    _known_keys(top, _TOP_KEYS, "")
    name = _string(top, "name", "")
    if not NAME_RE.fullmatch(name):
        raise InvalidConfig(
            "must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (at most 200)",
            "name")
    type_ = _task_type(top.get("type"), default_type)
    groups_raw = _list(top, "input-groups", "", required=True)
    groups = tuple(_input_group(g, f"input-groups[{i}]") for i, g in enumerate(groups_raw))
    outputs_raw = _list(top, "outputs", "", required=True)
    outputs = tuple(_output(o, f"outputs[{i}]") for i, o in enumerate(outputs_raw))
    group_ids = {i.group_id for g in groups for i in g.inputs}
    if len(group_ids) > 1:
        raise InvalidConfig(
            f"all inputs of a function join one consumer group, found several: {sorted(group_ids)}",
            "input-groups[].inputs[].group_id")
    selector = _optional(top, "input-selector", "", str, "a string", "round-robin")
    if selector not in INPUT_SELECTORS:
        raise InvalidConfig(f"must be one of {', '.join(INPUT_SELECTORS)}, not {selector!r}", "input-selector")
    interval = _optional(top, "checkpoint_interval_seconds", "", int, "an integer", 1)
    if interval < 1:
        raise InvalidConfig("must be at least 1", "checkpoint_interval_seconds")
    guarantee = _guarantee(top, inputs=[i for g in groups for i in g.inputs], outputs=outputs)
    commit_interval = _optional(top, "commit.interval.ms", "", int, "an integer", None)
    if commit_interval is not None and commit_interval < 1:
        raise InvalidConfig("must be at least 1", "commit.interval.ms")
    policy, retries, dlq = _errors(top)
    return FunctionConfig(
        name=name,
        type=type_,
        input_groups=groups,
        outputs=outputs,
        init_config=_init_config(top.get("init_config")),
        input_selector=selector,
        runtime=_channel_runtime(top.get("runtime"), "runtime"),
        processor_runtime=_processor_runtime(top.get("processor-runtime")),
        use_builtin_event_serialization=_optional(top, "use_builtin_event_serialization", "", bool, "true or false", False),
        enable_checkpoint=_optional(top, "enable_checkpoint", "", bool, "true or false", False),
        checkpoint_interval_seconds=interval,
        requirements=_requirements(top.get("requirements"), type_),
        python_runtime=_python_runtime(top, type_),
        guarantee=guarantee,
        commit_interval_ms=commit_interval,
        error_policy=policy,
        error_retries=retries,
        dead_letter_topic=dlq,
        wasi=_wasi(top, type_),
        parallelism=_parallelism(top),
        placement_labels=_placement(top),
    )


# --- pieces -----------------------------------------------------------------


def _input_group(raw: Any, path: str) -> InputGroup:
    group = _mapping(raw, path)
    _known_keys(group, ("inputs",), path)
    inputs = _list(group, "inputs", path, required=True)
    return InputGroup(tuple(_input(x, f"{path}.inputs[{i}]") for i, x in enumerate(inputs)))


def _input(raw: Any, path: str) -> KafkaInput:
    m = _mapping(raw, path)
    _endpoint_type(m, "input-type", path)
    props = _known_keys(m, _INPUT_KEYS, path, passthrough=True)
    return KafkaInput(
        bootstrap_servers=_string(m, "bootstrap_servers", path),
        topic=_topic(m, path),
        group_id=_string(m, "group_id", path),
        partition=_partition(m, path),
        properties=props,
        runtime=_channel_runtime(m.get("runtime"), f"{path}.runtime"),
    )


def _output(raw: Any, path: str) -> KafkaOutput:
    m = _mapping(raw, path)
    _endpoint_type(m, "output-type", path)
    props = _known_keys(m, _OUTPUT_KEYS, path, passthrough=True)
    return KafkaOutput(
        bootstrap_servers=_string(m, "bootstrap_servers", path),
        topic=_topic(m, path),
        partition=_partition(m, path),
        properties=props,
        runtime=_channel_runtime(m.get("runtime"), f"{path}.runtime"),
    )


def _endpoint_type(m: dict[str, Any], key: str, path: str) -> None:
    value = m.get(key, "kafka")
    if value != "kafka":
        raise InvalidConfig(f"only 'kafka' is supported, not {value!r}", _join(path, key))


def _topic(m: dict[str, Any], path: str) -> str:
    topic = _string(m, "topic", path)
    if not _TOPIC_RE.fullmatch(topic) or topic in (".", ".."):
        raise InvalidConfig(f"{topic!r} is not a legal Kafka topic name (letters, digits, '.', '_', '-')",
                            _join(path, "topic"))
    return topic


def _partition(m: dict[str, Any], path: str) -> int | None:
    value = _optional(m, "partition", path, int, "an integer", None)
    if value is not None and value < 0:
        raise InvalidConfig("must be 0 or more", _join(path, "partition"))
    return value


def _task_type(value: Any, default: TaskType | None) -> TaskType:
    if value is None:
        if default is None:
            raise InvalidConfig("is required: processor (a WebAssembly component) or python", "type")
        return default
    try:
        return TaskType(value)
    except ValueError:
        raise InvalidConfig(f"must be 'processor' or 'python', not {value!r}", "type") from None


PYTHON_RUNTIMES = ("process", "wasm")


def _python_runtime(top: dict[str, Any], type_: TaskType) -> str:
    """Where a python function's code runs: its own OS process, or a Python runtime component."""
    value = _optional(top, "python-runtime", "", str, "a string", "process")
    if value not in PYTHON_RUNTIMES:
        raise InvalidConfig(f"must be one of {', '.join(PYTHON_RUNTIMES)}, not {value!r}", "python-runtime")
    if "python-runtime" in top and type_ is not TaskType.PYTHON:
        raise InvalidConfig("applies to type: python functions only", "python-runtime")
    if value == "wasm" and top.get("requirements"):
        raise InvalidConfig("a function running in the wasm Python runtime can use only the standard library; "
                            "drop requirements or use python-runtime: process", "requirements")
    return value


def _errors(top: dict[str, Any]) -> tuple[ErrorPolicy, int, str | None]:
    """The ``errors.*`` keys (named as in Kafka Connect). The default policy is dead-letter
    when a dead-letter topic is named, else fail."""
    dlq = _optional(top, "errors.deadletterqueue.topic.name", "", str, "a topic name", None)
    if dlq is not None and (not _TOPIC_RE.fullmatch(dlq) or dlq in (".", "..")):
        raise InvalidConfig(f"{dlq!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)",
                            "errors.deadletterqueue.topic.name")
    default = ErrorPolicy.DEAD_LETTER if dlq else ErrorPolicy.FAIL
    value = _optional(top, "errors.policy", "", str, "a string", default.value)
    try:
        policy = ErrorPolicy(value)
    except ValueError:
        raise InvalidConfig(f"must be one of {', '.join(p.value for p in ErrorPolicy)}, not {value!r}",
                            "errors.policy") from None
    if policy is ErrorPolicy.DEAD_LETTER and dlq is None:
        raise InvalidConfig("dead-letter needs errors.deadletterqueue.topic.name, the topic failed records go to",
                            "errors.policy")
    retries = _optional(top, "errors.retries", "", int, "an integer", 3)
    if not 0 <= retries <= 100:
        raise InvalidConfig(f"must be between 0 and 100, not {retries}", "errors.retries")
    return policy, retries, dlq


def _guarantee(top: dict[str, Any], *, inputs: list[KafkaInput], outputs: tuple[KafkaOutput, ...]) -> Guarantee:
    value = _optional(top, "processing.guarantee", "", str, "a string", Guarantee.AT_LEAST_ONCE.value)
    try:
        guarantee = Guarantee(value)
    except ValueError:
        raise InvalidConfig(f"must be one of {', '.join(g.value for g in Guarantee)}, not {value!r}",
                            "processing.guarantee") from None
    if guarantee is Guarantee.EXACTLY_ONCE:
        # One transaction spans outputs, changelogs and input offsets: one cluster.
        servers = inputs[0].bootstrap_servers
        for i, inp in enumerate(inputs):
            if inp.bootstrap_servers != servers:
                raise InvalidConfig(f"exactly_once needs every input on one cluster: {inp.bootstrap_servers!r} "
                                    f"is not {servers!r}", "input-groups[].inputs[].bootstrap_servers")
        for i, out in enumerate(outputs):
            if out.bootstrap_servers != servers:
                raise InvalidConfig(f"exactly_once needs the outputs on the inputs' cluster ({servers!r}), "
                                    f"not {out.bootstrap_servers!r}", f"outputs[{i}].bootstrap_servers")
    return guarantee


def _wasi(top: dict[str, Any], type_: TaskType) -> WasiAccess:
    """The WASI grants: environment variables and directories, nothing else."""
    value = top.get("wasi")
    if value is None:
        return WasiAccess()
    if type_ is TaskType.PYTHON and top.get("python-runtime") != "wasm":
        raise InvalidConfig("applies to WebAssembly guests only (type: processor, or python-runtime: wasm); a "
                            "python-runtime: process function is an OS process", "wasi")
    m = _mapping(value, "wasi")
    _known_keys(m, ("env", "dirs"), "wasi")
    env: dict[str, str] = {}
    if m.get("env") is not None:
        for k, v in _mapping(m["env"], "wasi.env").items():
            if not isinstance(v, (str, int, float)) or isinstance(v, bool) or "=" in k or not k:
                raise InvalidConfig("must be a string (and the name non-empty, without '=')", f"wasi.env.{k}")
            env[k] = str(v)
    dirs = []
    guests = set()
    for i, raw in enumerate(_list(m, "dirs", "wasi", required=False)):
        path = f"wasi.dirs[{i}]"
        d = _mapping(raw, path)
        _known_keys(d, ("host", "guest", "read-only"), path)
        host, guest = _string(d, "host", path), _string(d, "guest", path)
        for key, p in (("host", host), ("guest", guest)):
            if not p.startswith("/") or "\0" in p or ".." in p.split("/"):
                raise InvalidConfig(f"must be an absolute path without '..', not {p!r}", f"{path}.{key}")
        if guest in guests:
            raise InvalidConfig(f"{guest!r} is granted twice", f"{path}.guest")
        guests.add(guest)
        dirs.append(WasiDir(host, guest, _optional(d, "read-only", path, bool, "true or false", False)))
    return WasiAccess(env, tuple(dirs))


MAX_PARALLELISM = 10_000
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")


def _parallelism(top: dict[str, Any]) -> int | None:
    """How many nodes run the function; absent: as many as its input partitions."""
    value = _optional(top, "parallelism", "", int, "an integer", None)
    if value is not None and not 1 <= value <= MAX_PARALLELISM:
        raise InvalidConfig(f"must be between 1 and {MAX_PARALLELISM}, not {value}", "parallelism")
    return value


def _placement(top: dict[str, Any]) -> dict[str, str]:
    """``placement: {labels: {zone: a, gpu: ""}}``: the labels a node needs (an empty value: only the key)."""
    value = top.get("placement")
    if value is None:
        return {}
    m = _mapping(value, "placement")
    _known_keys(m, ("labels",), "placement")
    if m.get("labels") is None:
        return {}
    out: dict[str, str] = {}
    for k, v in _mapping(m["labels"], "placement.labels").items():
        if not _LABEL_RE.fullmatch(k):
            raise InvalidConfig("a label name holds letters, digits, '.', '_', '/' and '-' (at most 63)",
                                f"placement.labels.{k}")
        if isinstance(v, (dict, list)) or isinstance(v, bool):
            raise InvalidConfig(f"must be a string (or nothing: the key alone), not {_kind(v)}",
                                f"placement.labels.{k}")
        out[k] = "" if v is None else str(v)
    return out


def _requirements(value: Any, type_: TaskType) -> tuple[str, ...]:
    """pip requirement strings a ``type: python`` function needs beyond the standard library."""
    if value is None:
        return ()
    if type_ is not TaskType.PYTHON:
        raise InvalidConfig("only type: python functions install requirements", "requirements")
    if not isinstance(value, list):
        raise InvalidConfig(f"must be a list of pip requirements, not {_kind(value)}", "requirements")
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidConfig(f"must be a pip requirement string, not {_kind(item)}", f"requirements[{i}]")
        try:
            req = Requirement(item)
        except InvalidRequirement as exc:
            raise InvalidConfig(f"is not a pip requirement ({exc})", f"requirements[{i}]") from None
        if req.url:
            raise InvalidConfig("direct URLs are not allowed; name a package from the index", f"requirements[{i}]")
        out.append(str(req))
    return tuple(sorted(out))


def _init_config(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    m = _mapping(value, "init_config")
    out: dict[str, str] = {}
    for k, v in m.items():
        if isinstance(v, (dict, list)):
            raise InvalidConfig("values must be scalars (they reach fs-init as strings)", f"init_config.{k}")
        if isinstance(v, bool):
            v = "true" if v else "false"
        out[str(k)] = "" if v is None else str(v)
    return out


def _channel_runtime(value: Any, path: str) -> ChannelRuntime:
    return ChannelRuntime(**_int_section(value, path, _CHANNEL_KEYS))


def _processor_runtime(value: Any) -> ProcessorRuntime:
    keys = _int_section(value, "processor-runtime", _PROCESSOR_RUNTIME_KEYS)
    stall = keys.get("stall_timeout_ms")
    if stall is not None and 0 < stall < MIN_STALL_TIMEOUT_MS:
        raise InvalidConfig(f"must be 0 (no watchdog) or at least {MIN_STALL_TIMEOUT_MS} ms, not {stall}: below that "
                            "a commit point waiting for its outputs would count as a stall",
                            "processor-runtime.stall-timeout-ms")
    return ProcessorRuntime(**keys)


def _int_section(value: Any, path: str, keys: dict[str, str]) -> dict[str, int]:
    if value is None:
        return {}
    m = _mapping(value, path)
    _known_keys(m, tuple(keys), path)
    out = {}
    for key, attr in keys.items():
        if key in m:
            v = m[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise InvalidConfig(f"must be a non-negative integer, not {v!r}", _join(path, key))
            out[attr] = v
    return out


# --- primitives ---------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidConfig(f"must be a mapping, not {_kind(value)}", path)
    for k in value:
        if not isinstance(k, str):
            raise InvalidConfig(f"keys must be strings, found {k!r}", path)
    return value


def _list(m: dict[str, Any], key: str, path: str, *, required: bool) -> list[Any]:
    value = m.get(key)
    if value is None:
        if required:
            raise InvalidConfig("is required and must be a non-empty list", _join(path, key))
        return []
    if not isinstance(value, list) or (required and not value):
        raise InvalidConfig(f"must be a non-empty list, not {_kind(value)}", _join(path, key))
    return value


def _string(m: dict[str, Any], key: str, path: str) -> str:
    value = m.get(key)
    if value is None:
        raise InvalidConfig("is required", _join(path, key))
    if not isinstance(value, str) or not value.strip():
        raise InvalidConfig(f"must be a non-empty string, not {_kind(value)}", _join(path, key))
    return value


def _optional(m: dict[str, Any], key: str, path: str, type_: type[T], what: str, default: T) -> T:
    if key not in m or m[key] is None:
        return default
    value = m[key]
    if not isinstance(value, type_) or (type_ is int and isinstance(value, bool)):
        raise InvalidConfig(f"must be {what}, not {_kind(value)}", _join(path, key))
    return value


def _known_keys(m: dict[str, Any], known: tuple[str, ...], path: str, *, passthrough: bool = False) -> dict[str, str]:
    """Refuse unknown keys, suggesting the nearest known one.

    With ``passthrough``, dotted keys (``auto.offset.reset``) are Kafka client
    properties: they are returned as strings for the consumer or producer.
    """
    props: dict[str, str] = {}
    for key, value in m.items():
        if key in known:
            continue
        if passthrough and "." in key:
            if isinstance(value, (dict, list)) or value is None:
                raise InvalidConfig(f"a Kafka client property must be a scalar, not {_kind(value)}", _join(path, key))
            props[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
        if passthrough and not close:
            hint += " (dotted keys such as auto.offset.reset go to the Kafka client)"
        raise InvalidConfig(f"unknown key{hint}", _join(path, key))
    return props


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"a {type(value).__name__}"
