"""The native host's instance of a component (``fs_bus._native``, built from ``native/``).

Same methods and semantics as :class:`~fs_bus.runtime.wasm.py_host.PyWasmProcessor`; what
differs is where the guest boundary is crossed. A batch of records goes into Rust
with one call, and every ``fs-process`` call, every ``emit`` and every kv call
stays there: values are copied straight into and out of the guest's memory by the
``wasmtime`` crate's typed calls, and kv writes land in a write-back cache that is
handed to the partition's state back end (``apply_writes`` on each store's
:class:`~fs_bus.state.kv.KvStore`) before anything reads the back end itself, at
each checkpoint, after a failure and at close (see ``native/src/kv.rs``). Range
reads, iterators and prefix deletes run the Python :class:`KvStore` code, so their
semantics are the same by construction.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fs_bus import _native  # type: ignore[attr-defined]
from fs_bus.errors import BatchFailed, GuestError, GuestTimeout, InvalidArtifact
from fs_bus.runtime.base import Emitted
from fs_bus.runtime.framing import InputRecord, Record, decode_output, encode_input
from fs_bus.runtime.wasm.batch_files import _BatchFiles
from fs_bus.runtime.wasm.checks import BATCH_DIR, LoadedComponent
from fs_bus.runtime.wasm.engine import WasmEngine
from fs_bus.runtime.wasm.messages import _cause
from fs_bus.runtime.wasm.output import _GuestOutput
from fs_bus.runtime.wasm.processor import WasmProcessor
from fs_bus.runtime.wasm.wasi import WasiGrants
from fs_bus.state.backend import MemoryBackend, StateBackend, StateError
from fs_bus.state.kv import KvStore

log = logging.getLogger("fs_bus.runtime.wasm_native")  # its name before it moved here

WasmCallError = _native.WasmCallError
_UNKNOWN_IMPORT = re.compile(r"unknown import: `([^`]+)` has not been defined")

# The exports the native processor looks up (fs-bus:batch's process-batch included).
_EXPORTS = ("fs-init", "fs-process", "fs-process-watermark", "fs-take-checkpoint", "fs-check-heartbeat",
            "fs-close", "fs-custom", "fs-exec", "process-batch")


class _Stores:
    """The one :class:`KvStore` per store name that the native kv host writes through.
    Holds no reference to the processor, so the processor and its native half form
    no cycle that pyo3 objects would keep alive."""

    __slots__ = ("backend", "stores")

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend
        self.stores: dict[str, KvStore] = {}

    def __call__(self, name: str) -> KvStore:
        store = self.stores.get(name)
        if store is None:
            store = self.stores[name] = KvStore(self.backend, name)
        return store


class NativeWasmProcessor(WasmProcessor):
    """One instance of a component on the native host (see the module docstring).

    ``kv_cache_entries``: cached kv entries past which the write-back cache hands its
    writes to the back end and starts empty (tests make it small to exercise that).
    """

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
        kv_cache_entries: int = 1 << 17,
    ) -> None:
        self._set_up(component, function_name, call_timeout_s, memory_limit_mb)
        self._owns_state = state is None
        self.state: StateBackend = MemoryBackend() if state is None else state
        self._output = _GuestOutput(log or logging.getLogger(f"fs_bus.guest.{function_name}"), function_name)
        self._files: _BatchFiles | None = None
        self._native: Any = None
        grants = wasi or WasiGrants()
        try:
            if component.fast:
                # The batch files' directory, and nothing else the caller did not grant.
                self._files = _BatchFiles()
                grants = WasiGrants(dict(grants.env), [*grants.preopens, (self._files.dir, BATCH_DIR)],
                                    grants.read_only)
            for host_path, _guest in grants.preopens:
                if not Path(host_path).is_dir():
                    raise ValueError(f"WASI preopen {str(host_path)!r} is not a directory")
        except (ValueError, OSError) as e:
            self._drop()
            raise GuestError(f"function {function_name!r}: bad WASI grants: {e}") from None
        try:
            self._native = _native.NativeProcessor(
                component.component, _Stores(self.state), engine.deadline_ticks(call_timeout_s),
                memory_limit_mb * 1024 * 1024, component.needs_wasi,
                [(str(k), str(v)) for k, v in grants.env.items()],
                [(str(h), str(g), g in grants.read_only) for h, g in grants.preopens],
                kv_cache_entries,
            )
        except WasmCallError as e:
            self._drop()
            kind, text = e.args
            if kind == "interrupt":
                raise GuestTimeout(
                    f"function {function_name!r} ran past its {call_timeout_s} s budget while instantiating") from None
            if kind == "trap":
                raise GuestError(f"function {function_name!r} trapped while instantiating: {_cause(text)}") from None
            raise InvalidArtifact(f"function {function_name!r}: component cannot be linked: {_cause(text)}") from None
        # What the load-time checks accepted (``component.exports``) and the instance has.
        self._has = frozenset(
            name for name in _EXPORTS
            if (component.fast if name == "process-batch" else name in component.exports)
            and self._native.has_export(name)
        )
        if "fs-init" in self._has:
            config = [(str(k), str(v)) for k, v in init_config.items()]
            try:
                self._call("fs-init", self._native.init, config)
            except GuestError:
                self._drop()
                raise
        # Whatever fs-init emitted stays in the native host and goes out with the
        # first record's results: dropping it silently would lose records.

    @property
    def open_kv_handles(self) -> dict[str, int]:
        """How many kv ``store`` and ``iterator`` handles the guest holds open."""
        if self._native is None or self._closed:
            return {"store": 0, "iterator": 0}
        stores, iterators = self._native.open_handles()
        return {"store": stores, "iterator": iterators}

    # --- records ----------------------------------------------------------------

    def process(self, source_id: int, data: bytes | bytearray | memoryview) -> Emitted:
        if "fs-process" not in self._has:  # a fast-path guest: a batch of one
            return self.process_records(source_id, [Record(bytes(data))])
        out, watermarks, failed, error = self._run(source_id, [bytes(data) if type(data) is not bytes else data],
                                                   keyed=False)
        if failed >= 0:
            raise self._failed_with("fs-process", error)
        return Emitted([(target, value) for _index, target, value in out], watermarks)

    def process_batch(self, source_id: int, records: list[bytes]) -> list[Emitted]:
        if "fs-process" not in self._has:
            emitted = self.process_records(source_id, [Record(bytes(r)) for r in records])
            return [emitted, *(Emitted() for _ in records[1:])]
        values = [r if type(r) is bytes else bytes(r) for r in records]
        out, watermarks, failed, error = self._run(source_id, values, keyed=False)
        done = [Emitted() for _ in values]
        if watermarks:
            done[0].watermarks.extend(watermarks)
        for index, target, data in out:
            done[index].records.append((target, data))
        if failed >= 0:
            raise BatchFailed(str(self._failed_with("fs-process", error)), failed, done[:failed])
        return done

    def process_records(self, source_id: int, records: Sequence[InputRecord]) -> Emitted:
        """Run records through the guest: one fs-process call per record (each output
        keeps its record's key), or one fs-bus:batch call for a fast-world guest.
        If record ``i`` failed, raises ``BatchFailed(index=i, done=[what records
        0..i-1 emitted])``."""
        if "process-batch" in self._has:
            return self._process_fast(source_id, records)
        out, watermarks, failed, error = self._run(source_id, records, keyed=True)
        if failed >= 0:
            raise BatchFailed(str(self._failed_with("fs-process", error)), failed, [Emitted(out, watermarks)])
        return Emitted(out, watermarks)

    def _run(self, source_id: int, records: Sequence[Any], *, keyed: bool) -> tuple[list, list, int, Any]:
        self._check_open()
        try:
            return self._native.process(source_id, records, keyed)
        except WasmCallError as e:  # the host refused (no fs-process): not a record's fault
            raise self._failed_with("fs-process", tuple(e.args)) from None
        except StateError:
            self._broken = True
            raise
        finally:
            self._flush_output()

    def _process_fast(self, source_id: int, records: Sequence[InputRecord]) -> Emitted:
        files = self._files
        assert files is not None
        data = encode_input(records)
        if os.pwrite(files.in_fd, data, 0) != len(data):
            raise GuestError(f"function {self.function_name!r}: short write of an input batch to {files.dir}")
        size = self._call("process-batch", self._native.process_batch, source_id, len(data))
        raw = os.pread(files.out_fd, size, 0)
        try:
            out, failed, error = decode_output(raw)
        except ValueError as e:
            raise GuestError(f"function {self.function_name!r}: process-batch returned a bad output batch: {e}") from None
        pending = self._take_output()
        if pending.records:  # what fs-init emitted goes out first
            out = [(t, d, None, None) for t, d in pending.records] + out
        if failed >= 0:
            raise BatchFailed(f"function {self.function_name!r} failed in process-batch: {error}", failed,
                              [Emitted(out)])
        return Emitted(out, pending.watermarks)

    # --- the other exports ------------------------------------------------------

    def process_watermark(self, source_id: int, watermark: int) -> Emitted:
        """fs-process-watermark, if exported; what the guest emitted."""
        if "fs-process-watermark" in self._has:
            self._call("fs-process-watermark", self._native.process_watermark, source_id, watermark)
        return self._take_output()

    def take_checkpoint(self, checkpoint_id: int) -> Emitted:
        """fs-take-checkpoint (if exported), then the cached kv writes to the back
        end and the back end's checkpoint. Ids must increase. If the guest fails
        (``GuestError``) the state is not checkpointed; if the back end cannot take
        it, ``StateError``. Either way the offsets must not be committed."""
        if self._last_checkpoint is not None and checkpoint_id <= self._last_checkpoint:
            raise ValueError(
                f"function {self.function_name!r}: checkpoint id {checkpoint_id} "
                f"does not follow {self._last_checkpoint}; ids must increase"
            )
        if "fs-take-checkpoint" in self._has:
            returned = self._call("fs-take-checkpoint", self._native.take_checkpoint, checkpoint_id)
            if returned is not None:
                log.debug("function %r: fs-take-checkpoint %d returned %d bytes (unused)",
                          self.function_name, checkpoint_id, len(returned))
        self._check_open()
        self._native.flush_state()
        self.state.checkpoint()
        self._last_checkpoint = checkpoint_id
        return self._take_output()

    def flush_state(self) -> None:
        """Hand the kv writes cached in the native host to the state back end now
        (a checkpoint does this itself; for callers that read the back end while
        the instance runs)."""
        if self._native is not None and not self._closed:
            self._native.flush_state()

    def check_heartbeat(self) -> bool:
        """fs-check-heartbeat if exported (True if not). False once the instance is broken."""
        if self._broken:
            return False
        if "fs-check-heartbeat" not in self._has:
            self._check_open()
            return True
        return bool(self._call("fs-check-heartbeat", self._native.check_heartbeat))

    def custom(self, payload: bytes | bytearray | memoryview) -> bytes:
        """fs-custom: the function's own request/response entry point."""
        if "fs-custom" not in self._has:
            self._check_open()
            raise GuestError(f"function {self.function_name!r} does not export fs-custom")
        result: bytes = self._call("fs-custom", self._native.custom, bytes(payload))
        return result

    def exec(self, class_name: str, modules: list[tuple[str, bytes]]) -> None:
        """fs-exec, as :meth:`PyWasmProcessor.exec`."""
        if "fs-exec" not in self._has:
            self._check_open()
            raise GuestError(f"function {self.function_name!r} does not export fs-exec; it is not a Python runtime")
        mods = [(str(name), bytes(code)) for name, code in modules]
        payload = b""
        if self._native.exec_takes_json():
            payload = json.dumps(
                {"class-name": class_name, "modules": [[n, base64.b64encode(c).decode("ascii")] for n, c in mods]}
            ).encode()
            mods = []
        self._call("fs-exec", self._native.exec, class_name, mods, payload)

    # --- plumbing ---------------------------------------------------------------

    def _take_output(self) -> Emitted:
        records, watermarks = self._native.take_emitted()
        return Emitted(records, watermarks)

    def _flush_output(self) -> None:
        taken = self._native.take_output() if self._native is not None else None
        if taken is None:
            return
        stdout, stderr, dropped = taken
        self._output.write("stdout", stdout)
        self._output.write("stderr", stderr)
        if dropped:
            log.warning("function %r: %d bytes of guest output dropped (more than 16 MiB between two calls)",
                        self.function_name, dropped)

    def _check_open(self) -> None:
        if self._closed:
            raise GuestError(f"function {self.function_name!r}: instance is closed")
        if self._broken:
            raise GuestError(f"function {self.function_name!r}: instance is broken after a previous trap; restart it")

    def _call(self, export: str, method: Any, *args: Any) -> Any:
        self._check_open()
        try:
            return method(*args)
        except WasmCallError as e:
            raise self._failed_with(export, tuple(e.args)) from None
        finally:
            self._flush_output()

    def _failed_with(self, export: str, error: tuple[str, str]) -> GuestError:
        """What a failed call of ``export`` means. Any failure once wasm was entered
        leaves the instance poisoned, so it is never called again."""
        self._broken = True
        kind, text = error
        if kind == "interrupt":
            return GuestTimeout(f"function {self.function_name!r} ran past its {self.call_timeout_s} s budget in {export}")
        if kind == "trap":
            limit = f" (its memory is limited to {self.memory_limit_mb} MiB)" if self.memory_limit_mb else ""
            return GuestError(f"function {self.function_name!r} trapped in {export}{limit}: {_cause(text)}\n{text}")
        unknown = _UNKNOWN_IMPORT.search(text)
        if unknown:  # wasmtime's trap for an import define_unknown_imports_as_traps stubbed
            text = f"{unknown.group(1)} is not provided by this host"
        return GuestError(f"function {self.function_name!r} failed in {export}: {_cause(text)}")

    def close(self) -> None:
        """Call fs-close if exported (a failure there is logged, not raised), then free the instance."""
        if self._closed:
            return
        try:
            if "fs-close" in self._has and not self._broken:
                try:
                    self._call("fs-close", self._native.close_guest)
                except GuestError as e:
                    log.warning("%s", e)
                if self._native.has_emitted():
                    log.debug("function %r: dropping output emitted in fs-close", self.function_name)
        finally:
            self._drop()

    def _drop(self) -> None:
        self._closed = True
        native, self._native = self._native, None
        if native is not None:
            try:
                # What the guest wrote since the last checkpoint reaches the back end,
                # as with a write-through host; its owner decides what to keep.
                native.drop_instance(not self._owns_state)
            except StateError as e:
                log.debug("function %r: cached state not handed over at close: %s", self.function_name, e)
        self._output.close()
        if self._files is not None:
            self._files.close()
            self._files = None
        if self._owns_state:
            self._owns_state = False
            self.state.close()
