"""``fs_api`` inside the Python runtime component: the driver API over the world's imports.

The same names and semantics as :mod:`fs_bus.api` on the host (``FSProcessorDriver``,
``Context``, ``KVStore``, ``KVIterator``, ``ComplexKey``), but ``Context.emit`` goes
to the ``collector`` import and the stores are the ``kv`` import's ``store``
resources, i.e. the host's state of the partition. ``app.py`` registers this
module as ``fs_api`` in ``sys.modules``.

Pure stdlib plus the bindings componentize-py generates (``wit_world``): nothing
of fs-bus exists inside the sandbox.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from componentize_py_types import Err
from wit_world.imports import collector, kv

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

__all__ = ["ComplexKey", "Context", "FSProcessorDriver", "KVIterator", "KVStore", "KvIterator", "KvStore",
           "StateError"]


class StateError(Exception):
    """A kv call failed on the host (the world's ``error`` variant ``io-error`` or ``other``)."""


@dataclass(frozen=True, slots=True)
class ComplexKey:
    """The world's ``complex-key`` record."""

    key_group: bytes
    key: bytes
    namespace: bytes
    user_key: bytes


def _as_bytes(data: Any, where: str) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        raise TypeError(f"{where}() takes bytes, not str: encode it first, e.g. text.encode()")
    raise TypeError(f"{where}() takes bytes, not {type(data).__name__}")


def _ck(ck: Any, where: str) -> kv.ComplexKey:
    try:
        parts = (ck.key_group, ck.key, ck.namespace, ck.user_key)
    except AttributeError:
        raise TypeError(f"{where}() takes a ComplexKey, not {type(ck).__name__}") from None
    kg, key, ns, uk = (_as_bytes(p, where) for p in parts)
    return kv.ComplexKey(key_group=kg, key=key, namespace=ns, user_key=uk)


def _error(e: Err, store: str, op: str) -> StateError:
    value = e.value
    message = getattr(value, "value", None)
    case = type(value).__name__.removeprefix("Error_")
    return StateError(f"kv {op} on store {store!r} failed: {case}" + (f": {message}" if message else ""))


def _not_found(e: Err) -> bool:
    return isinstance(e.value, kv.Error_NotFound)


class KVIterator:
    """``has_next()``/``next()`` as in the world, and a Python iterator of
    ``(user_key, value)``. Its host handle is released when it is exhausted, on
    ``close()``, or at the end of a ``with`` block."""

    __slots__ = ("_it", "_store")

    def __init__(self, it: kv.Iterator, store: str) -> None:
        self._it: kv.Iterator | None = it
        self._store = store

    def has_next(self) -> bool:
        it = self._it
        if it is None:
            return False
        try:
            more = bool(it.has_next())
        except Err as e:
            raise _error(e, self._store, "iterator.has-next") from None
        if not more:
            self.close()
        return more

    def next(self) -> tuple[bytes, bytes] | None:
        it = self._it
        if it is None:
            return None
        try:
            item = it.next()
        except Err as e:
            if _not_found(e):
                item = None
            else:
                raise _error(e, self._store, "iterator.next") from None
        if item is None:
            self.close()
            return None
        user_key, value = item
        return bytes(user_key), bytes(value)

    def __iter__(self) -> KVIterator:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        item = self.next()
        if item is None:
            raise StopIteration
        return item

    def close(self) -> None:
        it, self._it = self._it, None
        if it is not None:
            it.__exit__(None, None, None)

    def __enter__(self) -> KVIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KVStore:
    """One named store of the partition's state, served by the host's kv interface.

    Keys and values are ``bytes``; missing keys give None (and deleting them does
    nothing). ``merge`` appends by default; ranges are half-open and bytewise.
    A failure on the host raises :class:`StateError`.
    """

    __slots__ = ("name", "_store")

    def __init__(self, name: str) -> None:
        self.name = name
        self._store: kv.Store | None = kv.Store(name)

    def _s(self) -> kv.Store:
        store = self._store
        if store is None:
            raise StateError(f"kv store {self.name!r} is closed")
        return store

    # --- simple keys -------------------------------------------------------------

    def put_state(self, key: bytes, value: bytes) -> None:
        try:
            self._s().put_state(_as_bytes(key, "put_state"), _as_bytes(value, "put_state"))
        except Err as e:
            raise _error(e, self.name, "put-state") from None

    def get_state(self, key: bytes) -> bytes | None:
        try:
            return self._s().get_state(_as_bytes(key, "get_state"))
        except Err as e:
            if _not_found(e):
                return None
            raise _error(e, self.name, "get-state") from None

    def delete_state(self, key: bytes) -> None:
        try:
            self._s().delete_state(_as_bytes(key, "delete_state"))
        except Err as e:
            if not _not_found(e):
                raise _error(e, self.name, "delete-state") from None

    def list_states(self, start_inclusive: bytes, end_exclusive: bytes) -> list[bytes]:
        try:
            return list(self._s().list_states(_as_bytes(start_inclusive, "list_states"),
                                              _as_bytes(end_exclusive, "list_states")))
        except Err as e:
            raise _error(e, self.name, "list-states") from None

    # --- complex keys ------------------------------------------------------------

    def put(self, ck: ComplexKey, value: bytes) -> None:
        try:
            self._s().put(_ck(ck, "put"), _as_bytes(value, "put"))
        except Err as e:
            raise _error(e, self.name, "put") from None

    def get(self, ck: ComplexKey) -> bytes | None:
        try:
            return self._s().get(_ck(ck, "get"))
        except Err as e:
            if _not_found(e):
                return None
            raise _error(e, self.name, "get") from None

    def delete(self, ck: ComplexKey) -> None:
        try:
            self._s().delete(_ck(ck, "delete"))
        except Err as e:
            if not _not_found(e):
                raise _error(e, self.name, "delete") from None

    def merge(self, ck: ComplexKey, value: bytes) -> None:
        try:
            self._s().merge(_ck(ck, "merge"), _as_bytes(value, "merge"))
        except Err as e:
            raise _error(e, self.name, "merge") from None

    def delete_prefix(self, ck: ComplexKey) -> None:
        try:
            self._s().delete_prefix(_ck(ck, "delete_prefix"))
        except Err as e:
            if not _not_found(e):
                raise _error(e, self.name, "delete-prefix") from None

    def list_complex(self, key_group: bytes, key: bytes, namespace: bytes,
                     start_inclusive: bytes, end_exclusive: bytes) -> list[bytes]:
        args = (_as_bytes(a, "list_complex") for a in (key_group, key, namespace, start_inclusive, end_exclusive))
        try:
            return list(self._s().list_complex(*args))
        except Err as e:
            raise _error(e, self.name, "list-complex") from None

    def scan_complex(self, key_group: bytes, key: bytes, namespace: bytes) -> KVIterator:
        """Every ``(user_key, value)`` under ``(key_group, key, namespace)``, in user-key order."""
        args = (_as_bytes(a, "scan_complex") for a in (key_group, key, namespace))
        try:
            return KVIterator(self._s().scan_complex(*args), self.name)
        except Err as e:
            raise _error(e, self.name, "scan-complex") from None

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.__exit__(None, None, None)


# The host API's other spellings.
KvStore = KVStore
KvIterator = KVIterator


class Context:
    """Handed to every hook of a :class:`FSProcessorDriver` (one per instance)."""

    def __init__(self, config: dict[str, str] | None = None) -> None:
        self._config = {str(k): str(v) for k, v in (config or {}).items()}
        self._stores: dict[str, KVStore] = {}

    def emit(self, data: bytes | bytearray | memoryview, channel: int = 0) -> None:
        """Send ``data`` to output ``channel`` (the index of the output in the config)."""
        if type(data) is not bytes:
            data = _as_bytes(data, "emit")
        if type(channel) is not int or not 0 <= channel <= _U32_MAX:
            raise ValueError(f"emit(): channel must be an int in [0, 2**32), got {channel!r}")
        collector.emit(channel, data)

    def emit_watermark(self, watermark: int, channel: int = 0) -> None:
        """Tell output ``channel`` that event time reached ``watermark`` (ms since the epoch)."""
        if type(watermark) is not int or not 0 <= watermark <= _U64_MAX:
            raise ValueError(f"emit_watermark(): watermark must be an int in [0, 2**64), got {watermark!r}")
        if type(channel) is not int or not 0 <= channel <= _U32_MAX:
            raise ValueError(f"emit_watermark(): channel must be an int in [0, 2**32), got {channel!r}")
        collector.emit_watermark(channel, watermark)

    def getOrCreateKVStore(self, name: str) -> KVStore:  # noqa: N802 - the reference API's name
        """The store ``name`` of this partition's state (created empty on first use)."""
        if not isinstance(name, str):
            raise TypeError(f"getOrCreateKVStore(): the store name must be a str, not {type(name).__name__}")
        store = self._stores.get(name)
        if store is None:
            store = self._stores[name] = KVStore(name)
        return store

    def getConfig(self) -> dict[str, str]:  # noqa: N802 - the reference API's name
        """The function's ``init_config`` (a copy: changing it changes nothing)."""
        return dict(self._config)

    def _close_stores(self) -> None:
        stores, self._stores = self._stores, {}
        for store in stores.values():
            store.close()


class FSProcessorDriver(ABC):
    """Subclass it, define ``process``, and name the subclass as the function's class."""

    def init(self, ctx: Context, config: dict[str, str]) -> None:
        """Called once before the first record, with the function's ``init_config``."""

    @abstractmethod
    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        """One record of input ``source_id``; emit results with ``ctx.emit(data, channel)``."""

    def process_watermark(self, ctx: Context, source_id: int, watermark: int) -> None:
        """The event time of input ``source_id`` advanced to ``watermark`` (ms since the epoch)."""

    def take_checkpoint(self, ctx: Context, checkpoint_id: int) -> None:
        """The input offsets are about to be committed; the state is committed right after."""

    def check_heartbeat(self, ctx: Context) -> bool:
        """False asks the runtime to replace this instance (from the last checkpoint)."""
        return True

    def close(self, ctx: Context) -> None:
        """Called once when the partition goes away; uncheckpointed state is dropped."""

    def custom(self, payload: bytes) -> bytes:
        """The function's own request/response entry point (``CALL FUNCTION``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define custom()")
