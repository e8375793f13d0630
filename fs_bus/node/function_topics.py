"""A function's topics, made to exist before its instance joins the consumer group.

Inputs, the dead-letter topic and the changelogs live on the inputs' cluster,
outputs on theirs. A changelog has one partition per partition of its input
topic, so it is created (or grown) after the inputs are known to exist.
"""

from __future__ import annotations

from collections.abc import Mapping

from fs_bus.config.model import FunctionConfig
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import ensure_changelog_topics, ensure_data_topics, partition_counts
from fs_bus.state.changelog import DELETE_RETENTION_MS


def ensure_function_topics(settings: KafkaSettings, config: FunctionConfig, changelogs: Mapping[str, str]) -> list[str]:
    """Create whichever of the function's topics are missing; return those created.
    ``changelogs`` maps an input topic to its changelog topic (empty: no state)."""
    in_settings = settings.for_servers(config.inputs[0].bootstrap_servers)
    topics = sorted({i.topic for i in config.inputs})
    created = ensure_data_topics(clients.shared_admin(in_settings),
                                 topics + ([config.dead_letter_topic] if config.dead_letter_topic else []))
    created += ensure_data_topics(
        clients.shared_admin(settings.for_servers(config.outputs[0].bootstrap_servers)),
        sorted({o.topic for o in config.outputs}))
    if changelogs:
        admin = clients.shared_admin(in_settings)
        counts = partition_counts(admin, topics)
        created += ensure_changelog_topics(
            admin, {changelogs[t]: n for t, n in counts.items() if t in changelogs}, DELETE_RETENTION_MS)
    return created
