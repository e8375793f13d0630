"""The driver API under the reference project's name: ``from fs_api import FSProcessorDriver, Context``.

The same objects as :mod:`fs_bus.api` (one class, however it is imported, so the
runtime's ``issubclass`` check holds either way).
"""

from fs_bus.api import (
    ComplexKey,
    Context,
    FSProcessorDriver,
    KVIterator,
    KVStore,
    KvIterator,
    KvStore,
)

__all__ = ["ComplexKey", "Context", "FSProcessorDriver", "KVIterator", "KVStore", "KvIterator", "KvStore"]
