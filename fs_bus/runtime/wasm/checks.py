"""What a component is to the hosts, and whether it fits the worlds they serve.

The worlds: ``functionstream:core@0.1.0``'s ``processor`` (``wit/processor.wit``)
and fs-bus's own ``fs-bus:batch@0.1.0`` ``fast-processor`` (``wit/fs-bus/batch.wit``).
Both hosts render a component's imports and exports the same way (wasmtime-py's
types here, ``native/src/describe.rs`` there), so one set of checks serves both:
:func:`_describe` checks a component's view and makes its :class:`LoadedComponent`.

A fact about wasmtime-py 50 this relies on (probed, see DESIGN.md):

- ``Component(engine, data)`` parses ``bytes`` that do not start with ``\\0`` as
  WAT text, so the binary header is checked before anything is compiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import wasmtime
from wasmtime import component as wc

from fs_bus.errors import InvalidArtifact

COLLECTOR = "functionstream:core/collector@0.1.0"
KV = "functionstream:core/kv@0.1.0"
# fs-bus's extension world (wit/fs-bus/batch.wit): batches of records as bytes
# through two files in a directory preopened for the guest as BATCH_DIR.
BATCH = "fs-bus:batch/batch@0.1.0"
BATCH_FUNCS: dict[str, str] = {"process-batch": "func(u32, u64) -> u64"}
BATCH_DIR = "/fs-bus"

# The processor world's exports, as WIT parameter/result types (names left out:
# we call positionally, and toolchains are free to rename parameters).
# The reference world was published in two versions that differ in two exports;
# both are accepted (the first form is the one in wit/processor.wit).
PROCESSOR_EXPORTS: dict[str, tuple[str, ...]] = {
    "fs-init": ("func(list<tuple<string, string>>)",),
    "fs-process": ("func(u32, list<u8>)",),
    "fs-process-watermark": ("func(u32, u64)",),
    "fs-take-checkpoint": ("func(u64)", "func(u64) -> list<u8>"),
    "fs-check-heartbeat": ("func() -> bool",),
    "fs-close": ("func()",),
    "fs-exec": ("func(string, list<tuple<string, list<u8>>>)", "func(list<u8>)"),
    "fs-custom": ("func(list<u8>) -> list<u8>",),
}

# The host functions we define are untyped (wasmtime-py's add_func): wasmtime
# would link a guest whose `emit` takes a string and hand us a str. So the
# collector import is checked against the WIT at load time.
COLLECTOR_FUNCS: dict[str, str] = {
    "emit": "func(u32, list<u8>)",
    "emit-watermark": "func(u32, u64)",
}

# The same check for kv. Resources render as own/borrow (their names are not
# visible through wasmtime-py's types), records and variants structurally.
_KV_ERROR = "variant{not-found, io-error(string), other(string)}"
_KV_KEY = "record{key-group: list<u8>, key: list<u8>, namespace: list<u8>, user-key: list<u8>}"
KV_FUNCS: dict[str, str] = {
    "[constructor]store": "func(string) -> own",
    "[method]store.put-state": f"func(borrow, list<u8>, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.get-state": f"func(borrow, list<u8>) -> result<option<list<u8>>, {_KV_ERROR}>",
    "[method]store.delete-state": f"func(borrow, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.list-states": f"func(borrow, list<u8>, list<u8>) -> result<list<list<u8>>, {_KV_ERROR}>",
    "[method]store.put": f"func(borrow, {_KV_KEY}, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.get": f"func(borrow, {_KV_KEY}) -> result<option<list<u8>>, {_KV_ERROR}>",
    "[method]store.delete": f"func(borrow, {_KV_KEY}) -> result<_, {_KV_ERROR}>",
    "[method]store.merge": f"func(borrow, {_KV_KEY}, list<u8>) -> result<_, {_KV_ERROR}>",
    "[method]store.delete-prefix": f"func(borrow, {_KV_KEY}) -> result<_, {_KV_ERROR}>",
    "[method]store.list-complex": (
        f"func(borrow, list<u8>, list<u8>, list<u8>, list<u8>, list<u8>) -> result<list<list<u8>>, {_KV_ERROR}>"
    ),
    "[method]store.scan-complex": f"func(borrow, list<u8>, list<u8>, list<u8>) -> result<own, {_KV_ERROR}>",
    "[method]iterator.has-next": f"func(borrow) -> result<bool, {_KV_ERROR}>",
    "[method]iterator.next": f"func(borrow) -> result<option<tuple<list<u8>, list<u8>>>, {_KV_ERROR}>",
}
KV_TYPES = frozenset({"store", "iterator", "error", "complex-key"})


_WASM_MAGIC = b"\0asm"
_CORE_MODULE_VERSION = b"\x01\x00\x00\x00"  # a component's layer/version differs


@dataclass(frozen=True, slots=True)
class LoadedComponent:
    """A compiled component plus what the host needs to know before instantiating it."""

    sha256: str
    component: wc.Component
    exports: frozenset[str]  # the processor-world exports it has (fs-process, or BATCH, always)
    imports: frozenset[str]  # every import name, e.g. "functionstream:core/collector@0.1.0"
    from_cache: bool  # deserialized from the on-disk compiled cache, not compiled
    # export name -> its WIT signature, for exports that have two published forms
    export_types: Mapping[str, str] = field(default_factory=dict)
    native: bool = False  # compiled by the native host (``component`` is a NativeComponent)

    @property
    def needs_wasi(self) -> bool:
        return any(name.startswith("wasi:") for name in self.imports)

    @property
    def fast(self) -> bool:
        """It exports fs-bus's batch interface: records cross as bytes, a batch per call."""
        return BATCH in self.exports



