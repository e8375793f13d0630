"""``fs_client.client.FsClient``: fs-bus's client with the reference client's constructor."""

from __future__ import annotations

from typing import Any

from fs_bus.client.client import FsClient as _FsClient
from fs_bus.client.models import FunctionInfo, ShowFunctionsResult

__all__ = ["FsClient", "FunctionInfo", "ShowFunctionsResult"]


class FsClient(_FsClient):
    """``FsClient(host="127.0.0.1", port=9092)``: host and port of a Kafka bootstrap server.

    ``bootstrap_servers=`` and the other keyword arguments of ``fs_bus.client.FsClient``
    work too; the reference client's gRPC-only options (``secure``, ``channel``,
    ``options``) are accepted and ignored.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9092, secure: bool = False, channel: Any = None,
                 options: Any = None, default_timeout: float = _FsClient.DEFAULT_TIMEOUT, *,
                 bootstrap_servers: str | None = None, **kwargs: Any):
        kwargs.setdefault("timeout", default_timeout)
        super().__init__(bootstrap_servers or f"{host}:{port}", **kwargs)
