"""Artifact chunks as a node reads them, and Python bundles as it unpacks them, refuse bad
bytes with an ArtifactError / InvalidArtifact and nothing else."""

from __future__ import annotations

import hashlib
import io
import random
import zipfile

from confluent_kafka import KafkaError
from hypothesis import HealthCheck, given, settings, strategies as st

from fs_bus.artifacts import store
from fs_bus.artifacts.python_bundle import PythonBundle, pack, unpack
from fs_bus.control.records import ArtifactKind, ArtifactManifest, ChunkRef
from fs_bus.errors import ArtifactError, InvalidArtifact
from tests.fuzz.cases import Mutator, feed

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
TOPIC = "fs-bus.artifacts"


class _Eof:
    def code(self) -> int:
        return KafkaError._PARTITION_EOF


class _Msg:
    def __init__(self, partition: int, offset: int, key: bytes | None, value: bytes | None, error=None):
        self._p, self._o, self._k, self._v, self._e = partition, offset, key, value, error

    def error(self):
        return self._e

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self):
        return self._k

    def value(self):
        return self._v


class LogConsumer:
    """Stands in for the artifact consumer: serves a fixed log per partition, then EOF."""

    def __init__(self, log: dict[int, list[tuple[int, bytes | None, bytes | None]]]):
        self.log = log
        self.pending: list[_Msg] = []

    def assign(self, tps) -> None:
        tp = tps[0]
        self.pending = [_Msg(tp.partition, o, k, v) for o, k, v in self.log.get(tp.partition, []) if o >= tp.offset]
        self.pending.append(_Msg(tp.partition, -1, None, None, _Eof()))

    def consume(self, n: int, timeout: float) -> list[_Msg]:
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def get_watermark_offsets(self, tp, timeout: float = 0, cached: bool = False) -> tuple[int, int]:
        """The partition's first and next offsets, as the broker would answer."""
        offsets = [o for o, _, _ in self.log.get(tp.partition, [])]
        return (min(offsets), max(offsets) + 1) if offsets else (0, 0)


def _artifact(rng: random.Random) -> tuple[ArtifactManifest, dict]:
    """A real artifact's chunks in a log, as upload() leaves them (small chunks, to have several)."""
    data = rng.randbytes(rng.randint(0, 300))
    sha = hashlib.sha256(data).hexdigest()
    size = rng.randint(1, 64)
    chunks = store.split(data, size)
    offset = rng.randint(0, 5)
    log = {0: [(offset + i, store.chunk_key(sha, i), c) for i, c in enumerate(chunks)]}
    refs = tuple(ChunkRef(0, offset + i, len(c)) for i, c in enumerate(chunks))
    return ArtifactManifest(sha, len(data), ArtifactKind.WASM_COMPONENT, TOPIC, refs), log


def _damaged(rng: random.Random, manifest: ArtifactManifest, log: dict) -> tuple[ArtifactManifest, dict]:
    entries = list(log[0])
    refs = list(manifest.chunks)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        if op == 0 and entries:  # a chunk's bytes altered (same length, or not)
            i = rng.randrange(len(entries))
            o, k, v = entries[i]
            v = bytearray(v or b"")
            if v and rng.random() < 0.5:
                v[rng.randrange(len(v))] ^= 0xFF
            else:
                v += b"x"
            entries[i] = (o, k, bytes(v))
        elif op == 1 and entries:  # a chunk compacted away
            del entries[rng.randrange(len(entries))]
        elif op == 2 and entries:  # a tombstone or a foreign key at a chunk's offset
            i = rng.randrange(len(entries))
            o, k, v = entries[i]
            entries[i] = (o, rng.choice([k, b"other/0", None]), rng.choice([None, v, b""]))
        elif op == 3 and refs:  # the manifest points elsewhere
            i = rng.randrange(len(refs))
            r = refs[i]
            refs[i] = ChunkRef(rng.choice([r.partition, 1, -1]), r.offset + rng.randint(-3, 3), r.size)
        elif op == 4 and refs:  # the manifest's sizes lie
            i = rng.randrange(len(refs))
            refs[i] = ChunkRef(refs[i].partition, refs[i].offset, rng.choice([0, -1, 2**31 - 1, refs[i].size + 1]))
        elif op == 5:  # chunks reordered or dropped from the manifest
            rng.shuffle(refs)
            if refs and rng.random() < 0.3:
                refs.pop()
        elif op == 6:  # the manifest's whole-artifact fields lie
            manifest = ArtifactManifest(rng.choice([manifest.sha256, "../../etc/passwd", "0" * 64, ""]),
                                        rng.choice([manifest.size, manifest.size + 1, -1, 2**62]),
                                        manifest.kind, TOPIC, manifest.chunks)
    return ArtifactManifest(manifest.sha256, manifest.size, manifest.kind, TOPIC, tuple(refs)), {0: entries}


@FUZZ
@given(seed=st.integers(0, 2**64))
def test_damaged_chunks_and_lying_manifests_are_refused_by_fetch(seed):
    rng = random.Random(seed)
    for _ in range(50):
        manifest, log = _artifact(rng)
        bad_manifest, bad_log = _damaged(rng, manifest, log)

        def fetch(_: bytes) -> None:
            data = store.fetch(LogConsumer(bad_log), bad_manifest, timeout=5)
            # Whatever fetch returns is exactly what the manifest promised.
            assert hashlib.sha256(data).hexdigest() == bad_manifest.sha256 and len(data) == bad_manifest.size
        feed("artifact-chunks", fetch, [b""], (ArtifactError,))


_MODULES = (("pkg", b"VERSION = 1\n"), ("pkg.util", b"def f(x):\n    return x\n"),
            ("app", b"from fs_api import FSProcessorDriver\nclass App(FSProcessorDriver):\n    pass\n"))
BUNDLES = [pack(PythonBundle("App", _MODULES), frozenset({"pkg"})),
           pack(PythonBundle("App", _MODULES[2:])),
           pack(PythonBundle("B", (("b", b"x" * 5000),)))]


def _recompressed(bundle: bytes, method: int) -> bytes:
    """The same bundle with another zip compression method: each has its own decoder to break."""
    source, buf = zipfile.ZipFile(io.BytesIO(bundle)), io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for info in source.infolist():
            z.writestr(info.filename, source.read(info))
    return buf.getvalue()


BUNDLES += [_recompressed(BUNDLES[0], m) for m in (zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)]


@FUZZ
@given(seed=st.integers(0, 2**64))
def test_mutated_python_bundles_are_refused_cleanly(seed):
    feed("python-bundle", unpack, Mutator(seed, BUNDLES).batch(150), (InvalidArtifact,))


@FUZZ
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=30))
def test_random_bytes_are_not_python_bundles(values):
    feed("python-bundle", unpack, values, (InvalidArtifact,))
