"""Function configuration: the model and its validation (pure)."""

from fs_bus.config.model import (
    ChannelRuntime, FunctionConfig, InputGroup, KafkaInput, KafkaOutput, ProcessorRuntime, TaskType,
)
from fs_bus.config.validate import parse_config, validate_config

__all__ = [
    "ChannelRuntime", "FunctionConfig", "InputGroup", "KafkaInput", "KafkaOutput", "ProcessorRuntime",
    "TaskType", "parse_config", "validate_config",
]
