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
import struct
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


# The two C entry points of the hot path, declared with plain addresses: ctypes
# converts an int argument for much less than it checks a typed pointer, and the
# arguments below are addresses the caller keeps alive anyway.
_func_call = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                              ctypes.c_void_p, ctypes.c_size_t)(("wasmtime_component_func_call", ffi.dll))
_set_epoch_deadline = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64)(
    ("wasmtime_context_set_epoch_deadline", ffi.dll))
_ERROR_PTR = ctypes.POINTER(ffi.wasmtime_error_t)

# Types whose C value owns no memory: written in place, never freed.
_SCALARS = (_types.Bool, _types.S8, _types.S16, _types.S32, _types.S64, _types.U8, _types.U16, _types.U32,
            _types.U64, _types.F32, _types.F64, _types.Char)


class _ByteParam:
    """A ``list<u8>`` argument that lives as long as its export: an array of u8
    values in a ``bytearray`` of ours, which the value points at. A call borrows
    its arguments (wasmtime reads them, never frees them), so lowering a record
    is one strided slice assignment into the array, and the array is replaced
    only when a longer record comes."""

    __slots__ = ("_val", "_array", "_view", "_size", "_capacity")

    def __init__(self, val: Any) -> None:
        self._val = val  # the wasmtime_component_val_t in the argument array
        self._array = bytearray()
        self._view: Any = None
        self._size = -1
        self._capacity = 0
        val.kind = _LIST
        self._resize(0)

    def _resize(self, n: int) -> None:
        if n > self._capacity:
            capacity = max(n, 2 * self._capacity, 64)
            array = bytearray(capacity * _VAL_SIZE)
            array[0::_VAL_SIZE] = bytes([_U8]) * capacity
            # The array must not move while the value points at it: a ctypes view
            # pins it (a bytearray with exports cannot be resized).
            view = (ctypes.c_char * len(array)).from_buffer(array)
            self._val.of.list.data = ctypes.cast(view, ctypes.POINTER(_VAL))
            self._array, self._view, self._capacity = array, view, capacity
        self._val.of.list.size = n
        self._size = n

    def write(self, data: Any) -> None:
        n = len(data)
        if n != self._size:
            self._resize(n)
        if n:
            self._array[_PAYLOAD:n * _VAL_SIZE:_VAL_SIZE] = data


class ExportCall:
    """An export of an instance, called with its parameter and result types looked
    up once (``Func.__call__`` asks the engine for them on every call).

    The argument array lives as long as the export, so a scalar argument equal to
    the previous call's is not written again, and a ``list<u8>`` is copied into a
    standing array (:class:`_ByteParam`) rather than allocated, filled and freed.
    Other arguments are converted and freed per call, as wasmtime-py does.
    The component model forbids re-entering an instance, so a call never overlaps
    another of the same export.
    """

    __slots__ = ("_func_addr", "_ctx", "_params", "_result", "_capi", "_capi_addr", "_slots", "_result_space",
                 "_last", "_func")

    def __init__(self, store: Any, func: Func) -> None:
        fty = func.type(store)
        self._func = func  # keeps the handle alive: _func_addr points into it
        self._func_addr = ctypes.addressof(func._func)
        self._ctx = ctypes.cast(store._context(), ctypes.c_void_p).value
        n = len(fty.params)
        self._capi = (_VAL * max(1, n))()
        self._capi_addr = ctypes.addressof(self._capi)
        self._slots = [pointer(self._capi[i]) for i in range(n)]
        # Per parameter: (type, _ByteParam for a list<u8>, is a scalar)
        self._params: list[tuple[Any, _ByteParam | None, bool]] = []
        for i, (_name, ty) in enumerate(fty.params):
            if isinstance(ty, _types.ListType) and ty._is_bytes():
                self._params.append((ty, _ByteParam(self._capi[i]), False))
            else:
                self._params.append((ty, None, isinstance(ty, _SCALARS)))
        self._last: list[Any] = [_UNSET] * n
        self._result = fty.result
        self._result_space = _VAL() if self._result is not None else None

    def __call__(self, store: Any, *args: Any) -> Any:
        params = self._params
        if len(args) != len(params):
            raise TypeError(f"wrong number of parameters provided: given {len(args)}, expected {len(params)}")
        owned: list[int] = []
        last, slots = self._last, self._slots
        try:
            for i, val in enumerate(args):
                ty, byte_param, scalar = params[i]
                if byte_param is not None:
                    byte_param.write(val if type(val) in _BYTES_LIKE else bytes(val))
                elif scalar:
                    prev = last[i]
                    if val != prev or type(val) is not type(prev):
                        last[i] = _UNSET  # a failed conversion leaves the slot unknown
                        ty.convert_to_c(store, val, slots[i])
                        last[i] = val
                else:
                    owned.append(i)
                    ty.convert_to_c(store, val, slots[i])
            result = self._result_space
            err = _func_call(self._func_addr, self._ctx, self._capi_addr, len(params),
                             None if result is None else ctypes.addressof(result), 0 if result is None else 1)
            if err:
                _raise(err)
            return None if result is None else self._result.convert_from_c(result)
        finally:
            for i in owned:
                ffi.wasmtime_component_val_delete(slots[i])

    def record_caller(self, store: Any) -> Callable[[Any, bytes], None] | None:
        """For an export of the shape ``func(scalar, list<u8>)`` with no result (the
        reference world's ``fs-process``): a function ``call(scalar, data)`` that does
        only what such a call needs, for loops that call it once per record. None for
        any other shape. Errors are raised as by ``__call__``."""
        if self._result is not None or len(self._params) != 2:
            return None
        (first, first_bytes, scalar), (_ty, byte_param, _s) = self._params
        if not scalar or first_bytes is not None or byte_param is None:
            return None
        slot, last = self._slots[0], self._last
        write, func_call, func, ctx, capi = byte_param.write, _func_call, self._func_addr, self._ctx, self._capi_addr

        def call(value: Any, data: bytes) -> None:
            prev = last[0]
            if value != prev or type(value) is not type(prev):
                last[0] = _UNSET
                first.convert_to_c(store, value, slot)
                last[0] = value
            write(data)
            err = func_call(func, ctx, capi, 2, None, 0)
            if err:
                _raise(err)

        return call


