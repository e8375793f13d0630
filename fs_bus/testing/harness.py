"""Run one function in this process, without Kafka: :class:`FunctionHarness`.

The harness builds the same processor a node builds for one input partition
(``fs_bus.node.loader``): a :class:`~fs_bus.runtime.wasm.WasmProcessor` for a
component of either world, a :class:`~fs_bus.runtime.python.PythonProcessor`
(user code in its own process) for a ``type: python`` driver, or the Python
runtime component for ``python-runtime: wasm``; with the call budget, memory and
CPU limits and WASI grants the config gives (``fs_bus.runtime.limits``). It then
calls only the processors' public methods, as a partition worker does, so what a
function does here is what it does on a node; only Kafka is missing: records are
handed over by the caller and what the function emits is collected per output.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from fs_bus.config.model import FunctionConfig, TaskType
from fs_bus.config.validate import parse_config
from fs_bus.errors import BatchFailed, GuestError, InvalidArtifact, InvalidConfig, RecordError
from fs_bus.runtime.base import Emitted
from fs_bus.runtime.framing import Headers, Record
from fs_bus.runtime.limits import limits, wasi_grants
from fs_bus.runtime.wasm import WasmEngine, WasmProcessor
from fs_bus.state.backend import MemoryBackend, SqliteBackend
from fs_bus.state.kv import ComplexKey, decode_key, encode_key

__all__ = ["FunctionHarness", "Input", "Output", "default_cache_dir"]

# Preset state: store name -> key -> value. A key is a simple key (put-state & co.;
# str is taken as UTF-8) or a ComplexKey; a str value is taken as UTF-8.
StateLike = Mapping[str, Mapping[bytes | str | ComplexKey, bytes | str]]


def default_cache_dir() -> Path:
    """Where compiled components (and the Python runtime component) are kept between runs:
    ``$FS_BUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/fs-bus``, else ``~/.cache/fs-bus`` (the
    build scripts' cache directory)."""
    root = os.environ.get("FS_BUS_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fs-bus"
    return Path(root)


@dataclass(frozen=True, slots=True)
class Input:
    """A record to feed the function, as a node would consume it from input ``source_id``.

    ``timestamp`` is in ms since the epoch (None: the record has none); ``offset``
    None takes the next offset of ``(source_id, partition)``, counting from 0.
    """

    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None
    timestamp: int | None = None
    source_id: int = 0
    partition: int = 0
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """A record the function emitted, as a node would produce it: to ``outputs[output]``
    of the config (whose topic is ``topic``), with this key and these headers."""

    output: int
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None


class FunctionHarness:
    """One instance of a function, fed records by hand.

    ``function``: a ``.wasm`` component (``type: processor``), or for ``type: python`` a
    ``.py`` file defining the driver class or the driver class itself. The class is
    ``init_config.class_name`` if the config names one, else the one
    ``FSProcessorDriver`` subclass the file defines.
    ``config``: the function's ``config.yaml`` (a path) or a parsed ``FunctionConfig``.
    ``state``: the kv state the instance starts with, ``{store: {key: value}}``, as if a
    node had restored it from the partition's changelog.
    ``cache_dir``: where compiled components are kept (see :func:`default_cache_dir`).

    Every call raises what a node would see: ``GuestError`` (a trap, an exception),
    ``GuestTimeout`` (past ``processor-runtime.control-timeout-ms``), and for a record
    :class:`~fs_bus.errors.RecordError` with the node's message naming it as
    ``topic[partition]@offset``. After a failure the instance is broken, as on a node
    (which would start a new one from the last checkpoint): make a new harness.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, function: str | os.PathLike[str] | type, config: str | os.PathLike[str] | FunctionConfig, *,
                 state: StateLike | None = None, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.config = config if isinstance(config, FunctionConfig) else _read_config(Path(config), function)
        self.name = self.config.name
        self.outputs: list[Output] = []  # everything emitted so far, in order
        self.watermarks: list[tuple[int, int]] = []  # (output, watermark) the function emitted
        self._offsets: dict[tuple[int, int], int] = {}
        self._checkpoint_id = 0
        self._engine: WasmEngine | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._memory: MemoryBackend | None = None
        self._processor: Any = None
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        granted = limits(self.config)
        preset = _state_entries(state or {})
        try:
            if self.config.type is TaskType.PYTHON and self.config.python_runtime != "wasm":
                from fs_bus.runtime.python import PythonProcessor

                bundle = _python_bundle(function, self.config)
                self._tmp = tempfile.TemporaryDirectory(prefix=f"fs-bus-test-{self.name}-")
                path = Path(self._tmp.name) / "state.sqlite"
                _write_sqlite(path, preset)  # committed, so the function's process reads it at start
                self._processor = PythonProcessor(
                    bundle, dict(self.config.init_config), function_name=self.name, state_path=path,
                    call_timeout_s=granted.call_budget_s, memory_limit_mb=granted.memory_limit_mb or None,
                    cpu_limit_s=granted.cpu_limit_s or None)
            else:
                self._memory = MemoryBackend()
                for store, key, value in preset:
                    self._memory.put(store, key, value)
                self._engine = WasmEngine(cache / "compiled")
                if self.config.type is TaskType.PYTHON:  # python-runtime: wasm
                    self._processor = self._python_in_wasm(function, cache)
                else:
                    self._processor = self._component(Path(function) if not isinstance(function, type) else function)
        except BaseException:
            self.close()
            raise

    # --- loading ----------------------------------------------------------------

    def _component(self, path: Any) -> WasmProcessor:
        if isinstance(path, type):
            raise InvalidArtifact(f"function {self.name!r} has type 'processor': give the path of its .wasm "
                                  f"component, not the class {path.__name__}")
        wasm = _read(path, "component")
        return self._wasm_processor(_sha256(wasm), wasm)

    def _wasm_processor(self, sha256: str, wasm: bytes) -> WasmProcessor:
        assert self._engine is not None and self._memory is not None
        granted = limits(self.config)
        component = self._engine.load(sha256, wasm)
        return WasmProcessor(self._engine, component, dict(self.config.init_config), function_name=self.name,
                             call_timeout_s=granted.call_budget_s, state=self._memory, wasi=wasi_grants(self.config),
                             memory_limit_mb=granted.memory_limit_mb)

    def _python_in_wasm(self, function: Any, cache: Path) -> WasmProcessor:
        from fs_bus.artifacts.python_bundle import unpack
        from fs_bus.runtime.python_wasm import runtime_component

        bundle, _ = unpack(_python_bundle(function, self.config))
        runtime = runtime_component(cache / "python-runtime")
        processor = self._wasm_processor(_sha256(runtime), runtime)
        try:
            processor.exec(bundle.class_name, list(bundle.modules))
        except BaseException:
            processor.close()
            raise
        return processor

    # --- records --------------------------------------------------------------

    def send(self, value: bytes | str | None, *, key: bytes | str | None = None, headers: Headers | None = None,
             timestamp: int | None = None, source_id: int = 0, partition: int = 0) -> list[Output]:
        """Feed one record; return what the function emitted for it (also added to :attr:`outputs`)."""
        return self.send_all([Input(_b(value), _b(key), headers, timestamp, source_id, partition)])

    def send_all(self, records: Iterable[Input | bytes | str]) -> list[Output]:
        """Feed records in order (bytes or str: a value without key), consecutive records of one
        input and partition as one batch, as a node hands them over. Return what they emitted."""
        items = [r if isinstance(r, Input) else Input(_b(r)) for r in records]
        emitted: list[Output] = []
        start = 0
        for i in range(1, len(items) + 1):
            if i == len(items) or (items[i].source_id, items[i].partition) != (items[start].source_id,
                                                                               items[start].partition):
                emitted += self._batch(items[start:i])
                start = i
        return emitted

    def _batch(self, items: list[Input]) -> list[Output]:
        source_id, partition = items[0].source_id, items[0].partition
        topic = self._input_topic(source_id)
        records = []
        for item in items:
            offset = self._offsets.get((source_id, partition), 0) if item.offset is None else item.offset
            self._offsets[(source_id, partition)] = offset + 1
            records.append(Record(item.value, item.key, item.headers,
                                  -1 if item.timestamp is None else item.timestamp, partition, offset))
        where = [f"record {topic}[{partition}]@{r.offset()}" for r in records]
        processor = self._processor
        emitted: list[Output] = []
        try:
            # As a partition worker does: whole records to an engine that takes them, else values.
            if hasattr(processor, "process_records"):
                emitted += self._outputs(processor.process_records(source_id, records), None, where[0])
            else:
                results = processor.process_batch(source_id, [r.value() or b"" for r in records])
                for record, result, at in zip(records, results, where):
                    emitted += self._outputs(result, record.key(), at)
        except BatchFailed as exc:
            keys = [None] if hasattr(processor, "process_records") else [r.key() for r in records]
            for done, key, at in zip(exc.done, keys, where):  # what ran before the failure is produced
                emitted += self._outputs(done, key, at)
            raise RecordError(f"{exc} ({where[exc.index]})", items[exc.index]) from None
        except GuestError as exc:
            if len(records) == 1:
                raise RecordError(f"{exc} ({where[0]})", items[0]) from None
            raise GuestError(f"{exc} (records {topic}[{partition}]@{records[0].offset()}..{records[-1].offset()})") \
                from None
        return emitted

    # --- the other hooks ----------------------------------------------------------

    def watermark(self, watermark: int, *, source_id: int = 0) -> list[Output]:
        """The event time of input ``source_id`` moved to ``watermark`` (ms): ``fs-process-watermark``."""
        self._input_topic(source_id)
        return self._outputs(self._processor.process_watermark(source_id, watermark), None,
                             f"the watermark {watermark} of input {source_id}")

    def checkpoint(self) -> list[Output]:
        """A commit point: ``fs-take-checkpoint`` with the next id (1, 2, ...), then the state made durable."""
        self._checkpoint_id += 1
        return self._outputs(self._processor.take_checkpoint(self._checkpoint_id), None,
                             f"checkpoint {self._checkpoint_id}")

    def custom(self, payload: bytes | str) -> bytes:
        """``fs-custom`` (a driver's ``custom``): the function's answer to ``payload``."""
        answer: bytes = self._processor.custom(_b(payload))
        return answer

    def heartbeat(self) -> bool:
        """``fs-check-heartbeat``: False means a node would replace the instance."""
        return bool(self._processor.check_heartbeat())

    # --- state -----------------------------------------------------------------

    def state(self, store: str | None = None) -> dict[Any, Any]:
        """The kv state as the function sees it now, writes since the last checkpoint
        included: ``{key: value}`` of ``store``, or ``{store: {key: value}}`` of every store.
        A key is the bytes of a simple key (``put-state``), or a ``ComplexKey``."""
        entries: dict[str, dict[bytes | ComplexKey, bytes]] = {}
        if self._memory is not None:
            flush = getattr(self._processor, "flush_state", None)
            if flush is not None:  # the native WebAssembly host caches kv writes
                flush()
            items: Iterable[tuple[str, bytes, bytes | None]] = list(self._memory.items())
        else:
            items = [(c.store, c.key, c.value) for c in self._processor.state_items()]
        for name, key, value in items:
            if value is not None:
                entries.setdefault(name, {})[decode_key(key)] = value
        return entries.get(store, {}) if store is not None else entries

    # --- outputs ---------------------------------------------------------------

    def values(self, output: int = 0) -> list[bytes | None]:
        """The values emitted so far to ``outputs[output]``."""
        return [o.value for o in self.outputs if o.output == output]

    def _outputs(self, emitted: Emitted, key: bytes | None, where: str) -> list[Output]:
        """Emitted records as a node produces them: a ``(target, data)`` record keeps the
        input's key, a ``(target, data, key, headers)`` one has its own."""
        targets = self.config.outputs
        out = []
        for rec in emitted.records:
            target = rec[0]
            if not 0 <= target < len(targets):
                raise GuestError(f"function {self.name!r} emitted to target {target}, but its config has "
                                 f"{len(targets)} output(s) ({where})")
            if len(rec) == 2:
                out.append(Output(target, targets[target].topic, key, rec[1]))
            else:
                out.append(Output(target, targets[target].topic, rec[2], rec[1], rec[3]))  # type: ignore[misc]
        self.outputs += out
        self.watermarks += emitted.watermarks
        return out

    def _input_topic(self, source_id: int) -> str:
        inputs = self.config.inputs
        if not 0 <= source_id < len(inputs):
            raise ValueError(f"function {self.name!r} has {len(inputs)} input(s) (source ids 0..{len(inputs) - 1}); "
                             f"there is no source_id {source_id}")
        return inputs[source_id].topic

    # --- life ------------------------------------------------------------------

    def close(self) -> None:
        """Call the function's close hook, then free the instance (and its process)."""
        processor, self._processor = self._processor, None
        try:
            if processor is not None:
                processor.close()
        finally:
            if self._memory is not None:
                self._memory.close()
                self._memory = None
            if self._engine is not None:
                self._engine.close()
                self._engine = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self) -> FunctionHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- helpers ------------------------------------------------------------------


def _b(data: bytes | str | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path} (build it first?)") from None


def _read_config(path: Path, function: Any) -> FunctionConfig:
    text = _read(path, "config file")
    # A config without `type` is a processor when the function is a .wasm file, else python.
    is_wasm = not isinstance(function, type) and Path(function).suffix == ".wasm"
    try:
        return parse_config(text, default_type=TaskType.PROCESSOR if is_wasm else TaskType.PYTHON)
    except InvalidConfig as exc:
        raise InvalidConfig(f"{path}: {exc}") from None


def _state_entries(state: StateLike) -> list[tuple[str, bytes, bytes]]:
    entries = []
    for store, pairs in state.items():
        if not isinstance(store, str):
            raise TypeError(f"state: store names are str, not {type(store).__name__} ({store!r})")
        for key, value in pairs.items():
            k, v = key if isinstance(key, ComplexKey) else _b(key), _b(value)
            if not isinstance(k, (bytes, ComplexKey)) or not isinstance(v, bytes):
                raise TypeError(f"state[{store!r}]: keys are bytes, str or ComplexKey and values bytes or str, "
                                f"not {key!r}: {value!r}")
            entries.append((store, encode_key(k), v))
    return entries


def _write_sqlite(path: Path, entries: Sequence[tuple[str, bytes, bytes]]) -> None:
    backend = SqliteBackend(path)
    try:
        for store, key, value in entries:
            backend.put(store, key, value)
        backend.checkpoint()
    finally:
        backend.close()


def _python_bundle(function: Any, config: FunctionConfig) -> bytes:
    """The artifact a client would upload for this driver: its module and the project
    modules it imports (``collect_modules``, as ``create_python_function_from_config``)."""
    from fs_bus.client.python_modules import collect_modules

    driver = function if isinstance(function, type) else _driver_class(Path(function), config)
    return collect_modules(driver).pack()


def _driver_class(path: Path, config: FunctionConfig) -> type:
    from fs_bus.api import FSProcessorDriver

    if path.suffix != ".py":
        raise InvalidArtifact(f"function {config.name!r} has type 'python': give the .py file defining its driver "
                              f"class (or the class), not {path}")
    module = _import_file(path)
    wanted = config.init_config.get("class_name")
    if wanted:
        cls = getattr(module, wanted, None)
        if not (inspect.isclass(cls) and issubclass(cls, FSProcessorDriver)):
            raise InvalidArtifact(f"{path} defines no FSProcessorDriver subclass {wanted!r} "
                                  f"(init_config.class_name of function {config.name!r})")
        return cls
    found = [c for c in vars(module).values()
             if inspect.isclass(c) and issubclass(c, FSProcessorDriver) and c.__module__ == module.__name__]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise InvalidArtifact(f"{path} defines {len(found)} FSProcessorDriver subclasses ({names}); name the one "
                              f"to run in init_config.class_name of function {config.name!r}")
    return found[0]


def _import_file(path: Path) -> ModuleType:
    """Import ``path`` as the top-level module of its name, its directory first on
    ``sys.path`` so that its project-local imports resolve (as they will on a node).
    A project-local module already imported (from another directory, by an earlier
    harness in this process) is found where it was first imported from."""
    path = path.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"function file not found: {path}")
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # collect_modules finds the driver's module here
    spec.loader.exec_module(module)
    return module
