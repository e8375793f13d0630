"""Shadow revisions: a new revision run beside the live one on the same input, and the diff.

A shadow of ``f`` is the function ``f.shadow``: the new code and config, with its own
consumer group ``<group>.shadow.<rev>``, its own state (changelogs seeded from the
live ones) and outputs ``<output>.shadow.<rev>`` instead of the real ones. While it
runs, the live function's outputs and the shadow's carry the header
``fs-bus.source`` (``topic/partition/offset`` of the input record), so the diff
pairs what the two revisions answered to the same input record. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import yaml

from fs_bus.api.emitted import Emitted
from fs_bus.errors import InvalidConfig

SOURCE_HEADER = "fs-bus.source"
SUFFIX = ".shadow"
EXAMPLES = 5

Source = tuple[str, int, int]  # input topic, partition, offset
Answer = tuple[tuple[int, bytes | None, bytes | None], ...]  # (output index, key, value) per record emitted


def shadow_name(name: str) -> str:
    return name + SUFFIX


def shadow_topic(topic: str, code_revision: int) -> str:
    return f"{topic}{SUFFIX}.{code_revision}"


def shadow_group(group: str, code_revision: int) -> str:
    return f"{group}{SUFFIX}.{code_revision}"


def shadow_config(config_yaml: str, name: str, code_revision: int) -> str:
    """The shadow's config: the new config renamed, in its own group, writing to shadow topics."""
    doc = yaml.safe_load(config_yaml)
    if not isinstance(doc, dict):
        raise InvalidConfig("a config is a YAML mapping")
    doc["name"] = shadow_name(name)
    for group in doc.get("input-groups") or []:
        for i in group.get("inputs") or []:
            if "group_id" in i:
                i["group_id"] = shadow_group(str(i["group_id"]), code_revision)
    for out in doc.get("outputs") or []:
        if "topic" in out:
            out["topic"] = shadow_topic(str(out["topic"]), code_revision)
    if "errors.deadletterqueue.topic.name" in doc:
        doc["errors.deadletterqueue.topic.name"] = shadow_topic(str(doc["errors.deadletterqueue.topic.name"]),
                                                                code_revision)
    return yaml.safe_dump(doc, sort_keys=False)


def source_header(topic: str, partition: int, offset: int) -> bytes:
    return f"{topic}/{partition}/{offset}".encode()


def parse_source(value: bytes | str | None) -> Source | None:
    """``topic/partition/offset`` back into its parts; None for anything else."""
    if value is None:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    topic, _, rest = text.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    if not topic or not partition.isdigit() or not rest.isdigit():
        return None
    return topic, int(partition), int(rest)


def with_source(emitted: Emitted | None, topic: str, partition: int, offset: int, key: bytes | None) -> Emitted | None:
    """``emitted`` with every record carrying the ``fs-bus.source`` header of its input record.
    A ``(target, data)`` record keeps the input's key, as the outputs would give it."""
    if emitted is None or not emitted.records:
        return emitted
    header = (SOURCE_HEADER, source_header(topic, partition, offset))
    records = []
    for rec in emitted.records:
        if len(rec) == 2:
            records.append((rec[0], rec[1], key, [header]))
        else:
            records.append((rec[0], rec[1], rec[2], [*(rec[3] or []), header]))
    return Emitted(records, emitted.watermarks)


def with_sources(results: list[Emitted | None], msgs: list, topic: str, partition: int) -> list[Emitted | None]:
    """A batch's results, each with the ``fs-bus.source`` of its input record (``msgs``, in order)."""
    return [with_source(e, topic, partition, m.offset(), m.key()) for m, e in zip(msgs, results)]


def parse_start(entries: Iterable[str]) -> dict[tuple[str, int], int]:
    """``shadow_from`` (``topic:partition:offset``) as a mapping."""
    start = {}
    for e in entries:
        topic, _, rest = e.rpartition(":")
        topic, _, partition = topic.rpartition(":")
        start[(topic, int(partition))] = int(rest)
    return start


@dataclass(frozen=True)
class ShadowDiff:
    """How the live and the shadow revision answered the same input records."""

    name: str
    live_revision: int
    shadow_revision: int
    identical: int = 0
    different: int = 0
    only_live: int = 0
    only_shadow: int = 0
    examples: list[dict] = field(default_factory=list)  # source, old, new (the first few differences)


def diff(name: str, live_revision: int, shadow_revision: int, live: Mapping[Source, Answer],
         shadow: Mapping[Source, Answer], start: Mapping[tuple[str, int], int] | None = None,
         examples: int = EXAMPLES) -> ShadowDiff:
    """Pair answers by input record: identical, different (with examples), or answered by one side only.
    Input records before ``start`` (per partition) came before the shadow and are not compared."""
    def counted(source: Source) -> bool:
        return start is None or source[2] >= start.get((source[0], source[1]), 0)

    counts = {"identical": 0, "different": 0, "only_live": 0, "only_shadow": 0}
    shown: list[dict] = []
    for source in sorted(s for s in set(live) | set(shadow) if counted(s)):
        old, new = live.get(source), shadow.get(source)
        if old is None or new is None:
            counts["only_shadow" if old is None else "only_live"] += 1
            verdict = "only_shadow" if old is None else "only_live"
        elif old == new:
            counts["identical"] += 1
            continue
        else:
            counts["different"] += 1
            verdict = "different"
        if len(shown) < examples and verdict == "different":
            shown.append({"source": f"{source[0]}/{source[1]}/{source[2]}", "offset": source[2],
                          "old": [_text(v) for _, _, v in old], "new": [_text(v) for _, _, v in new]})
    return ShadowDiff(name, live_revision, shadow_revision, examples=shown, **counts)


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "backslashreplace")