def _check_header(wasm: bytes) -> None:
    if wasm[:4] != _WASM_MAGIC or len(wasm) < 8:
        raise InvalidArtifact("not a WebAssembly binary (it does not start with \\0asm)")
    if wasm[4:8] == _CORE_MODULE_VERSION:
        raise InvalidArtifact(
            "this is a core WebAssembly module, not a component; "
            "make a component of it (e.g. `wasm-tools component new`) for the functionstream:core processor world"
        )


# A component's imports and exports as both hosts render them (see
# ``native/src/describe.rs``): a function's WIT signature, a dict of an interface
# instance's members, or the kind of anything else. One set of checks serves both.
ItemView = "str | dict[str, ItemView]"


def _view(engine: wasmtime.Engine, component: wc.Component) -> dict[str, dict[str, Any]]:
    """wasmtime-py's view of ``component`` (the native host's is ``describe()``)."""

    def item(ty: Any) -> Any:
        if isinstance(ty, wc.ComponentInstanceType):
            return {name: item(ext.ty) for name, ext in ty.exports(engine).items()}
        return _wit_item(ty)

    ty = component.type
    return {
        "imports": {name: item(ext.ty) for name, ext in ty.imports(engine).items()},
        "exports": {name: item(ext.ty) for name, ext in ty.exports(engine).items()},
    }


def _kind(item: Any) -> str:
    return "ComponentInstanceType" if isinstance(item, dict) else str(item)


def _check_import(imports: Mapping[str, Any], iface: str, funcs: Mapping[str, str], types: frozenset[str]) -> None:
    """The host functions are defined for the WIT: refuse a component whose import
    of ``iface`` does not match it, with a message naming the difference."""
    if iface not in imports:
        return
    instance = imports[iface]
    if not isinstance(instance, dict):
        raise InvalidArtifact(f"import {iface} is a {_kind(instance)}, not an interface instance")
    for name, got in instance.items():
        is_func = isinstance(got, str) and got.startswith("func(")
        if name in types and not is_func:
            continue
        expected = funcs.get(name)
        if expected is None:
            raise InvalidArtifact(f"import {iface} asks for {name!r}, which the interface does not have")
        if _kind(got) != expected:
            raise InvalidArtifact(f"import {iface}#{name} has type {_kind(got)}, but the interface says {expected}")


