"""The key-value store a Python function gets from ``ctx.getOrCreateKVStore(name)``.

It is :class:`fs_bus.state.kv.KvStore`, the very class behind the WebAssembly
``functionstream:core/kv`` interface, so both kinds of function see the same
semantics (simple keys, complex keys, ``merge`` appending by default, half-open
bytewise ranges). Keys and values are ``bytes``; missing keys give None.
``scan_complex`` returns an iterator with ``has_next()``/``next()`` as in the guest
world that is also a Python iterator (``for user_key, value in store.scan_complex(...)``).
The reference API's capitalised names are aliases.
"""

from __future__ import annotations

from fs_bus.state.kv import KvIterator, KvStore

KVStore = KvStore
KVIterator = KvIterator
