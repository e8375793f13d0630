"""``list<u8>`` across the component boundary by bulk copies, export calls with
cached types, and a typed host function for ``collector.emit``: the reference
world's hot path, kept in one module because it reaches into wasmtime-py 50's
internals (its C API bindings, its host-function table).

Why: wasmtime-py converts a ``list<u8>`` one element at a time. The C API holds
a list as an array of 32-byte ``wasmtime_component_val_t`` (a kind byte at
offset 0, the u8 at offset 8), and wasmtime-py fills (or reads) each one with a
ctypes pointer and two attribute stores: about 1.5 µs per byte, so a 100-byte
record cost ~0.3 ms each way. Here the array is built in a ``bytearray`` with
two strided slice assignments (C speed) and copied in with one ``memmove``;
reading is one ``string_at`` and one strided slice. On top of that
``Func.__call__`` asks the engine for the function's type on every call, and the
generic host trampoline builds a ``FuncType`` and its parameter types on every
call; :class:`ExportCall` and :func:`add_emit` do that once.

:func:`install` patches ``ListType`` for byte lists only; every other type
converts exactly as before.
"""

from __future__ import annotations

import ctypes
from ctypes import byref, pointer
from typing import Any, Callable

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import _enter, _linker, _types
from wasmtime.component import Func, LinkerInstance

_VAL = ffi.wasmtime_component_val_t
_VAL_SIZE = ctypes.sizeof(_VAL)  # 32 on 64-bit hosts
_PAYLOAD = _VAL.of.offset  # where the union starts: the u8 lives there
_U8 = ffi.WASMTIME_COMPONENT_U8.value
_LIST = ffi.WASMTIME_COMPONENT_LIST
_BOOL = ffi.WASMTIME_COMPONENT_BOOL

# A prefilled array of u8 values (kind set, payload zero); grown on demand and
# sliced, so lowering n bytes is one copy of n * 32 bytes plus one strided store.
_template = bytearray()


def _u8_array(data: bytes) -> bytearray:
    global _template
    size = len(data) * _VAL_SIZE
    if len(_template) < size:
        grown = bytearray(max(size, 2 * len(_template)))
        grown[0::_VAL_SIZE] = bytes([_U8]) * (len(grown) // _VAL_SIZE)
        _template = grown
    array = _template[:size]
    array[_PAYLOAD::_VAL_SIZE] = data
    return array


def lower_bytes(data: bytes, ptr: Any) -> None:
    """Store ``data`` as a ``list<u8>`` value at ``ptr`` (a ``wasmtime_component_val_t*``)."""
    raw = ffi.wasmtime_component_vallist_t()
    n = len(data)
    ffi.wasmtime_component_vallist_new_uninit(raw, n)
    if n:
        ctypes.memmove(raw.data, bytes(_u8_array(data)), n * _VAL_SIZE)
    ptr.contents.kind = _LIST
    ptr.contents.of.list = raw


def lift_bytes(val: Any) -> bytes:
    """The bytes of a ``list<u8>`` value, which is freed (the caller owned it)."""
    lst = val.of.list
    try:
        n = lst.size
        if not n:
            return b""
        return ctypes.string_at(lst.data, n * _VAL_SIZE)[_PAYLOAD::_VAL_SIZE]
    finally:
        ffi.wasmtime_component_vallist_delete(byref(val.of.list))


_stock_to_c = _types.ListType.convert_to_c
_stock_from_c = _types.ListType.convert_from_c


def _list_to_c(self: _types.ListType, store: Any, val: Any, ptr: Any) -> None:
    if type(val) is bytes and self._is_bytes():
        return lower_bytes(val, ptr)
    return _stock_to_c(self, store, val, ptr)


def _list_from_c(self: _types.ListType, c: Any) -> Any:
    if self._is_bytes():
        return lift_bytes(c)
    return _stock_from_c(self, c)


def install() -> None:
    """Make wasmtime-py move every ``list<u8>`` by bulk copies (idempotent)."""
    _types.ListType.convert_to_c = _list_to_c  # type: ignore[method-assign]
    _types.ListType.convert_from_c = _list_from_c  # type: ignore[method-assign]


class ExportCall:
    """An export of an instance, called with its parameter and result types looked
    up once (``Func.__call__`` asks the engine for them on every call)."""

    __slots__ = ("_func", "_params", "_result", "_capi", "_slots", "_result_space")

    def __init__(self, store: Any, func: Func) -> None:
        fty = func.type(store)
        self._func = byref(func._func)
        # (type, is a list<u8>) per parameter: byte lists go straight to lower_bytes
        self._params = [(ty, isinstance(ty, _types.ListType) and ty._is_bytes()) for _name, ty in fty.params]
        self._result = fty.result
        # One argument array per export, reused: the component model forbids
        # re-entering an instance, so a call never overlaps another of the same export.
        self._capi = (_VAL * max(1, len(self._params)))()
        self._slots = [pointer(self._capi[i]) for i in range(len(self._params))]
        self._result_space = _VAL() if self._result is not None else None

    def __call__(self, store: Any, *args: Any) -> Any:
        params = self._params
        if len(args) != len(params):
            raise TypeError(f"wrong number of parameters provided: given {len(args)}, expected {len(params)}")
        n = 0
        capi, slots = self._capi, self._slots
        try:
            for (ty, is_bytes), val, slot in zip(params, args, slots):
                if is_bytes and type(val) is bytes:
                    lower_bytes(val, slot)
                else:
                    ty.convert_to_c(store, val, slot)
                n += 1
            result = self._result_space
            err = ffi.wasmtime_component_func_call(self._func, store._context(), capi, n,
                                                   None if result is None else byref(result),
                                                   0 if result is None else 1)
            if err:
                error = WasmtimeError._from_ptr(err)
                _enter.maybe_raise_last_exn()
                raise error
            return None if result is None else self._result.convert_from_c(result)
        finally:
            for i in range(n):
                ffi.wasmtime_component_val_delete(slots[i])


@ffi.wasmtime_component_func_callback_t
def _emit_impl(idx, _context, _ty_raw, args, _nargs, _results, _nresults):  # type: ignore[no-untyped-def]
    # As wasmtime-py's own trampoline (catch_exceptions), minus the StoreContext
    # and closure per call: emit has no use for the store.
    try:
        target = args[0].of.u32
        data = lift_bytes(args[1])
        args[1].kind = _BOOL  # freed above: nothing left for anyone to free
        args[1].of.boolean = False
        _linker.FUNCTIONS.get(idx or 0)(None, target, data)
        return 0
    except WasmtimeError as e:
        return ctypes.cast(e._consume(), ctypes.c_void_p).value
    except Exception as e:  # noqa: BLE001 - handed back to the caller of the export, as wasmtime-py does
        _enter.LAST_EXCEPTION = e
        return ctypes.cast(WasmtimeError("python exception")._consume(), ctypes.c_void_p).value


def add_emit(instance: LinkerInstance, name: str, fn: Callable[[Any, int, bytes], None]) -> None:
    """Define host function ``name: func(u32, list<u8>)`` (collector.emit, whose
    type the loader has checked) without wasmtime-py's per-call type objects."""
    instance._assert_not_locked()
    raw = name.encode()
    idx = _linker.FUNCTIONS.allocate(fn)
    err = ffi.wasmtime_component_linker_instance_add_func(instance.ptr(), ctypes.create_string_buffer(raw), len(raw),
                                                          _emit_impl, idx, _linker.func_finalize)
    if err:
        raise WasmtimeError._from_ptr(err)
