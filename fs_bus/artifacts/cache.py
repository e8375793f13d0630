"""The node's disk cache of artifacts, by content hash, verified on every read.

A file whose bytes no longer hash to its name (a torn write, a disk fault, a
tamperer) is treated as absent and fetched again from Kafka.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from fs_bus.errors import ArtifactError

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ArtifactCache:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        # The hash comes from a control record anyone may write: it must not name a path.
        if not _SHA256.fullmatch(sha256):
            raise ArtifactError(f"artifact hash {sha256[:80]!r} is not a sha256 (64 lowercase hex digits)")
        return self.directory / f"{sha256}.bin"

    def get(self, sha256: str) -> bytes | None:
        p = self.path(sha256)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            p.unlink(missing_ok=True)
            return None
        return data

    def put(self, sha256: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path(sha256))
