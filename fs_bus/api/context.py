"""What a driver reaches the world through: emitting, state and its configuration."""

from __future__ import annotations

from collections.abc import Mapping

from fs_bus.api.emitted import Emitted
from fs_bus.api.store import KVStore
from fs_bus.state.backend import MemoryBackend, StateBackend

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


class Context:
    """Handed to every hook of a :class:`~fs_bus.api.FSProcessorDriver`.

    The runtime makes one per instance, over the partition's state. A test of a
    driver can make its own: ``Context({"k": "v"})`` keeps state in memory, and
    :meth:`take_emitted` returns what the hooks emitted since the last call.
    """

    def __init__(self, config: Mapping[str, str] | None = None, state: StateBackend | None = None) -> None:
        self._config = {str(k): str(v) for k, v in (config or {}).items()}
        self._state: StateBackend = MemoryBackend() if state is None else state
        # One KVStore per name: its open iterators then see every write to that store.
        self._stores: dict[str, KVStore] = {}
        self._records: list[tuple[int, bytes]] = []
        self._watermarks: list[tuple[int, int]] = []

    def emit(self, data: bytes | bytearray | memoryview, channel: int = 0) -> None:
        """Send ``data`` to output ``channel`` (the index of the output in the config)."""
        if type(data) is not bytes:
            data = _as_bytes(data, "emit")
        if type(channel) is not int or not 0 <= channel <= _U32_MAX:
            raise ValueError(f"emit(): channel must be an int in [0, 2**32), got {channel!r}")
        self._records.append((channel, data))

    def emit_watermark(self, watermark: int, channel: int = 0) -> None:
        """Tell output ``channel`` that event time reached ``watermark`` (ms since the epoch)."""
        if type(watermark) is not int or not 0 <= watermark <= _U64_MAX:
            raise ValueError(f"emit_watermark(): watermark must be an int in [0, 2**64), got {watermark!r}")
        if type(channel) is not int or not 0 <= channel <= _U32_MAX:
            raise ValueError(f"emit_watermark(): channel must be an int in [0, 2**32), got {channel!r}")
        self._watermarks.append((channel, watermark))

    def getOrCreateKVStore(self, name: str) -> KVStore:  # noqa: N802 - the reference API's name
        """The store ``name`` of this partition's state (created empty on first use)."""
        if not isinstance(name, str):
            raise TypeError(f"getOrCreateKVStore(): the store name must be a str, not {type(name).__name__}")
        store = self._stores.get(name)
        if store is None:
            store = self._stores[name] = KVStore(self._state, name)
        return store

    def getConfig(self) -> dict[str, str]:  # noqa: N802 - the reference API's name
        """The function's ``init_config`` (a copy: changing it changes nothing)."""
        return dict(self._config)

    def take_emitted(self) -> Emitted:
        """What was emitted since the last call (the runtime calls it after every hook)."""
        out = Emitted(self._records, self._watermarks)
        self._records = []
        self._watermarks = []
        return out


def _as_bytes(data: object, where: str) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, bytes):  # a bytes subclass
        return bytes(data)
    if isinstance(data, str):
        raise TypeError(f"{where}() takes bytes, not str: encode it first, e.g. text.encode()")
    raise TypeError(f"{where}() takes bytes, not {type(data).__name__}")
