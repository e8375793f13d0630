"""Compatibility with the reference project's Python client: ``from fs_client import FsClient``.

Scripts written for it run unchanged but for the address: ``FsClient(host, port)``
names the Kafka bootstrap server, since fs-bus is controlled through Kafka.
"""

from fs_client.client import FsClient
from fs_client.exceptions import ClientError, ServerError
from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder, WasmTaskConfig

__all__ = ["FsClient", "ClientError", "ServerError", "KafkaInput", "KafkaOutput", "WasmTaskBuilder",
           "WasmTaskConfig"]
