"""The thin Python client: ``from fs_bus.client import FsClient``."""

from fs_bus.client.client import FsClient
from fs_bus.client.models import FunctionDescription, FunctionInfo, NodeInfo, ShowFunctionsResult, StartPosition
from fs_bus.errors import (
    FsBusError, FunctionAlreadyExists, FunctionFailed, FunctionNotFound, InvalidArtifact, InvalidConfig,
    KafkaUnavailable, NoLiveNodes, WaitTimeout,
)

__all__ = [
    "FsClient", "FunctionInfo", "NodeInfo", "ShowFunctionsResult", "FsBusError", "FunctionAlreadyExists",
    "FunctionFailed", "FunctionNotFound", "InvalidArtifact", "InvalidConfig", "KafkaUnavailable",
    "NoLiveNodes", "WaitTimeout",
]
