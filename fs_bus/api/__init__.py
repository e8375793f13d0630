"""What the code of a ``type: python`` function imports (also as ``fs_api``).

    from fs_api import FSProcessorDriver, Context

    class Upper(FSProcessorDriver):
        def process(self, ctx: Context, source_id: int, data: bytes) -> None:
            ctx.emit(data.upper())

Importable without wasmtime or confluent-kafka: users import it in their own code
and tests. The key-value store is the one the WebAssembly ``kv`` interface is
served from, so both kinds of function share its semantics.
"""

from fs_bus.api.context import Context
from fs_bus.api.driver import FSProcessorDriver
from fs_bus.api.store import KVIterator, KVStore
from fs_bus.state.kv import ComplexKey, KvIterator, KvStore

__all__ = ["ComplexKey", "Context", "FSProcessorDriver", "KVIterator", "KVStore", "KvIterator", "KvStore"]
