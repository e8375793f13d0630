"""The thin Python client: writes function records to the control topic and waits
for the nodes to report that they acted. It needs no wasmtime.

Every call reads the control log to its end first (it is compacted and small), so
it knows what exists and which revision comes next. Each call returns True once
its record is durable (acks=all) and every live node reports the new state, or
once durable with ``wait=False``.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import getpass
import hashlib
import logging
import socket
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence, TypeVar

from fs_bus.artifacts import store as artifact_store
from fs_bus.artifacts.python_bundle import pack
from fs_bus.artifacts.signing import SigningKey
from fs_bus.config.model import FunctionConfig, TaskType
from fs_bus.config.validate import parse_config
from fs_bus.control.records import ArtifactKind, ArtifactManifest, DesiredState, FunctionRecord
from fs_bus.control.spec import FunctionSpec
from fs_bus.control.store import ControlState, read_control, write_record, write_tombstone
from fs_bus.client.placing import awaited, placement_of, placement_row
from fs_bus.client.models import FunctionDescription, FunctionInfo, NodeInfo, ShowFunctionsResult, StartPosition
from fs_bus.client.python_modules import collect_modules
from fs_bus.client.shadows import Shadows
from fs_bus.client.upgrades import Upgrades
from fs_bus.client.uploads import WASM_MAGIC, _python_bundle, _text, check_component
from fs_bus.calls.records import CallRequest, decode_reply, encode_request
from fs_bus.clock import now_ms as _now_ms
from fs_bus.errors import (
    AccessDenied, CallFailed, FsBusError, FunctionAlreadyExists, FunctionFailed, FunctionNotFound, InvalidArtifact,
    InvalidConfig, KafkaUnavailable, NoLiveNodes, WaitTimeout,
)
from fs_bus.kafka import clients, groups
from fs_bus.kafka.clients import produce_durably
from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.partitions import PartitionCounts
from fs_bus.kafka.settings import KafkaSettings, resolve_namespace
from fs_bus.kafka.topics import Topics, delete_topics, ensure_topics
from fs_bus.kafka.types import KafkaException
from fs_bus.placement import Placement
from fs_bus.status import records as status
from fs_bus.status.records import ObservedState, StatusTable
from fs_bus.status.store import StatusReader

ENV_SIGNING_KEY = "FS_BUS_SIGNING_KEY"  # a PEM ed25519 private key file that signs created functions
log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
# A listing asks each function's own cluster for its lag; one that does not answer in
# this time gets an error in its row instead of holding up the rest.
LISTING_TIMEOUT_S = 5.0

if TYPE_CHECKING:
    from fs_client.config import WasmTaskConfig


C = TypeVar("C", bound=type)


def _kafka_errors_translated(cls: C) -> C:
    """Every public method raises ``FsBusError`` subclasses only: a ``KafkaException``
    escaping anything below is translated here, once, by ``clients.translate``."""
    def wrap(method):
        @functools.wraps(method)
        def translated(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except KafkaException as exc:
                raise clients.translate(exc, f"FsClient.{method.__name__}", self.settings.principal) from None
        return translated

    seen: set[str] = set()
    for klass in cls.__mro__[:-1]:  # the mixins' calls too (fs_bus.client.upgrades, .shadows)
        for name, attr in list(vars(klass).items()):
            if not name.startswith("_") and callable(attr) and name not in seen:
                seen.add(name)
                setattr(cls, name, wrap(attr))
    return cls


@_kafka_errors_translated
class FsClient(Upgrades, Shadows):
    """Manage functions on an fs-bus cluster through its Kafka cluster.

    ``FsClient(bootstrap_servers="127.0.0.1:9092")``, or ``FsClient(host=..., port=...)``
    as with the reference client (the address is Kafka's). Use it as a context manager.
    """

    DEFAULT_TIMEOUT = 30.0

    def __init__(self, bootstrap_servers: str | None = None, *, host: str | None = None, port: int | None = None,
                 namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 kafka_config: Mapping[str, str] | None = None, progress: Progress | None = None,
                 signing_key: str | Path | None = None):
        if bootstrap_servers is None and host is not None:
            bootstrap_servers = f"{host}:{port or 9092}"
        self.settings = KafkaSettings.resolve(bootstrap_servers, kafka_config)
        self.namespace = resolve_namespace(namespace)
        self.topics = Topics(self.namespace)
        self.default_timeout = timeout
        self.progress = progress
        self._producer = None
        self._topics_checked = False
        self.user = f"{getpass.getuser()}@{socket.gethostname()}"
        # Records this client creates are signed when it has a key (nodes may demand it).
        key_path = signing_key or os.environ.get(ENV_SIGNING_KEY)
        self._signer = SigningKey.load(key_path) if key_path else None

    # --- context management ---

    def __enter__(self) -> FsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None

    # --- lifecycle calls ---

    def create_function_from_files(self, function_path: str | Path, config_path: str | Path, *,
                                   wait: bool = True, timeout: float | None = None, replace: bool = False,
                                   shadow: bool = False) -> bool:
        """Create a function from a component file and its config file (the reference
        client's call): True once created. :meth:`create_function` returns its name.
        ``replace``: replace the function of that name if it exists (its state and offsets
        kept: docs/operations.md, upgrades); ``shadow``: run the new revision beside it."""
        self.create_function(function_path, config_path, wait=wait, timeout=timeout, replace=replace, shadow=shadow)
        return True

    def create_function(self, function_path: str | Path, config_path: str | Path, *, wait: bool = True,
                        timeout: float | None = None, replace: bool = False, shadow: bool = False) -> str:
        """As :meth:`create_function_from_files`; returns the created function's name."""
        f, c = Path(function_path), Path(config_path)
        for p, what in ((f, "function file"), (c, "config file")):
            if not p.is_file():
                raise FileNotFoundError(f"{what} not found: {p}")
        config_bytes = c.read_bytes()
        if config_bytes[:4] == WASM_MAGIC:
            raise InvalidConfig(
                f"config file {c} looks like a WebAssembly binary (it starts with \\0asm), not YAML; are the "
                f"function and config paths swapped? (function_path: the .wasm, config_path: the .yaml)")
        try:
            config_bytes.decode()
        except UnicodeDecodeError as exc:
            raise InvalidConfig(f"config file {c} is not UTF-8 text ({exc.reason} at byte {exc.start}); a config is "
                                "YAML text") from None
        return self._create_component(f.read_bytes(), config_bytes, wait, timeout, str(f), replace, shadow)

    def create_function_from_bytes(self, function_bytes: bytes, config_content: str | bytes, *,
                                   wait: bool = True, timeout: float | None = None, source: str = "function",
                                   replace: bool = False, shadow: bool = False) -> bool:
        self._create_component(function_bytes, config_content, wait, timeout, source, replace, shadow)
        return True

    def _create_component(self, function_bytes: bytes, config_content: str | bytes, wait: bool,
                          timeout: float | None, source: str, replace: bool = False, shadow: bool = False) -> str:
        """Check and create a ``type: processor`` function; its name."""
        if not isinstance(config_content, (str, bytes)):
            raise TypeError(f"config_content must be str or bytes, not {type(config_content).__name__}")
        looks_wasm = bytes(function_bytes[:4]) == WASM_MAGIC
        config = parse_config(config_content, default_type=TaskType.PROCESSOR if looks_wasm else None)
        if config.type is TaskType.PROCESSOR:
            check_component(bytes(function_bytes), source)
        else:
            raise InvalidArtifact(
                f"function {config.name!r} has type 'python': its code is Python modules, not a .wasm file; "
                "upload it with create_python_function(class_name, modules, config) or "
                "create_python_function_from_config(config, DriverClass). A .wasm component needs type: processor")
        self._create(config, _text(config_content), bytes(function_bytes), ArtifactKind.WASM_COMPONENT, wait, timeout,
                     replace, shadow)
        return config.name

    def create_python_function(self, class_name: str, modules: Sequence[tuple[str, bytes]],
                               config_content: str | bytes, *, wait: bool = True, timeout: float | None = None,
                               packages: Iterable[str] | None = None, replace: bool = False,
                               shadow: bool = False) -> bool:
        """Create a ``type: python`` function from its modules' source.

        ``modules`` are ``(dotted module name, source)`` pairs in import order, the module
        defining ``class_name`` (an ``FSProcessorDriver`` subclass) last. ``packages`` names
        the modules that are packages (``__init__``); by default, those that are the prefix
        of another module's name. A config without ``type`` is ``python``. Everything is
        checked before anything is sent to Kafka.
        """
        bundle, package_set = _python_bundle(class_name, modules, packages)
        if not isinstance(config_content, (str, bytes)):
            raise TypeError(f"config_content must be str or bytes, not {type(config_content).__name__}")
        config = parse_config(config_content, default_type=TaskType.PYTHON)
        if config.type is not TaskType.PYTHON:
            raise InvalidConfig(
                f"function {config.name!r} has type {config.type.value!r}, but create_python_function uploads "
                "Python modules, which need type: python (or no type); a WebAssembly component goes through "
                "create_function_from_bytes", "type")
        return self._create(config, _text(config_content), pack(bundle, package_set), ArtifactKind.PYTHON_MODULES,
                            wait, timeout, replace, shadow)

    def create_python_function_from_config(self, config: WasmTaskConfig | str | bytes, driver_class: type, *,
                                           wait: bool = True, timeout: float | None = None, replace: bool = False,
                                           shadow: bool = False) -> bool:
        """Create a ``type: python`` function running ``driver_class``.

        ``config`` is a ``fs_client.config.WasmTaskConfig`` (from ``WasmTaskBuilder().build()``)
        or YAML text. The driver's module and the project modules it imports are uploaded
        (see ``fs_bus.client.python_modules.collect_modules``).
        """
        if isinstance(config, (str, bytes)):
            config_content = config
        elif callable(getattr(config, "to_yaml", None)):
            config_content = config.to_yaml()
        else:
            raise TypeError(f"config must be a WasmTaskConfig or YAML str/bytes, not {type(config).__name__}")
        collected = collect_modules(driver_class)
        return self.create_python_function(collected.class_name, list(collected.modules), config_content,
                                           wait=wait, timeout=timeout, packages=collected.packages,
                                           replace=replace, shadow=shadow)

    def start_function(self, name: str, *, wait: bool = True, timeout: float | None = None,
                       start_from: StartPosition | str | int | datetime | None = None) -> bool:
        """Start (resume) the function; with ``start_from``, reprocess instead.

        ``start_from`` (``"earliest"``, ``"latest"``, an offset, a ``datetime`` or ISO 8601
        time, or a :class:`StartPosition`) stops the function if it runs, waits until its
        consumer group is empty, moves the group's offsets there on every input partition,
        and starts it again with empty state (a new state generation: new changelogs, the
        old ones deleted), like Kafka Streams' application reset. ``SQL: START FUNCTION f
        FROM EARLIEST``.
        """
        if start_from is not None:
            return self._reprocess(name, StartPosition.parse(start_from), wait, timeout)
        return self._set_state(name, DesiredState.RUNNING, wait, timeout)

    def stop_function(self, name: str, *, wait: bool = True, timeout: float | None = None) -> bool:
        return self._set_state(name, DesiredState.STOPPED, wait, timeout)

    def drop_function(self, name: str, *, wait: bool = True, timeout: float | None = None) -> bool:
        state = self._read_control()
        record = state.table.get(name)
        if record is None:
            raise FunctionNotFound(name)
        write_tombstone(self._producer_(), self.topics.control, name)
        self._forget(state, name)
        # The artifact goes too when no other function uses the same bytes.
        others = {r.artifact.sha256 for n, r in state.table.functions.items() if n != name}
        if record.artifact.sha256 not in others:
            artifact_store.tombstone(self._producer_(), record.artifact)
        if wait:
            self._await(name, lambda st: st is None, "dropped", timeout, record.revision)
        # Its state goes too. (Without wait a node may still be writing its last checkpoint.)
        spec = state.spec(name)
        assert spec is not None
        self._delete_changelogs(spec, record.state_generation)
        return True

    def describe_function(self, name: str, timeout: float | None = None) -> FunctionDescription:
        """Everything about one function: its record, each node's report, its partitions and lag."""
        state = self._read_control()
        rec = state.table.get(name)
        if rec is None:
            raise FunctionNotFound(name)
        table = self._read_status()
        live = table.live_nodes(_now_ms())
        info = _function_info(rec, table.of_function(name), live)
        spec = state.spec(name)
        assert spec is not None
        config = spec.valid
        owners = {label: node for node, labels in info.partitions.items() for label in labels}
        nodes = [{"node": n, "state": st.state.value, "revision": st.revision, "code_revision": st.code_revision,
                  "partitions": list(st.partitions),
                  "error": st.error, "errors": st.errors, "alive": n in live}
                 for n, st in sorted(table.of_function(name).items())]
        lag_error = None
        try:
            lags = self._lag(spec)
        except FsBusError as exc:  # e.g. no ACL to describe its group, or its cluster is out of reach
            lags, lag_error = [], str(exc)
        lag = [{"topic": pl.topic, "partition": pl.partition, "node": owners.get(f"{pl.topic}:{pl.partition}"),
                "committed": pl.committed, "end": pl.end, "lag": pl.lag} for pl in lags]
        changelogs = list(spec.changelog_topics(self.namespace).values())
        placement = placement_row(spec, placement_of(spec, table, _now_ms(), PartitionCounts(self.settings)))
        return FunctionDescription(
            name=name, task_type=rec.task_type, desired=rec.desired_state.value, status=info.status,
            revision=rec.revision, state_generation=rec.state_generation, config_yaml=rec.config_yaml,
            artifact_sha256=rec.artifact.sha256, artifact_size=rec.artifact.size, artifact_kind=rec.artifact.kind.value,
            signed_by=rec.artifact.signed_by, updated_at=rec.updated_at, updated_by=rec.updated_by,
            group_id=config.group_id, guarantee=config.guarantee.value, nodes=nodes, lag=lag, changelogs=changelogs,
            lag_error=lag_error, code_revision=rec.code_revision, reason=rec.reason,
            placement=placement)

    def show_functions(self, filter_pattern: str | None = None, timeout: float | None = None) -> ShowFunctionsResult:
        state = self._read_control()
        table = self._read_status()
        now = _now_ms()
        live = table.live_nodes(now)
        infos = []
        out_of_reach: dict[str, str] = {}  # cluster -> why: asked once per listing, not once per function
        reached: set[str] = set()
        counts = PartitionCounts(self.settings)
        for name in sorted(state.table.functions):
            if filter_pattern and not fnmatch.fnmatchcase(name, filter_pattern):
                continue
            rec = state.table.functions[name]
            info = _function_info(rec, table.of_function(name), live)
            total, why = None, None
            try:
                spec = state.specs[name]
                servers = spec.input_servers
                why = out_of_reach.get(servers)
                if why is None:
                    total = sum(pl.lag for pl in self._lag(spec, probed=servers in reached))
                    reached.add(servers)
            except KafkaUnavailable as exc:
                why = out_of_reach.setdefault(servers, str(exc))
            except FsBusError as exc:  # e.g. no ACL on its group, or an invalid config: show the rest anyway
                why = str(exc)
            placed = placement_of(state.specs[name], table, now, counts).summary()
            infos.append(replace(info, lag=total, lag_error=why, placement=placed))
        nodes = [NodeInfo(hb.node_id, hb.host, hb.pid, hb.version, hb.node_id in live, hb.functions, hb.heartbeat_at,
                          dict(hb.labels), hb.rss_bytes, hb.threads)
                 for hb in sorted(table.nodes.values(), key=lambda h: h.node_id)]
        return ShowFunctionsResult(functions=infos, nodes=nodes)

    def call_function(self, name: str, payload: bytes | str, *, timeout: float | None = None) -> bytes:
        """Call the function's ``fs-custom`` export with ``payload`` and return its answer.

        One running instance answers: the one that owns the function's first input
        partition, with that partition's state.
        """
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        state = self._read_control()
        record = state.table.get(name)
        if record is None:
            raise FunctionNotFound(name)
        if record.desired_state is not DesiredState.RUNNING:
            raise CallFailed(f"function {name!r} is STOPPED; START FUNCTION {name} before calling it")
        wait = self.default_timeout if timeout is None else timeout
        replies = clients.reader(self.settings, "client-calls")
        try:
            # Listen before asking, from the present end: an answer can't come before the question.
            reader = TopicReader(replies, self.topics.replies, from_end=True)
            request = CallRequest(uuid.uuid4().hex, name, data, _now_ms(), _now_ms() + int(wait * 1000))
            produce_durably(self._producer_(), self.topics.calls, name.encode(), encode_request(request), 30)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                for msg in reader.poll(0.2):
                    if msg.key() != request.id.encode():
                        continue
                    reply = decode_reply(msg.value())
                    if not reply.ok:
                        raise CallFailed(f"function {name!r} on node {reply.node_id} ({reply.partition}): "
                                         f"{reply.error}")
                    return reply.payload
        finally:
            replies.close()
        raise WaitTimeout(f"function {name!r}: no instance answered the call within {wait:.0f} s; the instance "
                          "owning its first input partition answers calls (is the function RUNNING with a "
                          "partition assigned? SHOW FUNCTIONS shows the nodes)")

    def download_artifact(self, name: str, *, timeout: float | None = None) -> tuple[ArtifactManifest, bytes]:
        """The function's artifact as the nodes get it (a .wasm component, or the packed
        Python modules), sha256-checked, with its manifest. Reports to ``progress``."""
        record = self._read_control().table.get(name)
        if record is None:
            raise FunctionNotFound(name)
        consumer = clients.end_reader(self.settings, "client-artifacts")
        try:
            data = artifact_store.fetch(consumer, record.artifact, self.default_timeout if timeout is None else timeout,
                                        self.progress)
        finally:
            consumer.close()
        return record.artifact, data

    def function_names(self) -> list[str]:
        """The names of the functions that exist, sorted: the control topic alone (no status, no lag)."""
        return sorted(self._read_control().table.functions)

    def get_function(self, name: str) -> FunctionInfo:
        for info in self.show_functions().functions:
            if info.name == name:
                return info
        raise FunctionNotFound(name)

    # --- internals ---

    def _create(self, config: FunctionConfig, text: str, artifact: bytes, kind: ArtifactKind, wait: bool,
                timeout: float | None, replace: bool = False, shadow: bool = False) -> bool:
        """Upload ``artifact`` (unless the same bytes are there) and write the function's first record
        (or, with ``replace``/``shadow``, its next revision: fs_bus.client.upgrades)."""
        clients.check_properties(config)  # a mistyped Kafka property fails here, not on every node forever
        state = self._read_control()
        if shadow:
            return self._start_shadow(state, config, text, artifact, kind, wait, timeout)
        if config.name in state.table:
            if replace:
                return self._replace(state, config, text, artifact, kind, wait, timeout)
            raise FunctionAlreadyExists(config.name)
        # A signature covers one function's name and config: a manifest re-used from
        # another function never keeps that one's signature.
        manifest = self._signed(config.name, text, self._upload(artifact, kind, state))
        record = FunctionRecord(
            name=config.name, task_type=config.type.value, config_yaml=text, artifact=manifest,
            desired_state=DesiredState.RUNNING, revision=state.max_revision.get(config.name, 0) + 1,
            updated_at=_now_ms(), updated_by=self.user, reason="create")
        self._write_revision(state, None, record)
        if wait:
            self._await_state(record, ObservedState.RUNNING, timeout)
        return True


    def _reprocess(self, name: str, position: StartPosition, wait: bool, timeout: float | None) -> bool:
        state = self._read_control()
        current = state.table.get(name)
        if current is None:
            raise FunctionNotFound(name)
        spec = state.spec(name)
        assert spec is not None
        config = spec.valid
        budget = self.default_timeout if timeout is None else timeout
        if current.desired_state is DesiredState.RUNNING:
            current = current.with_state(DesiredState.STOPPED, updated_at=_now_ms(), updated_by=self.user)
            write_record(self._producer_(), self.topics.control, current)
            try:
                self._await_state(current, ObservedState.STOPPED, budget)
            except NoLiveNodes:
                pass  # nothing runs it; a node that died is still a member until its session times out
        admin = clients.admin(self.settings.for_servers(spec.input_servers))
        groups.wait_empty(admin, config.group_id, max(budget, 15.0))
        topics = spec.input_topics
        groups.reset(admin, config.group_id, groups.offsets_at(admin, topics, position.kind, position.value))
        record = replace(current.with_state(DesiredState.RUNNING, updated_at=_now_ms(), updated_by=self.user),
                         state_generation=current.state_generation + 1)
        write_record(self._producer_(), self.topics.control, record)
        self._delete_changelogs(spec, current.state_generation)
        if wait:
            self._await_state(record, ObservedState.RUNNING, timeout)
        return True

    def _lag(self, spec: FunctionSpec, timeout: float = LISTING_TIMEOUT_S,
             probed: bool = False) -> list[groups.PartitionLag]:
        """The function's lag from its own input cluster, or ``KafkaUnavailable`` within about
        ``timeout``; ``probed``: the cluster answered a moment ago."""
        settings = self.settings.for_servers(spec.input_servers)
        if not probed:
            try:
                clients.probe(settings, timeout)
            except KafkaUnavailable as exc:
                raise KafkaUnavailable(f"function {spec.name!r}: its input cluster: {exc}") from None
        return groups.lag(clients.admin(settings), spec.valid.group_id, spec.input_topics, timeout)

    def _delete_changelogs(self, spec: FunctionSpec, generation: int) -> None:
        if spec.config is None:
            return  # a record no node could run has no changelogs
        names = list(spec.changelog_topics(self.namespace, generation).values())
        settings = self.settings.for_servers(spec.input_servers)
        try:
            clients.probe(settings, LISTING_TIMEOUT_S)
            delete_topics(clients.admin(settings), names)
        except FsBusError as exc:
            # The function's record is what counts, and it is written; the changelogs are
            # garbage now, which an operator can delete (they are named in the warning).
            log.warning("function %r: could not delete its changelogs %s: %s", spec.name, names, exc)

    def _set_state(self, name: str, desired: DesiredState, wait: bool, timeout: float | None) -> bool:
        state = self._read_control()
        current = state.table.get(name)
        if current is None:
            raise FunctionNotFound(name)
        # Idempotent: asking for the state it already has writes nothing new.
        record = current
        if current.desired_state is not desired:
            record = current.with_state(desired, updated_at=_now_ms(), updated_by=self.user)
            write_record(self._producer_(), self.topics.control, record)
        if wait:
            self._await_state(record, ObservedState(desired.value), timeout)
        return True

    def _producer_(self):
        if self._producer is None:
            self._ensure_topics()
            self._producer = clients.control_writer(self.settings)
        return self._producer

    def _ensure_topics(self) -> None:
        if not self._topics_checked:
            admin = clients.admin(self.settings)
            clients.check_reachable(admin, self.settings.bootstrap_servers)
            try:
                ensure_topics(admin, self.topics)
            except AccessDenied:
                # A user need not see every topic of the namespace (a viewer reads only
                # control and status): what this client lacks is refused, by name, on use.
                pass
            self._topics_checked = True

    def _reader(self, topic: str) -> TopicReader:
        self._ensure_topics()
        return TopicReader(clients.reader(self.settings, "client"), topic)

    def _read_control(self) -> ControlState:
        reader = self._reader(self.topics.control)
        try:
            return read_control(reader)
        finally:
            reader.close()

    def _read_status(self) -> StatusTable:
        return StatusReader.read(lambda: self._reader(self.topics.status))

    def _upload(self, data: bytes, kind: ArtifactKind, state: ControlState) -> ArtifactManifest:
        sha = hashlib.sha256(data).hexdigest()
        for manifest in self._kept_manifests(state):
            if manifest.sha256 == sha and manifest.kind is kind:
                return manifest  # content-addressed: the same bytes are already there (a kept revision's too)
        return artifact_store.upload(self._producer_(), self.topics.artifacts, data, kind, self.progress)

    def _await_state(self, record: FunctionRecord, want: ObservedState, timeout: float | None) -> None:
        def done(st: status.FunctionStatus | None) -> bool:
            return st is not None and st.revision >= record.revision and st.state in (want, ObservedState.FAILED)
        spec, counts = FunctionSpec.of(record), PartitionCounts(self.settings)
        self._await(record.name, done, want.value, timeout, record.revision,
                    lambda table: placement_of(spec, table, _now_ms(), counts))

    def _await(self, name: str, done: Callable[[status.FunctionStatus | None], bool], what: str,
               timeout: float | None, revision: int, placed: Callable[[StatusTable], Placement] | None = None) -> None:
        """Follow the status topic until the status for ``name`` of every node it is ``placed`` on
        (None: every live node) satisfies ``done``."""
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        with StatusReader(lambda: self._reader(self.topics.status)).following() as store:
            while True:
                table = store.table
                live = table.live_nodes(_now_ms())
                if not live:
                    raise NoLiveNodes(
                        f"function {name!r}: the record is durable (revision {revision}), but no fs-bus node is "
                        f"alive in namespace {self.namespace!r} to act on it; start one with `fs-bus node` "
                        f"(or `fs-bus local up`)")
                if placed is not None:
                    live = awaited(name, placed(table), what, revision, live)
                statuses = table.of_function(name)
                answered = {n: statuses.get(n) for n in live if done(statuses.get(n))}
                if len(answered) == len(live):
                    failed = {n: (st.error or "failed") for n, st in answered.items()
                              if st is not None and st.state is ObservedState.FAILED}
                    if failed:
                        raise FunctionFailed(name, failed)
                    return
                if time.monotonic() > deadline:
                    missing = sorted(set(live) - set(answered))
                    raise WaitTimeout(
                        f"function {name!r}: the record is durable (revision {revision}), but only "
                        f"{len(answered)} of {len(live)} live node(s) reported {what} in time; waiting on "
                        f"{', '.join(missing)}", answered=len(answered), alive=len(live))
                store.poll(0.2)


def _function_info(rec: FunctionRecord, statuses: dict[str, status.FunctionStatus],
                   live: Mapping[str, status.NodeHeartbeat]) -> FunctionInfo:
    current = {n: st for n, st in statuses.items() if n in live and st.revision >= rec.revision}
    states = {st.state for st in current.values()}
    if ObservedState.FAILED in states:
        observed = ObservedState.FAILED.value
    elif ObservedState.RUNNING in states:
        observed = ObservedState.RUNNING.value
    elif ObservedState.STARTING in states:
        observed = ObservedState.STARTING.value
    elif states == {ObservedState.STOPPED}:
        observed = ObservedState.STOPPED.value
    else:
        observed = "PENDING"  # no live node has acted on this revision yet
    errors = [f"{n}: {st.error}" for n, st in sorted(current.items()) if st.error]
    return FunctionInfo(
        name=rec.name, task_type=rec.task_type, status=observed, desired=rec.desired_state.value,
        revision=rec.revision, code_revision=rec.code_revision, reason=rec.reason,
        nodes=tuple(sorted(n for n, st in current.items() if st.state is ObservedState.RUNNING)),
        partitions={n: st.partitions for n, st in sorted(current.items()) if st.partitions},
        error="; ".join(errors) or None, artifact_sha256=rec.artifact.sha256,
        updated_at=rec.updated_at, updated_by=rec.updated_by)
