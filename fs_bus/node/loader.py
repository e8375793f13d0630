"""From a function record to something that builds processors: fetch, verify, load.

Artifacts come from the disk cache when their hash still matches, else from
Kafka at the offsets the manifest records; either way the sha256 is checked
before anything runs.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
import threading
from pathlib import Path

from fs_bus.artifacts import store as artifact_store
from fs_bus.artifacts.cache import ArtifactCache
from fs_bus.artifacts.python_bundle import PythonBundle, unpack
from fs_bus.artifacts.signing import TrustedKeys
from fs_bus.config.model import FunctionConfig, TaskType
from fs_bus.control.records import ArtifactKind, FunctionRecord
from fs_bus.errors import InvalidArtifact
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.node.instance import ProcessorFactory
from fs_bus.runtime.wasm import LoadedComponent, WasiGrants, WasmEngine, WasmProcessor
from fs_bus.state.backend import SqliteBackend, StateBackend

log = logging.getLogger(__name__)


class Loader:
    def __init__(self, settings: KafkaSettings, cache: ArtifactCache, engine: WasmEngine, state_dir: Path,
                 venv_dir: Path, engine_cache_dir: Path, trusted: TrustedKeys | None = None):
        self.settings = settings
        self.cache = cache
        self.engine = engine
        self.state_dir = state_dir  # <state_dir>/<function>/<topic>-<partition>.sqlite
        self.venv_dir = venv_dir  # environments for Python functions' requirements
        self.engine_cache_dir = engine_cache_dir  # built runtime components live beside compiled ones
        self._fetch_lock = threading.Lock()  # one artifact download at a time per node
        self.trusted = trusted  # when set, only artifacts signed by one of these keys run

    def artifact(self, record: FunctionRecord) -> bytes:
        manifest = record.artifact
        data = self.cache.get(manifest.sha256)
        if data is not None:
            return data
        with self._fetch_lock:
            consumer = clients.consumer(self.settings, "artifacts", **{"enable.partition.eof": True})
            try:
                data = artifact_store.fetch(consumer, manifest)
            finally:
                consumer.close()
        self.cache.put(manifest.sha256, data)
        log.info("fetched artifact %s (%d bytes) for %s", manifest.sha256[:12], len(data), record.name)
        return data

    def prepare(self, record: FunctionRecord, config: FunctionConfig) -> ProcessorFactory:
        if self.trusted is not None:  # before a byte is fetched
            self.trusted.verify(record.name, record.config_yaml, record.artifact)
        if config.type is TaskType.PYTHON:
            return self._prepare_python(record, config)
        if record.artifact.kind is not ArtifactKind.WASM_COMPONENT:
            raise InvalidArtifact(f"function {record.name!r}: a processor needs a WebAssembly component, "
                                  f"the artifact is {record.artifact.kind.value}")
        component = self.engine.load(record.artifact.sha256, self.artifact(record))
        return self._wasm_factory(record, config, component)

    def _wasm_factory(self, record: FunctionRecord, config: FunctionConfig,
                      component: LoadedComponent) -> ProcessorFactory:
        budget = max(0.1, config.processor_runtime.control_timeout_ms / 1000)
        # Exactly what the config grants; nothing else (see config key `wasi`).
        grants = WasiGrants(env=dict(config.wasi.env), preopens=[(d.host, d.guest) for d in config.wasi.dirs],
                            read_only=frozenset(d.guest for d in config.wasi.dirs if d.read_only))

        def factory(topic: str, partition: int) -> tuple[WasmProcessor, StateBackend]:
            directory = self.function_state_dir(record.name)
            directory.mkdir(parents=True, exist_ok=True)
            state = SqliteBackend(directory / f"{topic}-{partition}.sqlite")
            guest_log = logging.getLogger(f"fs_bus.function.{record.name}.{topic}-{partition}")
            try:
                processor = WasmProcessor(self.engine, component, dict(config.init_config),
                                          function_name=record.name, call_timeout_s=budget, state=state,
                                          log=guest_log, wasi=grants,
                                          memory_limit_mb=config.processor_runtime.memory_limit_mb)
            except BaseException:
                state.close()
                raise
            return processor, state
        return factory

    def _prepare_python(self, record: FunctionRecord, config: FunctionConfig) -> ProcessorFactory:
        if record.artifact.kind is not ArtifactKind.PYTHON_MODULES:
            raise InvalidArtifact(f"function {record.name!r} has type 'python', but its artifact is "
                                  f"{record.artifact.kind.value}, not python modules")
        bundle = self.artifact(record)
        modules, _ = unpack(bundle)  # refuse a broken bundle here, once, not in every partition
        if config.python_runtime == "wasm":
            return self._prepare_python_in_wasm(record, config, modules)
        budget = max(0.1, config.processor_runtime.control_timeout_ms / 1000)
        memory = config.processor_runtime.memory_limit_mb or None
        cpu = config.processor_runtime.cpu_limit_seconds or None

        from fs_bus.runtime.python import PythonProcessor  # only nodes that run Python functions need it
        from fs_bus.runtime.python import venv

        python = sys.executable
        if config.requirements:
            python = venv.ensure(self.venv_dir, config.requirements, record.name)

        def factory(topic: str, partition: int) -> tuple[PythonProcessor, None]:
            directory = self.function_state_dir(record.name)
            directory.mkdir(parents=True, exist_ok=True)
            guest_log = logging.getLogger(f"fs_bus.function.{record.name}.{topic}-{partition}")
            # The state lives in the function's own process, next to the user's code.
            return PythonProcessor(bundle, dict(config.init_config), function_name=record.name,
                                   state_path=directory / f"{topic}-{partition}.sqlite", call_timeout_s=budget,
                                   memory_limit_mb=memory, cpu_limit_s=cpu, log=guest_log, python=python), None
        return factory

    def _prepare_python_in_wasm(self, record: FunctionRecord, config: FunctionConfig,
                                bundle: PythonBundle) -> ProcessorFactory:
        """Run the function's modules inside the Python runtime component: the host hands
        them over with the world's ``fs-exec``, then drives it like any component."""
        from fs_bus.runtime.python_wasm import runtime_component

        runtime = runtime_component(self.engine_cache_dir / "python-runtime")
        component = self.engine.load(hashlib.sha256(runtime).hexdigest(), runtime)
        wasm_factory = self._wasm_factory(record, config, component)

        def factory(topic: str, partition: int) -> tuple[WasmProcessor, StateBackend]:
            processor, state = wasm_factory(topic, partition)
            try:
                processor.exec(bundle.class_name, list(bundle.modules))
            except BaseException:
                processor.close()
                state.close()
                raise
            return processor, state
        return factory

    def function_state_dir(self, name: str) -> Path:
        return self.state_dir / name

    def drop_state(self, name: str) -> None:
        """DROP FUNCTION forgets the function's state on this node."""
        shutil.rmtree(self.function_state_dir(name), ignore_errors=True)
