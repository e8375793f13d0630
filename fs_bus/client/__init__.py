"""The thin Python client: ``from fs_bus.client import FsClient``."""

from fs_bus.client.client import FsClient
from fs_bus.client.models import (
    FunctionDescription, FunctionInfo, NodeInfo, RevisionInfo, ShowFunctionsResult, StartPosition,
)
from fs_bus.control.shadow import ShadowDiff
from fs_bus.errors import (
    FsBusError, FunctionAlreadyExists, FunctionFailed, FunctionNotFound, InvalidArtifact, InvalidConfig,
    KafkaUnavailable, NoLiveNodes, RolledBack, UpgradeRefused, WaitTimeout,
)

__all__ = [
    "FsClient", "FunctionInfo", "NodeInfo", "ShowFunctionsResult", "FsBusError", "FunctionAlreadyExists",
    "FunctionFailed", "FunctionNotFound", "InvalidArtifact", "InvalidConfig", "KafkaUnavailable",
    "NoLiveNodes", "WaitTimeout", "RevisionInfo", "ShadowDiff", "RolledBack", "UpgradeRefused",
]
