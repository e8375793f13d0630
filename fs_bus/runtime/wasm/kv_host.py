"""The wasmtime-py host's ``functionstream:core/kv`` (:class:`_KvHost`): the guest's
kv calls served from the processor's :class:`~fs_bus.state.backend.StateBackend`
(the partition's state) through :mod:`fs_bus.state.kv`.

Facts about wasmtime-py 50 this relies on (probed, see DESIGN.md):

- Resources: ``add_resource(name, ResourceType.host(id), dtor)``; a constructor
  returns ``ResourceHost.own(rep, id)``; a method gets its ``self`` as a borrowed
  ``ResourceAny`` and must call ``.to_host(store)`` on it (which gives ``.rep``):
  a borrow left untouched fails the guest's call with "borrow handles still
  remain at the end of the call". ``dtor(store, rep)`` runs when the guest drops
  its handle.
- A ``record`` reaches a host function as a ``wasmtime.component.Record`` whose
  attributes carry the WIT field names, dashes included (``getattr(r, "user-key")``).
- ``result``/``option`` cross as plain values (None, the payload), a variant with
  payloads as ``Variant(tag, payload)``. But an error cannot be returned from a
  function whose result is ``result<option<T>, E>``: wasmtime-py tries the ``ok``
  case first, and an ``option``'s ``none`` case claims every Python object, so
  lowering fails ("value not valid for this variant") and the guest traps.
  :class:`_Err` and :func:`_lower_result` make the err case explicit (installed
  by :func:`~fs_bus.runtime.wasm.py_host._patch_wasmtime_py`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from wasmtime import component as wc

from fs_bus.state.backend import StateBackend, StateError
from fs_bus.state.kv import ComplexKey, KvIterator, KvStore

log = logging.getLogger(__package__)

# Host resource type ids, distinct from the ids py_host._stub() hands out.
_STORE_TYPE = 0x6B76_0001
_ITERATOR_TYPE = 0x6B76_0002


class _Err:
    """The err case of a ``result``, made explicit for :func:`_lower_result`."""

    __slots__ = ("payload",)

    def __init__(self, payload: Any) -> None:
        self.payload = payload


class _ErrCaseOnly:
    """Looks like a ``ResultType`` whose only case is ``err``, so that
    wasmtime-py's own ``ResultType.convert_to_c`` lowers an error without first
    trying (and wrongly taking) the ``ok`` case."""

    _lower = wc.ResultType._lower

    def __init__(self, err: Any) -> None:
        self._err = err

    def _cases(self) -> list[tuple[str, Any]]:
        return [("err", self._err)]

    def _tagged(self) -> bool:
        return False


_stock_result_to_c = wc.ResultType.convert_to_c


def _lower_result(self: wc.ResultType, store: Any, val: Any, ptr: Any) -> None:
    if isinstance(val, _Err):
        return _stock_result_to_c(_ErrCaseOnly(self.err), store, val.payload, ptr)  # type: ignore[arg-type]
    return _stock_result_to_c(self, store, val, ptr)



def _kv_error(e: Exception) -> wc.Variant:
    """The world's ``error`` variant for a failure of a kv call."""
    if isinstance(e, (StateError, OSError)):
        return wc.Variant("io-error", str(e))
    return wc.Variant("other", f"{type(e).__name__}: {e}")


def _complex_key(record: Any) -> ComplexKey:
    # wasmtime-py names a Record's attributes after the WIT fields, dashes and all.
    return ComplexKey(
        getattr(record, "key-group"), record.key, record.namespace, getattr(record, "user-key")
    )


class _KvHost:
    """The host side of ``functionstream:core/kv`` for one processor.

    Guest handles are small integers ("reps") into two tables; wasmtime runs
    the resource destructor when the guest drops a handle, and the table entry
    goes with it. One :class:`KvStore` per store name, shared by every handle
    opened with that name, so an open iterator sees the writes of any of them.
    """

    __slots__ = ("backend", "stores", "store_handles", "iterators", "_reps")

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend
        self.stores: dict[str, KvStore] = {}
        self.store_handles: dict[int, KvStore] = {}
        self.iterators: dict[int, KvIterator] = {}
        self._reps = itertools.count(1)

    def _new_rep(self, table: Mapping[int, Any]) -> int:
        while True:  # reps are u32: wrap around, skipping 0 and live handles
            rep = next(self._reps) & 0xFFFF_FFFF
            if rep and rep not in table:
                return rep

    def define(self, kv: wc.LinkerInstance) -> None:
        stores, iterators = self.store_handles, self.iterators

        # Destructors: wasmtime calls them when the guest drops its handle.
        def drop_store(_store: Any, rep: int) -> None:
            stores.pop(rep, None)

        def drop_iterator(_store: Any, rep: int) -> None:
            iterators.pop(rep, None)

        kv.add_resource("store", wc.ResourceType.host(_STORE_TYPE), drop_store)
        kv.add_resource("iterator", wc.ResourceType.host(_ITERATOR_TYPE), drop_iterator)

        def new_store(_store: Any, name: str) -> wc.ResourceHost:
            kv_store = self.stores.get(name)
            if kv_store is None:
                kv_store = self.stores[name] = KvStore(self.backend, name)
            rep = self._new_rep(stores)
            stores[rep] = kv_store
            return wc.ResourceHost.own(rep, _STORE_TYPE)

        kv.add_func("[constructor]store", new_store)

        def scan_complex(s: KvStore, key_group: bytes, key: bytes, namespace: bytes) -> wc.ResourceHost:
            rep = self._new_rep(iterators)
            iterators[rep] = s.scan_complex(key_group, key, namespace)
            return wc.ResourceHost.own(rep, _ITERATOR_TYPE)

        store_methods: dict[str, Callable[..., Any]] = {
            "put-state": KvStore.put_state,
            "get-state": KvStore.get_state,
            "delete-state": KvStore.delete_state,
            "list-states": KvStore.list_states,
            "put": lambda s, k, v: s.put(_complex_key(k), v),
            "get": lambda s, k: s.get(_complex_key(k)),
            "delete": lambda s, k: s.delete(_complex_key(k)),
            "merge": lambda s, k, v: s.merge(_complex_key(k), v),
            "delete-prefix": lambda s, k: s.delete_prefix(_complex_key(k)),
            "list-complex": KvStore.list_complex,
            "scan-complex": scan_complex,
        }
        for name, op in store_methods.items():
            kv.add_func(f"[method]store.{name}", _kv_method(stores, "store", op))
        kv.add_func("[method]iterator.has-next", _kv_method(iterators, "iterator", KvIterator.has_next))
        kv.add_func("[method]iterator.next", _kv_method(iterators, "iterator", KvIterator.next))


def _kv_method(table: Mapping[int, Any], kind: str, op: Callable[..., Any]) -> Callable[..., Any]:
    """A host function for a kv method: find ``self`` and run ``op`` on it; a
    failure becomes the world's ``error`` variant, never a trap."""

    def call(store: Any, this: wc.ResourceAny, *args: Any) -> Any:
        # to_host also ends the borrow; wasmtime fails the call if one is left.
        rep = this.to_host(store).rep
        obj = table.get(rep)
        if obj is None:
            return _Err(wc.Variant("other", f"{kind} handle {rep} is not open"))
        try:
            return op(obj, *args)
        except Exception as e:
            if not isinstance(e, StateError):
                log.warning("kv %s call failed: %s: %s", kind, type(e).__name__, e)
            return _Err(_kv_error(e))

    return call
