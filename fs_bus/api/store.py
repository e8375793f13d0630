"""The key-value store a Python function gets from ``ctx.getOrCreateKVStore(name)``.

It is :class:`fs_bus.state.kv.KvStore`, the very class behind the WebAssembly
``functionstream:core/kv`` interface, so both kinds of function see the same
semantics (simple keys, complex keys, ``merge`` appending by default, half-open
bytewise ranges). Keys and values are ``bytes``; missing keys give None.

The only addition: :meth:`KVStore.scan_complex` returns a :class:`KVIterator`,
which is also a Python iterator (``for user_key, value in store.scan_complex(...)``).
"""

from __future__ import annotations

from fs_bus.state.backend import prefix_end
from fs_bus.state.kv import ComplexKey, KvIterator, KvStore, encode_complex


class KVIterator(KvIterator):
    """``has_next()``/``next()`` as in the guest world, and a Python iterator of
    ``(user_key, value)``. Reads a page at a time; sees the store's writes made
    while it is open (see :class:`~fs_bus.state.kv.KvIterator`)."""

    def __iter__(self) -> KVIterator:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        item = self.next()
        if item is None:
            raise StopIteration
        return item


class KVStore(KvStore):
    __doc__ = KvStore.__doc__

    def scan_complex(self, key_group: bytes, key: bytes, namespace: bytes) -> KVIterator:
        """Every ``(user_key, value)`` under ``(key_group, key, namespace)``, in
        user-key order, read a page at a time."""
        prefix = encode_complex(ComplexKey(key_group, key, namespace, b""))
        return KVIterator(self, prefix, prefix_end(prefix))
