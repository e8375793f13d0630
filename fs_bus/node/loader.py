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
from fs_bus.config.model import TaskType
from fs_bus.control.records import ArtifactKind, FunctionRecord
from fs_bus.control.spec import FunctionSpec
from fs_bus.errors import InvalidArtifact
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.node.worker import PartitionRuntime, ProcessorFactory
from fs_bus.observability.logs import function_logger
from fs_bus.observability.metrics import NodeMetrics
from fs_bus.runtime.limits import limits, wasi_grants
from fs_bus.runtime.wasm import LoadedComponent, WasmEngine, WasmProcessor
from fs_bus.state.restore import open_durable

log = logging.getLogger(__name__)


class Loader:
    def __init__(self, settings: KafkaSettings, cache: ArtifactCache, engine: WasmEngine, state_dir: Path,
                 venv_dir: Path, engine_cache_dir: Path, namespace: str = "fs-bus",
                 trusted: TrustedKeys | None = None, metrics: NodeMetrics | None = None):
        self.settings = settings
        self.namespace = namespace
        self.cache = cache
        self.engine = engine
        self.state_dir = state_dir  # <state_dir>/<function>/g<generation>/<topic>-<partition>.sqlite
        self.venv_dir = venv_dir  # environments for Python functions' requirements
        self.engine_cache_dir = engine_cache_dir  # built runtime components live beside compiled ones
        self._fetch_lock = threading.Lock()  # one artifact download at a time per node
        self.trusted = trusted  # when set, only artifacts signed by one of these keys run
        self.metrics = metrics
        self._loaded: set[str] = set()  # components this node has loaded (the engine keeps them)

    def artifact(self, record: FunctionRecord) -> bytes:
        manifest = record.artifact
        data = self.cache.get(manifest.sha256)
        if data is not None:
            if self.metrics is not None:
                self.metrics.artifact_cache_hits.inc()
            return data
        if self.metrics is not None:
            self.metrics.artifact_cache_misses.inc()
        with self._fetch_lock:
            # Instances started together miss the cache together: the first fetches, the rest
            # find its bytes here (a node taking over 70 functions of one artifact fetched it
            # 70 times, one after another, half a second each).
            data = self.cache.get(manifest.sha256)
            if data is not None:
                return data
            consumer = clients.end_reader(self.settings, "artifacts")
            try:
                data = artifact_store.fetch(consumer, manifest)
            finally:
                consumer.close()
            self.cache.put(manifest.sha256, data)  # before the next thread looks
        log.info("fetched artifact %s (%d bytes) for %s", manifest.sha256[:12], len(data), record.name)
        return data

    def prepare(self, spec: FunctionSpec) -> ProcessorFactory:
        record, config = spec.record, spec.valid
        if self.trusted is not None:  # before a byte is fetched
            self.trusted.verify(record.name, record.config_yaml, record.artifact)
        if config.type is TaskType.PYTHON:
            return self._prepare_python(spec)
        if record.artifact.kind is not ArtifactKind.WASM_COMPONENT:
            raise InvalidArtifact(f"function {record.name!r}: a processor needs a WebAssembly component, "
                                  f"the artifact is {record.artifact.kind.value}")
        component = self._load(record.artifact.sha256, self.artifact(record))
        return self._wasm_factory(spec, component)

    def _load(self, sha256: str, wasm: bytes) -> LoadedComponent:
        """The engine's component, counted as a compiled-cache hit (memory or disk) or a compilation."""
        component = self.engine.load(sha256, wasm)
        if self.metrics is not None:
            if sha256.lower() in self._loaded:
                self.metrics.compiled_cache_hits.labels("memory").inc()
            elif component.from_cache:
                self.metrics.compiled_cache_hits.labels("disk").inc()
            else:
                self.metrics.compiled_cache_misses.inc()
        self._loaded.add(sha256.lower())
        return component

    def _state_path(self, record: FunctionRecord, topic: str, partition: int) -> Path:
        directory = self.function_state_dir(record.name) / f"g{record.state_generation}"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{topic}-{partition}.sqlite"

    def _restore(self, spec: FunctionSpec, topic: str, partition: int):
        """The partition's local state, caught up with its changelog (on the input's cluster)."""
        record = spec.record
        changelog = spec.changelog_topics(self.namespace)[topic]
        settings = self.settings.for_servers(spec.input_servers)
        state, restored = open_durable(self._state_path(record, topic, partition), settings, changelog, partition)
        if restored.records or restored.discarded:
            log.info("function %s: restored %s:%d from %s (%d records%s) in %.2f s", record.name, topic, partition,
                     changelog, restored.records, ", local copy rebuilt" if restored.discarded else "",
                     restored.seconds)
        return state

    def _wasm_factory(self, spec: FunctionSpec, component: LoadedComponent) -> ProcessorFactory:
        record, config, budget = spec.record, spec.valid, spec.call_budget_s
        grants = wasi_grants(config)  # exactly what the config grants (see config key `wasi`)

        def factory(topic: str, partition: int) -> PartitionRuntime:
            state = self._restore(spec, topic, partition)
            guest_log = function_logger(record.name, topic, partition)
            try:
                processor = WasmProcessor(self.engine, component, dict(config.init_config),
                                          function_name=record.name, call_timeout_s=budget, state=state,
                                          log=guest_log, wasi=grants,
                                          memory_limit_mb=config.processor_runtime.memory_limit_mb)
            except BaseException:
                state.close()
                raise
            position = state.position()
            return PartitionRuntime(processor, state, state, position[0] if position else 0)
        return factory

    def _prepare_python(self, spec: FunctionSpec) -> ProcessorFactory:
        record, config = spec.record, spec.valid
        if record.artifact.kind is not ArtifactKind.PYTHON_MODULES:
            raise InvalidArtifact(f"function {record.name!r} has type 'python', but its artifact is "
                                  f"{record.artifact.kind.value}, not python modules")
        bundle = self.artifact(record)
        modules, _ = unpack(bundle)  # refuse a broken bundle here, once, not in every partition
        if config.python_runtime == "wasm":
            return self._prepare_python_in_wasm(spec, modules)
        granted = limits(config)
        budget = granted.call_budget_s
        memory = granted.memory_limit_mb or None
        cpu = granted.cpu_limit_s or None

        from fs_bus.runtime.python import PythonProcessor  # only nodes that run Python functions need it
        from fs_bus.runtime.python import venv

        python = sys.executable
        if config.requirements:
            python = venv.ensure(self.venv_dir, config.requirements, record.name)

        def factory(topic: str, partition: int) -> PartitionRuntime:
            # Restored here, then handed to the function's own process, which owns it from then on.
            state = self._restore(spec, topic, partition)
            position = state.position()
            path = state.local.path
            state.close()
            guest_log = function_logger(record.name, topic, partition)
            processor = PythonProcessor(bundle, dict(config.init_config), function_name=record.name,
                                        state_path=path, call_timeout_s=budget, memory_limit_mb=memory,
                                        cpu_limit_s=cpu, log=guest_log, python=python, changelog=True)
            return PartitionRuntime(processor, None, processor, position[0] if position else 0)
        return factory

    def _prepare_python_in_wasm(self, spec: FunctionSpec, bundle: PythonBundle) -> ProcessorFactory:
        """Run the function's modules inside the Python runtime component: the host hands
        them over with the world's ``fs-exec``, then drives it like any component."""
        from fs_bus.runtime.python_wasm import runtime_component

        runtime = runtime_component(self.engine_cache_dir / "python-runtime")
        component = self._load(hashlib.sha256(runtime).hexdigest(), runtime)
        wasm_factory = self._wasm_factory(spec, component)

        def factory(topic: str, partition: int) -> PartitionRuntime:
            runtime = wasm_factory(topic, partition)
            try:
                runtime.processor.exec(bundle.class_name, list(bundle.modules))
            except BaseException:
                runtime.processor.close()
                if runtime.state is not None:
                    runtime.state.close()
                raise
            return runtime
        return factory

    def function_state_dir(self, name: str) -> Path:
        return self.state_dir / name

    def drop_other_generations(self, record: FunctionRecord) -> None:
        """State of an older generation (before a reset) is never read again."""
        keep = f"g{record.state_generation}"
        directory = self.function_state_dir(record.name)
        if directory.is_dir():
            for old in directory.iterdir():
                if old.name != keep:
                    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)

    def drop_state(self, name: str) -> None:
        """DROP FUNCTION forgets the function's state on this node."""
        shutil.rmtree(self.function_state_dir(name), ignore_errors=True)