def _raise(err: int) -> None:
    """Raise what a failed call returned: the Python exception a host function raised
    during the call if there was one (as wasmtime-py does), else the wasmtime error."""
    error = WasmtimeError._from_ptr(ctypes.cast(err, _ERROR_PTR))
    _enter.maybe_raise_last_exn()
    raise error


_UNSET = object()
_BYTES_LIKE = frozenset({bytes, bytearray, memoryview})


def set_epoch_deadline(ctx: int, ticks: int) -> None:
    """``Store.set_epoch_deadline`` on a context address (see :func:`context`)."""
    _set_epoch_deadline(ctx, ticks)


def context(store: Any) -> int:
    """The address of a store's context, for :func:`set_epoch_deadline`."""
    return ctypes.cast(store._context(), ctypes.c_void_p).value  # type: ignore[no-any-return]


# The host side of collector.emit(target: u32, data: list<u8>). Declared with
# plain addresses rather than wasmtime-py's typed pointers, which ctypes would
# wrap in objects on every call. ``args`` is an array of two 32-byte values: the
# u32 at offset 8, the list's (size, data) at 32 + 8. wasmtime frees the
# arguments after the callback returns.
_Callback = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t)
_ARGS = struct.Struct(f"<8xI{_VAL_SIZE - 12}x8xQQ")  # target u32; list size, list data
_string_at = ctypes.string_at


@_Callback
def _emit_impl(idx, _context, _ty_raw, args, _nargs, _results, _nresults):  # type: ignore[no-untyped-def]
    # As wasmtime-py's own trampoline (catch_exceptions), minus the StoreContext,
    # the typed pointers and a closure per call: emit has no use for the store.
    try:
        target, n, data = _ARGS.unpack(_string_at(args, _ARGS.size))
        _linker.FUNCTIONS.handles[idx](target, _string_at(data, n * _VAL_SIZE)[_PAYLOAD::_VAL_SIZE] if n else b"")
        return 0
    except WasmtimeError as e:
        return ctypes.cast(e._consume(), ctypes.c_void_p).value
    except Exception as e:  # noqa: BLE001 - handed back to the caller of the export, as wasmtime-py does
        _enter.LAST_EXCEPTION = e
        return ctypes.cast(WasmtimeError("python exception")._consume(), ctypes.c_void_p).value


_emit_callback = ctypes.cast(_emit_impl, ffi.wasmtime_component_func_callback_t)


def add_emit(instance: LinkerInstance, name: str, fn: Callable[[int, bytes], None]) -> None:
    """Define host function ``name: func(u32, list<u8>)`` (collector.emit, whose
    type the loader has checked) as ``fn(target, data)``, without wasmtime-py's
    per-call type objects."""
    instance._assert_not_locked()
    raw = name.encode()
    idx = _linker.FUNCTIONS.allocate(fn)
    err = ffi.wasmtime_component_linker_instance_add_func(instance.ptr(), ctypes.create_string_buffer(raw), len(raw),
                                                          _emit_callback, idx, _linker.func_finalize)
    if err:
        raise WasmtimeError._from_ptr(err)
