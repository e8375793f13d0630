"""The wasmtime-py host's instance of a component: :class:`PyWasmProcessor`, with
its call budgets, the collector and kv (:mod:`.kv_host`) it serves, the WASI sandbox
(:mod:`.wasi`) and the stubs for imports it does not serve, and what it patches in
wasmtime-py (:func:`_patch_wasmtime_py`) when the first engine of this host is made.

Facts about wasmtime-py 50 this relies on (probed, see DESIGN.md):

- ``list<u8>`` parameters must be ``bytes`` exactly (``bytearray`` and
  ``memoryview`` raise ``TypeError``); ``list<u8>`` values reaching a host
  function arrive as ``bytes``. Stock wasmtime-py converts them one element at a
  time (~1.5 µs a byte); :mod:`fs_bus.runtime.wasm_bytes` makes that bulk copies.
- ``post_return`` is done by wasmtime itself: a second call without it works.
  ``Func.post_return`` is still available and cheap, but we do not need it.
- A trap (including an epoch interruption) poisons the component instance: any
  later call fails with "cannot enter component instance".
- A new Store's epoch deadline is 0, i.e. "already expired" once the epoch has
  moved: the deadline must be set before instantiation and before every call.
- ``Linker.define_unknown_imports_as_traps`` defines exact ``wasi:x@0.2.0``
  stubs that win over ``add_wasip2``'s semver-compatible 0.2.x definitions, so
  we stub unknown imports ourselves (``_stub``) and leave ``wasi:`` ones alone.
- A Python exception raised by a host function comes back out of the call as
  that exception (wasmtime-py keeps it in a module global meanwhile).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime import component as wc

from fs_bus.errors import BatchFailed, GuestError, GuestTimeout, InvalidArtifact
from fs_bus.runtime.base import Emitted, process_one_by_one
from fs_bus.runtime.framing import InputRecord, Record, decode_output, encode_input
from fs_bus.runtime.wasm.batch_files import _BatchFiles
from fs_bus.runtime.wasm.checks import BATCH, BATCH_DIR, COLLECTOR, KV, LoadedComponent
from fs_bus.runtime.wasm.kv_host import _KvHost, _lower_result
from fs_bus.runtime.wasm.messages import _INTERRUPT, _cause
from fs_bus.runtime.wasm.output import _GuestOutput
from fs_bus.runtime.wasm.processor import WasmProcessor
from fs_bus.runtime.wasm.wasi import WasiGrants
from fs_bus.state.backend import MemoryBackend, StateBackend

if TYPE_CHECKING:
    from fs_bus.runtime.wasm.engine import WasmEngine

log = logging.getLogger(__package__)

# A distinct base for the resource type ids _stub() hands out (kv_host's are below it).
_STUB_TYPE_BASE = 0x7300_0000


class _Sink:
    """Where the host collector puts what the guest emits.

    The host closures capture this small object rather than the processor: the
    linker keeps its closures in a global table until the linker is freed, and a
    closure holding the processor would keep the processor alive via a cycle.
    """

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = Emitted()


def _define_collector(collector: wc.LinkerInstance, sink: _Sink) -> None:
    """``functionstream:core/collector``: what the guest emits goes to ``sink``
    (the closures capture it, not the processor: see :class:`_Sink`)."""

    def emit(target_id: int, data: bytes) -> None:
        sink.out.records.append((target_id, data))

    def emit_watermark(_store: Any, target_id: int, watermark: int) -> None:
        sink.out.watermarks.append((target_id, watermark))

    wasm_bytes.add_emit(collector, "emit", emit)  # the hot one: no per-call type objects
    collector.add_func("emit-watermark", emit_watermark)


_patched = False
wasm_bytes: Any = None  # fs_bus.runtime.wasm_bytes, once the wasmtime-py host is used


def _patch_wasmtime_py() -> None:
    """What the wasmtime-py host needs of wasmtime-py, installed when the first
    engine of that host is made (never on the native host's road): lowering an
    explicit err case (values other than _Err lower exactly as before, so nothing
    else in the process notices; see kv_host's docstring for the bug), and
    ``list<u8>`` by bulk copies rather than element by element (see wasm_bytes)."""
    global _patched, wasm_bytes
    if _patched:
        return
    # wasm_bytes reaches into wasmtime-py's private modules: loaded for this host only.
    from fs_bus.runtime import wasm_bytes

    wc.ResultType.convert_to_c = _lower_result  # type: ignore[method-assign]
    wasm_bytes.install()
    _patched = True


class PyWasmProcessor(WasmProcessor):
    """The wasmtime-py host's instance (see :class:`WasmProcessor`)."""

    def __init__(
        self,
        engine: WasmEngine,
        component: LoadedComponent,
        init_config: dict[str, str],
        *,
        function_name: str,
        call_timeout_s: float = 5.0,
        state: StateBackend | None = None,
        log: logging.Logger | None = None,
        wasi: WasiGrants | None = None,
        memory_limit_mb: int = 0,
    ) -> None:
        self._set_up(component, function_name, call_timeout_s, memory_limit_mb)
        self._ticks = engine.deadline_ticks(call_timeout_s)
        self._sink = _Sink()
        self._owns_state = state is None
        self.state: StateBackend = MemoryBackend() if state is None else state
        self._kv = _KvHost(self.state)
        self._output = _GuestOutput(log or logging.getLogger(f"fs_bus.guest.{function_name}"), function_name)
        self._files: _BatchFiles | None = None
        self._process_batch: wasm_bytes.ExportCall | None = None

        self._store: wasmtime.Store | None = wasmtime.Store(engine.engine)
        store = self._store
        self._ctx = wasm_bytes.context(store)
        self._tick_s = engine.tick_s
        if memory_limit_mb:
            # Per linear memory of this instance alone: past it memory.grow returns -1,
            # and the guest's allocator fails (usually a trap) in this instance only.
            store.set_limits(memory_size=memory_limit_mb * 1024 * 1024)
        self._linker: wc.Linker | None = self._link(engine, store, wasi)
        instance = self._instantiate(self._linker, store)
        self._look_up_exports(instance, store)
        fs_init = self._export(instance, store, "fs-init")
        if fs_init is not None:
            config = [(str(k), str(v)) for k, v in init_config.items()]
            try:
                self._call("fs-init", fs_init, config)
            except GuestError:
                self._drop()
                raise
        # Whatever fs-init emitted stays in the sink and goes out with the first
        # process() result: dropping it silently would lose records.

    def _link(self, engine: WasmEngine, store: wasmtime.Store, wasi: WasiGrants | None) -> wc.Linker:
        """A linker for the component's imports: WASI as granted, the collector and
        kv served by this processor, and stubs that trap for anything else."""
        component = self._component
        linker = wc.Linker(engine.engine)
        if component.needs_wasi:
            # Guests built with componentize-py or the WASI adapter import
            # wasi:cli & co. even if they never use them.
            linker.add_wasip2()
            self._grant_wasi(store, wasi)
        stub_ids = itertools.count(_STUB_TYPE_BASE)
        with linker.root() as root:
            if COLLECTOR in component.imports:
                with root.add_instance(COLLECTOR) as collector:
                    _define_collector(collector, self._sink)
            if KV in component.imports:
                with root.add_instance(KV) as kv:
                    self._kv.define(kv)
            # Anything else the component imports that we do not provide traps
            # only if called. Not `define_unknown_imports_as_traps`: it defines
            # `wasi:x@0.2.0` stubs that shadow add_wasip2's newer,
            # semver-compatible 0.2.x definitions, breaking WASI guests.
            for name, ext in component.component.type.imports(engine.engine).items():
                if name not in (COLLECTOR, KV) and not name.startswith("wasi:"):
                    _stub(root, name, ext.ty, engine.engine, name, stub_ids)
        return linker

    def _grant_wasi(self, store: wasmtime.Store, wasi: WasiGrants | None) -> None:
        """Give the store a WASI context granting ``wasi`` (and, to a fast-path guest,
        its batch files' directory), its stdout and stderr going to :attr:`_output`."""
        try:
            grants = wasi or WasiGrants()
            if self._component.fast:
                # The batch files' directory, and nothing else the caller did not grant.
                self._files = _BatchFiles()
                grants = WasiGrants(dict(grants.env), [*grants.preopens, (self._files.dir, BATCH_DIR)],
                                    grants.read_only)
            wasi_config = grants.config()
        except (ValueError, OSError, wasmtime.WasmtimeError) as e:
            self._drop()
            raise GuestError(f"function {self.function_name!r}: bad WASI grants: {e}") from None
        self._output.attach(wasi_config)
        store.set_wasi(wasi_config)

    def _instantiate(self, linker: wc.Linker, store: wasmtime.Store) -> Any:
        """The component's instance, within the call budget; if that fails the
        processor is dropped and the error says whether it timed out, trapped or
        could not be linked."""
        store.set_epoch_deadline(self._ticks)  # instantiation may run start functions
        try:
            return linker.instantiate(store, self._component.component)
        except wasmtime.WasmtimeError as e:
            self._drop()
            msg = _cause(str(e))
            name = self.function_name
            if _INTERRUPT in str(e):
                raise GuestTimeout(f"function {name!r} ran past its {self.call_timeout_s} s budget while instantiating") from None
            if "trap" in str(e):
                raise GuestError(f"function {name!r} trapped while instantiating: {msg}") from None
            raise InvalidArtifact(f"function {name!r}: component cannot be linked: {msg}") from None

    def _look_up_exports(self, instance: Any, store: wasmtime.Store) -> None:
        """The processor-world exports the instance has (None where it has not), and
        fs-bus:batch's process-batch for a fast-path guest; fs-init is the caller's."""
        if self._component.fast:
            batch = instance.get_export_index(store, BATCH)
            index = instance.get_export_index(store, "process-batch", batch) if batch is not None else None
            func = instance.get_func(store, index) if index is not None else None
            assert func is not None  # _describe() checked the export
            self._process_batch = wasm_bytes.ExportCall(store, func)
        self._fs_process = self._export(instance, store, "fs-process")
        self._fs_process_record: Callable[[int, bytes], None] | None = None  # made on first use
        assert self._fs_process is not None or self._process_batch is not None  # _describe() checked
        self._fs_close = self._export(instance, store, "fs-close")
        self._fs_process_watermark = self._export(instance, store, "fs-process-watermark")
        self._fs_take_checkpoint = self._export(instance, store, "fs-take-checkpoint")
        self._fs_check_heartbeat = self._export(instance, store, "fs-check-heartbeat")
        self._fs_custom = self._export(instance, store, "fs-custom")
        self._fs_exec = self._export(instance, store, "fs-exec")

    def _export(self, instance: Any, store: wasmtime.Store, name: str) -> wasm_bytes.ExportCall | None:
        """A caller of export ``name``, or None if the component does not export it."""
        if name not in self._component.exports:
            return None
        func = instance.get_func(store, name)
        return None if func is None else wasm_bytes.ExportCall(store, func)

    @property
    def open_kv_handles(self) -> dict[str, int]:
        """How many kv ``store`` and ``iterator`` handles the guest holds open."""
        return {"store": len(self._kv.store_handles), "iterator": len(self._kv.iterators)}

    def process(self, source_id: int, data: bytes | bytearray | memoryview) -> Emitted:
        if self._fs_process is None:  # a fast-path guest: a batch of one
            return self.process_records(source_id, [Record(bytes(data))])
        # wasmtime-py accepts only `bytes` for list<u8>, not bytearray/memoryview.
        if type(data) is not bytes:
            data = bytes(data)
        self._call("fs-process", self._fs_process, source_id, data)
        return self._take_output()

    def process_batch(self, source_id: int, records: list[bytes]) -> list[Emitted]:
        if self._process_batch is not None:
            emitted = self.process_records(source_id, [Record(r) for r in records])
            return [emitted, *(Emitted() for _ in records[1:])]
        if self._fs_process is None:
            return process_one_by_one(self, source_id, records)
        done: list[Emitted] = []
        sink = self._sink

        def after(_data: Any) -> None:
            done.append(sink.out)
            sink.out = Emitted()

        try:
            self._each(source_id, records, _as_bytes, after)
        except BatchFailed as exc:
            exc.done = done
            raise
        return done

    def process_records(self, source_id: int, records: Sequence[InputRecord]) -> Emitted:
        """Run a batch through the guest's fs-bus:batch export, records with their
        key, headers, timestamp, partition and offset (see fs_bus.runtime.framing).

        What the whole batch emitted comes back as one :class:`Emitted` whose
        records name their key and headers. If record ``i`` failed, raises
        ``BatchFailed(index=i, done=[what records 0..i-1 emitted])``. A guest
        without the export runs one record at a time, keeping the input keys.
        """
        if self._process_batch is None:
            return self._process_each(source_id, records)
        files = self._files
        assert files is not None
        data = encode_input(records)
        if os.pwrite(files.in_fd, data, 0) != len(data):
            raise GuestError(f"function {self.function_name!r}: short write of an input batch to {files.dir}")
        size = self._call("process-batch", self._process_batch, source_id, len(data))
        raw = os.pread(files.out_fd, size, 0)
        try:
            out, failed, error = decode_output(raw)
        except ValueError as e:
            raise GuestError(f"function {self.function_name!r}: process-batch returned a bad output batch: {e}") from None
        sink = self._sink.out
        if sink.records or sink.watermarks:  # what fs-init emitted goes out first
            self._sink.out = Emitted()
            out = [(t, d, None, None) for t, d in sink.records] + out
        if failed >= 0:
            raise BatchFailed(f"function {self.function_name!r} failed in process-batch: {error}", failed,
                              [Emitted(out)])
        return Emitted(out)

    def _process_each(self, source_id: int, records: Sequence[InputRecord]) -> Emitted:
        """The reference world's road for whole records: one fs-process call per record;
        what a record emitted keeps its key."""
        sink = self._sink.out
        out: list = []
        watermarks = sink.watermarks
        pending = sink.records  # what fs-init emitted goes out with the first record
        sink.records = emitted = []

        def after(r: InputRecord) -> None:
            nonlocal pending
            if pending or emitted:
                key = r.key()
                if pending:
                    out.extend([(t, d, key, None) for t, d in pending])
                    pending = []
                out.extend([(t, d, key, None) for t, d in emitted])
                emitted.clear()

        try:
            self._each(source_id, records, _value, after)
        except BatchFailed as exc:
            exc.done = [Emitted(out, watermarks)]
            raise
        finally:
            self._sink.out = Emitted()
        return Emitted(out, watermarks)

    def _each(self, source_id: int, records: Sequence[Any], value: Callable[[Any], bytes],
              after: Callable[[Any], None]) -> None:
        """Call fs-process with ``value(record)`` for each record, and ``after(record)``
        once it returned: the hot loop of the reference world. It calls the export
        directly rather than through :meth:`_call`: the instance is checked once per
        batch, and the call budget is re-armed only once an epoch tick may have passed
        (see :meth:`_arm`). If record ``i`` fails, raises ``BatchFailed(index=i)``
        (``done`` is the caller's to fill)."""
        assert self._fs_process is not None
        if self._fs_process_record is None:
            store = self._store
            self._fs_process_record = (self._fs_process.record_caller(store)
                                       or functools.partial(self._fs_process, store))
        fs_process = self._fs_process_record
        arm, tick = self._arm, self._tick_s
        armed = -tick
        now = time.monotonic
        i = 0
        try:
            self._check_open()
            for i, r in enumerate(records):
                clock = now()
                if clock - armed >= tick:
                    arm()
                    armed = clock
                fs_process(source_id, value(r))
                after(r)
        except Exception as e:  # noqa: BLE001 - _failed says what it was
            raise BatchFailed(str(self._failed("fs-process", e)), i, []) from e
        finally:
            self._output.flush()  # the guest's output lines, once per batch

    def process_watermark(self, source_id: int, watermark: int) -> Emitted:
        """fs-process-watermark, if exported; what the guest emitted."""
        if self._fs_process_watermark is not None:
            self._call("fs-process-watermark", self._fs_process_watermark, source_id, watermark)
        return self._take_output()

    def take_checkpoint(self, checkpoint_id: int) -> Emitted:
        """fs-take-checkpoint (if exported), then make the state durable.

        Called at each input offset commit, before the offsets are committed;
        ids must increase. If the guest fails (``GuestError``) the state is not
        checkpointed; if the backend cannot commit it raises ``StateError``.
        Either way the offsets must not be committed.
        The ``-> list<u8>`` form's returned bytes are not used (logged at DEBUG).
        """
        if self._last_checkpoint is not None and checkpoint_id <= self._last_checkpoint:
            raise ValueError(
                f"function {self.function_name!r}: checkpoint id {checkpoint_id} "
                f"does not follow {self._last_checkpoint}; ids must increase"
            )
        if self._fs_take_checkpoint is not None:
            returned = self._call("fs-take-checkpoint", self._fs_take_checkpoint, checkpoint_id)
            if returned is not None:
                log.debug("function %r: fs-take-checkpoint %d returned %d bytes (unused)",
                          self.function_name, checkpoint_id, len(returned))
        self._check_open()
        self.state.checkpoint()
        self._last_checkpoint = checkpoint_id
        return self._take_output()

    def check_heartbeat(self) -> bool:
        """fs-check-heartbeat if exported (True if not). False once the instance
        is broken: it must be replaced either way."""
        if self._broken:
            return False
        if self._fs_check_heartbeat is None:
            self._check_open()
            return True
        return bool(self._call("fs-check-heartbeat", self._fs_check_heartbeat))

    def custom(self, payload: bytes | bytearray | memoryview) -> bytes:
        """fs-custom: the function's own request/response entry point."""
        if self._fs_custom is None:
            self._check_open()
            raise GuestError(f"function {self.function_name!r} does not export fs-custom")
        result: bytes = self._call("fs-custom", self._fs_custom, bytes(payload))
        return result

    def exec(self, class_name: str, modules: list[tuple[str, bytes]]) -> None:
        """fs-exec: hand a Python runtime component the class to run and the
        modules of a ``type: python`` artifact. What it emits goes out with the
        next process() result, as for fs-init.

        The ``fs-exec: func(payload: list<u8>)`` form gets UTF-8 JSON
        ``{"class-name": class_name, "modules": [[name, base64(bytes)], ...]}``.
        """
        if self._fs_exec is None:
            self._check_open()
            raise GuestError(f"function {self.function_name!r} does not export fs-exec; it is not a Python runtime")
        mods = [(str(name), bytes(code)) for name, code in modules]
        if self._component.export_types.get("fs-exec") == "func(list<u8>)":
            payload = json.dumps(
                {"class-name": class_name, "modules": [[n, base64.b64encode(c).decode("ascii")] for n, c in mods]}
            ).encode()
            self._call("fs-exec", self._fs_exec, payload)
        else:
            self._call("fs-exec", self._fs_exec, class_name, mods)

    def _take_output(self) -> Emitted:
        out = self._sink.out
        self._sink.out = Emitted()
        return out

    def _check_open(self) -> None:
        if self._closed:
            raise GuestError(f"function {self.function_name!r}: instance is closed")
        if self._broken:
            raise GuestError(f"function {self.function_name!r}: instance is broken after a previous trap; restart it")

    def _call(self, export: str, func: wasm_bytes.ExportCall, *args: Any, flush: bool = True) -> Any:
        """Call an export within the call budget; ``flush=False`` leaves the guest's
        output lines for the caller to flush (once per batch rather than per record)."""
        self._check_open()
        store = self._store
        assert store is not None
        self._arm()
        try:
            return func(store, *args)
        except Exception as e:
            raise self._failed(export, e) from (e if not isinstance(e, wasmtime.WasmtimeError) else None)
        finally:
            # A line printed without its newline belongs to this call, not the next.
            if flush:
                self._output.flush()

    def _arm(self) -> None:
        """Give the next call its budget: the epoch deadline, ``_ticks`` ticks from now.

        A loop may re-arm only once per tick (``_process_each``): the ticker cannot
        advance twice within one tick, so one more tick than the budget's keeps the
        budget a floor for every call made within a tick of arming."""
        wasm_bytes.set_epoch_deadline(self._ctx, self._ticks + 1)

    def _failed(self, export: str, e: Exception) -> GuestError:
        """What a failed call of ``export`` means, as the error to raise. Any failure
        once wasm was entered leaves the instance poisoned (wasmtime refuses to
        re-enter it), so it is never called again."""
        self._broken = True
        if isinstance(e, GuestError):
            return e
        text = str(e)
        if isinstance(e, wasmtime.WasmtimeError) and _INTERRUPT in text:
            return GuestTimeout(f"function {self.function_name!r} ran past its {self.call_timeout_s} s budget in {export}")
        if isinstance(e, wasmtime.WasmtimeError):
            limit = f" (its memory is limited to {self.memory_limit_mb} MiB)" if self.memory_limit_mb else ""
            return GuestError(f"function {self.function_name!r} trapped in {export}{limit}: {_cause(text)}\n{text}")
        return GuestError(f"function {self.function_name!r} failed in {export}: {type(e).__name__}: {e}")

    def close(self) -> None:
        """Call fs-close if exported (a failure there is logged, not raised), then free the instance."""
        if self._closed:
            return
        try:
            if self._fs_close is not None and not self._broken:
                try:
                    self._call("fs-close", self._fs_close)
                except GuestError as e:
                    log.warning("%s", e)
                if self._sink.out.records or self._sink.out.watermarks:
                    # close() has nowhere to hand them: the worker is going away.
                    log.debug("function %r: dropping output emitted in fs-close", self.function_name)
        finally:
            self._drop()

    def _drop(self) -> None:
        self._closed = True
        # Free the guest's memory now rather than whenever the GC gets to it.
        if self._store is not None:
            self._store.close()
            self._store = None
        self._linker = None
        self._output.close()
        if self._files is not None:
            self._files.close()
            self._files = None
        self._kv.store_handles.clear()
        self._kv.iterators.clear()
        if self._owns_state:
            self._owns_state = False
            self.state.close()



def _value(record: InputRecord) -> bytes:
    return record.value() or b""


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)



class _NotProvided(Exception):
    """Raised by a stub for an import this host does not implement."""


def _stub(
    parent: wc.LinkerInstance, name: str, item: Any, engine: wasmtime.Engine, where: str, type_ids: Iterator[int]
) -> None:
    """Define import ``name`` so that instantiation succeeds and only a call fails."""
    if isinstance(item, wc.FuncType):

        def trap(_store: Any, *_args: Any) -> None:
            raise _NotProvided(f"{where} is not provided by this host")

        parent.add_func(name, trap)
    elif isinstance(item, wc.ResourceType):
        # A distinct host type per resource, so the guest's distinct types stay distinct.
        parent.add_resource(name, wc.ResourceType.host(next(type_ids)), lambda _store, _rep: None)
    elif isinstance(item, wc.ComponentInstanceType):
        with parent.add_instance(name) as instance:
            for export, ext in item.exports(engine).items():
                _stub(instance, export, ext.ty, engine, f"{where}#{export}", type_ids)
    # Value types need no definition; a module or component import cannot be
    # stubbed and makes instantiation fail with a message naming it.
