"""The reference client's config builder, producing YAML that fs-bus validates.

``WasmTaskBuilder().set_name("f").set_type("processor").add_input_group([...])
.add_output(...).build().to_yaml()``. As in the reference, the type defaults to
``python``.
"""

from __future__ import annotations

from typing import Any

import yaml


class KafkaInput:
    def __init__(self, bootstrap_servers: str, topic: str, group_id: str, partition: int | None = None):
        # Extra consumer properties (auto.offset.reset, ...) may be added to .data.
        self.data: dict[str, Any] = {
            "input-type": "kafka", "bootstrap_servers": bootstrap_servers, "topic": topic, "group_id": group_id,
        }
        if partition is not None:
            self.data["partition"] = partition


class KafkaOutput:
    def __init__(self, bootstrap_servers: str, topic: str, partition: int | None = None):
        self.data: dict[str, Any] = {"output-type": "kafka", "bootstrap_servers": bootstrap_servers, "topic": topic}
        if partition is not None:
            self.data["partition"] = partition


class WasmTaskConfig:
    def __init__(self, task_name: str, task_type: str, input_groups: list[dict], use_builtin: bool,
                 enable_checkpoint: bool, checkpoint_interval: int, init_config: dict[str, str],
                 outputs: list[dict]):
        self.task_name = task_name
        self.task_type = task_type
        self.input_groups = input_groups
        self.use_builtin_event_serialization = use_builtin
        self.enable_checkpoint = enable_checkpoint
        self.checkpoint_interval_seconds = checkpoint_interval
        self.init_config = init_config
        self.outputs = outputs

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.task_name,
            "type": self.task_type,
            "use_builtin_event_serialization": self.use_builtin_event_serialization,
            "enable_checkpoint": self.enable_checkpoint,
            "checkpoint_interval_seconds": self.checkpoint_interval_seconds,
            "init_config": self.init_config,
            "input-groups": self.input_groups,
            "outputs": self.outputs,
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, indent=2)

    @classmethod
    def from_yaml(cls, text: str) -> WasmTaskConfig:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError("config YAML must be a mapping")
        return cls(
            task_name=data.get("name") or "default-processor",
            task_type=data.get("type") or "python",
            input_groups=data.get("input-groups") or [],
            use_builtin=bool(data.get("use_builtin_event_serialization", False)),
            enable_checkpoint=bool(data.get("enable_checkpoint", False)),
            checkpoint_interval=max(1, int(data.get("checkpoint_interval_seconds", 1))),
            init_config=data.get("init_config") or {},
            outputs=data.get("outputs") or [],
        )


class WasmTaskBuilder:
    def __init__(self) -> None:
        self._name: str | None = None
        self._type = "python"
        self._use_builtin = False
        self._enable_checkpoint = False
        self._checkpoint_interval = 1
        self._init_config: dict[str, str] = {}
        self._input_groups: list[dict] = []
        self._outputs: list[dict] = []

    def set_name(self, name: str) -> WasmTaskBuilder:
        self._name = name
        return self

    def set_type(self, task_type: str) -> WasmTaskBuilder:
        self._type = task_type
        return self

    def set_builtin_serialization(self, enabled: bool) -> WasmTaskBuilder:
        self._use_builtin = enabled
        return self

    def configure_checkpoint(self, enabled: bool, interval: int = 1) -> WasmTaskBuilder:
        self._enable_checkpoint = enabled
        self._checkpoint_interval = max(1, interval)
        return self

    def add_init_config(self, key: str, value: str) -> WasmTaskBuilder:
        self._init_config[key] = value
        return self

    def add_input_group(self, inputs: list[KafkaInput]) -> WasmTaskBuilder:
        self._input_groups.append({"inputs": [dict(i.data) for i in inputs]})
        return self

    def add_output(self, output: KafkaOutput) -> WasmTaskBuilder:
        self._outputs.append(dict(output.data))
        return self

    def build(self) -> WasmTaskConfig:
        name = self._name if self._name and self._name.strip() else "default-processor"
        return WasmTaskConfig(name, self._type, self._input_groups, self._use_builtin, self._enable_checkpoint,
                              self._checkpoint_interval, self._init_config, self._outputs)
