"""list<u8> by bulk copies (fs_bus/runtime/wasm_bytes.py): the C value array it
builds is the one wasmtime-py's element-by-element conversion builds, and reading
it back gives the bytes."""

from __future__ import annotations

import ctypes

from hypothesis import given, strategies as st
from wasmtime import _ffi as ffi
from wasmtime.component import _types

from fs_bus.runtime import wasm_bytes

VAL = ffi.wasmtime_component_val_t


def _array(val) -> bytes:
    lst = val.of.list
    return ctypes.string_at(ctypes.cast(lst.data, ctypes.c_void_p).value, lst.size * ctypes.sizeof(VAL))


@given(st.binary(max_size=3000))
def test_bytes_lowered_in_bulk_lift_back_unchanged(data):
    val = VAL()
    wasm_bytes.lower_bytes(data, ctypes.pointer(val))
    assert val.kind == ffi.WASMTIME_COMPONENT_LIST.value
    assert wasm_bytes.lift_bytes(val) == data


@given(st.binary(max_size=64))
def test_the_array_holds_what_the_stock_conversion_puts_there(data):
    ours, stock = VAL(), VAL()
    wasm_bytes.lower_bytes(data, ctypes.pointer(ours))
    u8 = _types.U8()
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, len(data))
    for i, b in enumerate(data):
        u8.convert_to_c(None, b, ctypes.pointer(raw.data[i]))
    stock.kind, stock.of.list = ffi.WASMTIME_COMPONENT_LIST, raw
    size = ctypes.sizeof(VAL)
    mine, theirs = _array(ours), _array(stock)
    for i in range(len(data)):  # kind and payload of each element (the rest is padding)
        assert mine[i * size] == theirs[i * size] and mine[i * size + 8] == theirs[i * size + 8]
    ffi.wasmtime_component_val_delete(ctypes.byref(ours))
    ffi.wasmtime_component_val_delete(ctypes.byref(stock))
