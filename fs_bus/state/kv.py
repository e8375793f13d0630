"""The ``functionstream:core/kv`` semantics over any :class:`StateBackend`.

Pure apart from the backend (no wasmtime here): the WebAssembly host binds these
methods to the guest's ``store`` and ``iterator`` resources, and the Python API
reuses the same class.

Key layout inside one backend store (so ordering and prefixes do the work):

- a simple key ``k`` (``put-state`` & co.) is ``0x00 k``;
- a complex key is ``0x01 len(key_group) key_group len(key) key len(namespace)
  namespace user_key``, each ``len`` 4 bytes big-endian, ``user_key`` raw.

The two key spaces never mix. The length prefixes make the triple
``(key_group, key, namespace)`` an exact prefix (``b"ab" + b"c"`` and ``b"a" +
b"bc"`` do not collide), and a raw ``user_key`` at the end keeps user keys
ordered bytewise under that prefix: ``list_complex`` and ``scan_complex`` are one
range each, and ``delete_prefix`` is the range ``[prefix, prefix_end(prefix))``.

Ranges are half-open, ``[start_inclusive, end_exclusive)``, bytewise; an
``end_exclusive`` that is not greater than ``start_inclusive`` (including the empty
bytes) gives an empty range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from fs_bus.state.backend import SCAN_PAGE, StateBackend, key_successor, prefix_end

SIMPLE = b"\x00"
COMPLEX = b"\x01"

MergeOperator = Callable[[bytes | None, bytes], bytes]
"""``(current value or None, operand) -> new value``."""


def append(current: bytes | None, operand: bytes) -> bytes:
    """The default merge: the operand's bytes appended to the current value
    (a missing key merges to the operand itself)."""
    return operand if current is None else current + operand


@dataclass(frozen=True, slots=True)
class ComplexKey:
    """The world's ``complex-key`` record."""

    key_group: bytes
    key: bytes
    namespace: bytes
    user_key: bytes


def _prefix(key_group: bytes, key: bytes, namespace: bytes) -> bytes:
    return b"".join(
        (
            COMPLEX,
            len(key_group).to_bytes(4, "big"),
            key_group,
            len(key).to_bytes(4, "big"),
            key,
            len(namespace).to_bytes(4, "big"),
            namespace,
        )
    )


def encode_complex(ck: ComplexKey) -> bytes:
    """The backend key of ``ck`` (see the module docstring)."""
    return _prefix(ck.key_group, ck.key, ck.namespace) + ck.user_key


def encode_key(key: bytes | ComplexKey) -> bytes:
    """The backend key of a simple key (bytes) or a complex one."""
    return encode_complex(key) if isinstance(key, ComplexKey) else SIMPLE + key


def decode_key(raw: bytes) -> bytes | ComplexKey:
    """The key a guest wrote, from its backend key: the simple key's bytes, or a
    ``ComplexKey``. Raises ``ValueError`` for bytes no store writes."""
    if raw[:1] == SIMPLE:
        return raw[1:]
    if raw[:1] != COMPLEX:
        raise ValueError(f"backend key {raw[:16]!r} is neither simple (0x00) nor complex (0x01)")
    parts, pos = [], 1
    for _ in range(3):
        if pos + 4 > len(raw):
            raise ValueError(f"complex backend key {raw[:16]!r} is truncated")
        n = int.from_bytes(raw[pos:pos + 4], "big")
        if pos + 4 + n > len(raw):
            raise ValueError(f"complex backend key {raw[:16]!r} is truncated")
        parts.append(raw[pos + 4:pos + 4 + n])
        pos += 4 + n
    return ComplexKey(parts[0], parts[1], parts[2], raw[pos:])


