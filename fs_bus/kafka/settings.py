"""Kafka connection settings, resolved once and handed to every client fs-bus builds.

Security and any other librdkafka property come from one place: ``FS_BUS_KAFKA_*``
environment variables (``FS_BUS_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` becomes
``security.protocol``) or ``--kafka-config KEY=VALUE`` / ``kafka_config={...}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_NAMESPACE = "fs-bus"
ENV_BOOTSTRAP = "FS_BUS_BOOTSTRAP_SERVERS"
ENV_NAMESPACE = "FS_BUS_NAMESPACE"
ENV_PREFIX = "FS_BUS_KAFKA_"


def resolve_bootstrap(explicit: str | None = None) -> str:
    """``--bootstrap-servers``, else ``$FS_BUS_BOOTSTRAP_SERVERS``, else 127.0.0.1:9092."""
    return explicit or os.environ.get(ENV_BOOTSTRAP) or DEFAULT_BOOTSTRAP


def resolve_namespace(explicit: str | None = None) -> str:
    return explicit or os.environ.get(ENV_NAMESPACE) or DEFAULT_NAMESPACE


def properties_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {
        k[len(ENV_PREFIX):].lower().replace("_", "."): v
        for k, v in env.items()
        if k.startswith(ENV_PREFIX) and len(k) > len(ENV_PREFIX)
    }


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str
    properties: Mapping[str, str] = field(default_factory=dict)  # security etc., for every client

    @classmethod
    def resolve(cls, bootstrap_servers: str | None = None, properties: Mapping[str, str] | None = None) -> KafkaSettings:
        return cls(resolve_bootstrap(bootstrap_servers), {**properties_from_env(), **(properties or {})})

    def for_servers(self, bootstrap_servers: str) -> KafkaSettings:
        """The same security settings towards another cluster (a function's own inputs)."""
        return KafkaSettings(bootstrap_servers, self.properties)

    def base(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.properties}

    @property
    def principal(self) -> str:
        """Who Kafka sees, as ACLs name it (as far as the client can tell)."""
        protocol = str(self.properties.get("security.protocol", "PLAINTEXT")).upper()
        if protocol.startswith("SASL") and self.properties.get("sasl.username"):
            return f"User:{self.properties['sasl.username']}"
        if protocol == "SSL":
            return "the principal of this client's certificate"
        if protocol.startswith("SASL"):
            return "the SASL principal of these credentials"
        return "User:ANONYMOUS"