def _describe(sha256: str, component: Any, view: Mapping[str, Mapping[str, Any]], from_cache: bool,
              *, native: bool = False) -> LoadedComponent:
    imports, exports = view["imports"], view["exports"]
    _check_import(imports, COLLECTOR, COLLECTOR_FUNCS, frozenset())
    _check_import(imports, KV, KV_FUNCS, KV_TYPES)
    export_types: dict[str, str] = {}
    for name, item in exports.items():
        if name == BATCH:
            _check_batch_export(item)
            export_types[name] = "instance"
            continue
        accepted = PROCESSOR_EXPORTS.get(name)
        if accepted is None:
            continue  # extra exports are none of our business
        got = _kind(item)
        if got not in accepted:
            raise InvalidArtifact(
                f"export {name} has type {got}, but the processor world says {' or '.join(accepted)}"
            )
        export_types[name] = got
    if "fs-process" not in export_types and BATCH not in export_types:
        raise InvalidArtifact(
            "component does not export fs-process: func(source-id: u32, data: list<u8>) "
            f"(the functionstream:core processor world) nor {BATCH} (fs-bus's fast-processor world); "
            f"its exports are: {', '.join(sorted(exports)) or 'none'}"
        )
    return LoadedComponent(sha256, component, frozenset(export_types), frozenset(imports), from_cache,
                           export_types, native)


def _check_batch_export(item: Any) -> None:
    if not isinstance(item, dict):
        raise InvalidArtifact(f"export {BATCH} is a {_kind(item)}, not an interface instance")
    for name, expected in BATCH_FUNCS.items():
        got = item.get(name)
        if got is None:
            raise InvalidArtifact(f"export {BATCH} lacks {name}: {expected} (see wit/fs-bus/batch.wit)")
        if _kind(got) != expected:
            raise InvalidArtifact(f"export {BATCH}#{name} has type {_kind(got)}, but wit/fs-bus/batch.wit says {expected}")


_PRIMITIVES: dict[type, str] = {
    wc.Bool: "bool", wc.U8: "u8", wc.U16: "u16", wc.U32: "u32", wc.U64: "u64",
    wc.S8: "s8", wc.S16: "s16", wc.S32: "s32", wc.S64: "s64",
    wc.F32: "f32", wc.F64: "f64", wc.Char: "char", wc.String: "string",
}  # fmt: skip


def _wit(ty: Any) -> str:
    """Render a component value type the way WIT writes it (enough for the processor world)."""
    name = _PRIMITIVES.get(type(ty))
    if name is not None:
        return name
    if isinstance(ty, wc.ListType):
        return f"list<{_wit(ty.element)}>"
    if isinstance(ty, wc.TupleType):
        return f"tuple<{', '.join(_wit(t) for t in ty.elements)}>"
    if isinstance(ty, wc.OptionType):
        return f"option<{_wit(ty.payload)}>"
    if isinstance(ty, wc.ResultType):
        ok = _wit(ty.ok) if ty.ok is not None else "_"
        return f"result<{ok}, {_wit(ty.err)}>" if ty.err is not None else f"result<{ok}>"
    if isinstance(ty, wc.RecordType):
        return "record{" + ", ".join(f"{name}: {_wit(t)}" for name, t in ty.fields) + "}"
    if isinstance(ty, wc.VariantType):
        return "variant{" + ", ".join(name if t is None else f"{name}({_wit(t)})" for name, t in ty.cases) + "}"
    # own, borrow (the resource's name is not visible), enum, flags, ...
    return type(ty).__name__.removesuffix("Type").lower()


def _wit_item(item: Any) -> str:
    """A function's WIT signature, or the kind of anything else (for messages and checks)."""
    return _wit_func(item) if isinstance(item, wc.FuncType) else type(item).__name__


def _wit_func(fty: wc.FuncType) -> str:
    params = ", ".join(_wit(t) for _name, t in fty.params)
    result = fty.result
    return f"func({params})" + (f" -> {_wit(result)}" if result is not None else "")