class KvStore:
    """One named store of the world, over a backend shared by all the stores of
    one function on one partition.

    Missing keys are not errors: ``get_state``/``get`` return None, deletes of
    absent keys do nothing. Backend failures raise ``StateError``.

    Iterators from :meth:`scan_complex` see the writes made through *this*
    object while they are open (each ``next()`` returns the smallest key after
    the last one returned, as the store is now): use one ``KvStore`` per store
    name and backend.
    """

    def __init__(
        self,
        backend: StateBackend,
        store_name: str,
        merge_operator: MergeOperator = append,
        *,
        page_size: int = SCAN_PAGE,
    ) -> None:
        self.backend = backend
        self.name = store_name
        self.merge_operator = merge_operator
        self.page_size = page_size
        # Bumped by every write, so open iterators know their prefetched page
        # may be stale.
        self.version = 0

    # --- encoded keys: what the native host's write-back cache uses ----------

    def get_raw(self, key: bytes) -> bytes | None:
        """The value of an already encoded key (see the module docstring)."""
        return self.backend.get(self.name, key)

    def apply_writes(self, writes: list[tuple[bytes, bytes | None]]) -> None:
        """Write encoded keys in bulk (a value None deletes): how the native host
        hands over the writes it cached. Open iterators see them, as any write."""
        if not writes:
            return
        self.version += 1
        backend, name = self.backend, self.name
        for key, value in writes:
            if value is None:
                backend.delete(name, key)
            else:
                backend.put(name, key, value)

    def delete_encoded_prefix(self, start: bytes) -> None:
        """Delete every key that starts with the encoded ``start``
        (:meth:`delete_prefix` for a key already encoded)."""
        self.version += 1
        self.backend.delete_range(self.name, start, prefix_end(start))

    # --- simple keys -----------------------------------------------------------

    def put_state(self, key: bytes, value: bytes) -> None:
        self.version += 1
        self.backend.put(self.name, SIMPLE + key, value)

    def get_state(self, key: bytes) -> bytes | None:
        return self.backend.get(self.name, SIMPLE + key)

    def delete_state(self, key: bytes) -> None:
        self.version += 1
        self.backend.delete(self.name, SIMPLE + key)

    def list_states(self, start_inclusive: bytes, end_exclusive: bytes) -> list[bytes]:
        """The simple keys in ``[start_inclusive, end_exclusive)``, ordered."""
        scan = self.backend.scan(self.name, SIMPLE + start_inclusive, SIMPLE + end_exclusive)
        return [k[1:] for k, _ in scan]

    # --- complex keys ----------------------------------------------------------

    def put(self, ck: ComplexKey, value: bytes) -> None:
        self.version += 1
        self.backend.put(self.name, encode_complex(ck), value)

    def get(self, ck: ComplexKey) -> bytes | None:
        return self.backend.get(self.name, encode_complex(ck))

    def delete(self, ck: ComplexKey) -> None:
        self.version += 1
        self.backend.delete(self.name, encode_complex(ck))

    def merge(self, ck: ComplexKey, value: bytes) -> None:
        """Set ``ck`` to ``merge_operator(current, value)``; with the default
        operator, the bytes of ``value`` are appended to the current value (a
        missing key becomes ``value``)."""
        key = encode_complex(ck)
        self.version += 1
        self.backend.put(self.name, key, self.merge_operator(self.backend.get(self.name, key), value))

    def delete_prefix(self, ck: ComplexKey) -> None:
        """Delete every complex key with the same ``(key_group, key, namespace)``
        whose ``user_key`` starts with ``ck.user_key`` (all of them if it is empty)."""
        self.delete_encoded_prefix(encode_complex(ck))

    def list_complex(
        self, key_group: bytes, key: bytes, namespace: bytes, start_inclusive: bytes, end_exclusive: bytes
    ) -> list[bytes]:
        """The user keys under ``(key_group, key, namespace)`` in
        ``[start_inclusive, end_exclusive)``, ordered."""
        prefix = _prefix(key_group, key, namespace)
        n = len(prefix)
        return [k[n:] for k, _ in self.backend.scan(self.name, prefix + start_inclusive, prefix + end_exclusive)]

    def scan_complex(self, key_group: bytes, key: bytes, namespace: bytes) -> KvIterator:
        """Every ``(user_key, value)`` under ``(key_group, key, namespace)``, in
        user-key order, read a page at a time."""
        prefix = _prefix(key_group, key, namespace)
        return KvIterator(self, prefix, prefix_end(prefix))


class KvIterator:
    """The world's ``iterator``: ``has_next()``, ``next()`` over one key range.

    Reads ``page_size`` entries per backend fetch, so 10 000 entries never sit in
    memory at once. If the store was written since the page was fetched, the
    rest of the page is dropped and re-read from after the last key returned:
    ``next()`` always gives the smallest key after the previous one *as the
    store is now* (keys added ahead are seen, keys deleted ahead are not).
    """

    def __init__(self, store: KvStore, start: bytes, end: bytes | None) -> None:
        self._store = store
        self._prefix_len = len(start)
        self._next_start = start  # where the next fetch begins
        self._end = end
        self._page: list[tuple[bytes, bytes]] = []
        self._pos = 0
        self._exhausted = False  # the last fetch reached the end of the range
        self._version = store.version

    def _fill(self) -> bool:
        """True if an entry is ready at ``_pos``."""
        store = self._store
        if store.version != self._version:
            self._version = store.version
            self._page, self._pos, self._exhausted = [], 0, False
        if self._pos < len(self._page):
            return True
        if self._exhausted:
            return False
        size = store.page_size
        scan = store.backend.scan(store.name, self._next_start, self._end)
        try:
            self._page = list(islice(scan, size))
        finally:
            close = getattr(scan, "close", None)
            if close is not None:
                close()
        self._pos = 0
        self._exhausted = len(self._page) < size
        return bool(self._page)

    def has_next(self) -> bool:
        return self._fill()

    def next(self) -> tuple[bytes, bytes] | None:
        """The next ``(user_key, value)``, or None at the end."""
        if not self._fill():
            return None
        key, value = self._page[self._pos]
        self._pos += 1
        self._next_start = key_successor(key)
        return key[self._prefix_len :], value

    # Python code (fs_bus.api) walks it with ``for user_key, value in ...`` too.
    def __iter__(self) -> KvIterator:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        item = self.next()
        if item is None:
            raise StopIteration
        return item
