"""Artifacts in Kafka: content-addressed chunks on ``<ns>.artifacts``.

An artifact is split into chunks below the broker's message limit, each keyed
``<sha256>/<index>``. The manifest in the function record holds every chunk's
partition and offset, so a node seeks straight to them instead of scanning, and
the sha256 is checked before anything runs.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable

from fs_bus.kafka.types import Consumer, KafkaError, Producer, TopicPartition

from fs_bus.control.records import ArtifactKind, ArtifactManifest, ChunkRef
from fs_bus.errors import ArtifactError, KafkaUnavailable
from fs_bus.kafka.clients import denied
from fs_bus.kafka.topics import ARTIFACT_CHUNK_SIZE

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


def chunk_key(sha256: str, index: int) -> bytes:
    return f"{sha256}/{index}".encode()


def split(data: bytes, chunk_size: int = ARTIFACT_CHUNK_SIZE) -> list[bytes]:
    if not data:
        return [b""]
    return [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]


def upload(producer: Producer, topic: str, data: bytes, kind: ArtifactKind,
           progress: Progress | None = None, timeout: float = 60.0) -> ArtifactManifest:
    """Write the chunks and return their manifest once every chunk is acknowledged."""
    sha = hashlib.sha256(data).hexdigest()
    chunks = split(data)
    refs: list[ChunkRef | None] = [None] * len(chunks)
    errors: list[str] = []
    refusals: list[KafkaError] = []
    done = 0

    def on_delivery(index: int, size: int):
        def cb(err: KafkaError | None, msg) -> None:
            nonlocal done
            if err is not None:
                errors.append(f"chunk {index}: {err.str()}")
                refusals.append(err)
                return
            refs[index] = ChunkRef(msg.partition(), msg.offset(), size)
            done += size
            if progress:
                progress(done, len(data))
        return cb

    for i, chunk in enumerate(chunks):
        producer.produce(topic, key=chunk_key(sha, i), value=chunk, on_delivery=on_delivery(i, len(chunk)))
        producer.poll(0)
    remaining = producer.flush(timeout)
    refused = denied(refusals[0] if refusals else None, "WRITE", f"topic {topic!r}", getattr(producer, "principal", ""))
    if refused is not None:
        raise refused
    if errors or remaining or any(r is None for r in refs):
        detail = "; ".join(errors) or f"{remaining} chunks unacknowledged after {timeout:.0f} s"
        raise KafkaUnavailable(f"uploading artifact {sha[:12]} to {topic!r} failed: {detail}")
    return ArtifactManifest(sha256=sha, size=len(data), kind=kind, topic=topic, chunks=tuple(r for r in refs if r))


# What a node agrees to download for one artifact (a 20-30 MB component is typical).
MAX_ARTIFACT_SIZE = 512 * 1024 * 1024


def check_manifest(manifest: ArtifactManifest) -> None:
    """Refuse a manifest that cannot describe an artifact fs-bus wrote, before reading anything.

    Anyone who can write the control topic can write a manifest, so its numbers
    bound what the node allocates and where it seeks.
    """
    def bad(why: str) -> ArtifactError:
        return ArtifactError(f"artifact {manifest.sha256[:12]!r}: manifest {why}; recreate the function")

    if len(manifest.sha256) != 64 or any(c not in "0123456789abcdef" for c in manifest.sha256):
        raise bad("has no sha256 (64 hex digits)")
    if not 0 <= manifest.size <= MAX_ARTIFACT_SIZE:
        raise bad(f"says {manifest.size} bytes, outside 0..{MAX_ARTIFACT_SIZE}")
    if not manifest.chunks:
        raise bad("lists no chunks")
    for i, c in enumerate(manifest.chunks):
        if c.partition < 0 or c.offset < 0 or not 0 <= c.size <= 2 * ARTIFACT_CHUNK_SIZE:
            raise bad(f"chunk {i} has partition {c.partition}, offset {c.offset}, size {c.size}")
    total = sum(c.size for c in manifest.chunks)
    if total != manifest.size:
        raise bad(f"chunks add up to {total} bytes, not the {manifest.size} it says")


def fetch(consumer: Consumer, manifest: ArtifactManifest, timeout: float = 60.0,
          progress: Progress | None = None) -> bytes:
    """Read the chunks at their recorded offsets and verify the whole artifact's sha256.

    Chunks are usually contiguous, so one assignment at the first offset reads
    them all in a single pass; a gap just means seeking on.
    """
    check_manifest(manifest)
    parts: list[bytes | None] = [None] * len(manifest.chunks)
    wanted = {(c.partition, c.offset): i for i, c in enumerate(manifest.chunks)}
    rechecked: set[int] = set()
    deadline = time.monotonic() + timeout
    for i, ref in enumerate(manifest.chunks):
        if parts[i] is not None:
            continue
        consumer.assign([TopicPartition(manifest.topic, ref.partition, ref.offset)])
        while parts[i] is None:
            if time.monotonic() > deadline:
                raise ArtifactError(
                    f"artifact {manifest.sha256[:12]}: chunk {i} at {manifest.topic}[{ref.partition}]@{ref.offset} "
                    f"not readable within {timeout:.0f} s (was it deleted?)")
            for msg in consumer.consume(64, 0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        # Once, the broker is asked whether the chunk is there after all (an
                        # end-of-partition event can race the chunk's write); twice means gone.
                        if i in rechecked or not _present(consumer, manifest.topic, ref):
                            raise _missing(manifest, i, ref)
                        rechecked.add(i)
                    continue
                index = wanted.get((msg.partition(), msg.offset()))
                if index is None:
                    if msg.offset() > ref.offset and parts[i] is None:
                        raise _missing(manifest, i, ref)  # compacted away or tombstoned
                    continue
                if msg.key() != chunk_key(manifest.sha256, index) or msg.value() is None:
                    raise ArtifactError(
                        f"artifact {manifest.sha256[:12]}: {manifest.topic}[{msg.partition()}]@{msg.offset()} "
                        f"holds {msg.key()!r}, not chunk {index} (manifest points at the wrong offsets)")
                if len(msg.value()) != manifest.chunks[index].size:
                    raise ArtifactError(
                        f"artifact {manifest.sha256[:12]}: chunk {index} at {manifest.topic}[{msg.partition()}]"
                        f"@{msg.offset()} holds {len(msg.value())} bytes, the manifest says "
                        f"{manifest.chunks[index].size}; refusing to run it")
                parts[index] = msg.value()
                if progress:
                    progress(sum(len(p) for p in parts if p is not None), manifest.size)
    data = b"".join(p or b"" for p in parts)
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.sha256 or len(data) != manifest.size:
        raise ArtifactError(
            f"artifact hash mismatch: manifest says sha256 {manifest.sha256} ({manifest.size} bytes), "
            f"chunks give {digest} ({len(data)} bytes); refusing to run it")
    return data


def _present(consumer: Consumer, topic: str, ref: ChunkRef) -> bool:
    """Whether the chunk's offset is within its partition, asking the broker; if so, read
    from it again."""
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, ref.partition), timeout=10, cached=False)
    if not low <= ref.offset < high:
        return False
    consumer.assign([TopicPartition(topic, ref.partition, ref.offset)])  # read it again from there
    return True


def _missing(manifest: ArtifactManifest, index: int, ref: ChunkRef) -> ArtifactError:
    return ArtifactError(
        f"artifact {manifest.sha256[:12]}: chunk {index} is missing at "
        f"{manifest.topic}[{ref.partition}]@{ref.offset}; recreate the function to upload it again")


def tombstone(producer: Producer, manifest: ArtifactManifest) -> None:
    """Let the cleaner reclaim an artifact no function references any more."""
    for i in range(len(manifest.chunks)):
        producer.produce(manifest.topic, key=chunk_key(manifest.sha256, i), value=None)
    producer.flush(30)
