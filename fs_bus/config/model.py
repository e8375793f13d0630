"""The function configuration, as plain frozen dataclasses.

The YAML follows the reference project's configs (``input-groups``, ``outputs``,
``init_config``, ...) so that configs written for it run here unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Guarantee(str, enum.Enum):
    """``processing.guarantee``: what a crash may do to the outputs."""

    AT_LEAST_ONCE = "at_least_once"  # replays after a crash: duplicates, never gaps
    EXACTLY_ONCE = "exactly_once"  # outputs, state changes and input offsets in one transaction


class ErrorPolicy(str, enum.Enum):
    """``errors.policy``: what happens to a record user code fails on, after its retries."""

    FAIL = "fail"  # stop the function and report the record (STOP/START retries it)
    SKIP = "skip"  # count it and go on
    DEAD_LETTER = "dead-letter"  # write it to the dead-letter topic with the error, and go on


class TaskType(str, enum.Enum):
    PROCESSOR = "processor"  # a WebAssembly component of the functionstream:core processor world
    PYTHON = "python"  # a Python class (FSProcessorDriver)


@dataclass(frozen=True, slots=True)
class ChannelRuntime:
    """Per input/output tuning keys of the reference configs, given a meaning here.

    ``batch_consume_size`` records are taken from the consumer per poll;
    ``poll_timeout_ms`` is how long one poll may wait; ``channel_capacity`` bounds
    the records buffered between consumer, function and producer (the producer's
    queue); ``sleep_when_full_ms`` is the back-off when that buffer is full.
    """

    channel_capacity: int = 10_000
    batch_consume_size: int = 1000
    poll_timeout_ms: int = 100
    sleep_when_full_ms: int = 10


@dataclass(frozen=True, slots=True)
class KafkaInput:
    bootstrap_servers: str
    topic: str
    group_id: str
    partition: int | None = None  # only this partition of the topic is processed
    properties: dict[str, str] = field(default_factory=dict)  # passed to the consumer as is
    runtime: ChannelRuntime = ChannelRuntime()


@dataclass(frozen=True, slots=True)
class InputGroup:
    inputs: tuple[KafkaInput, ...]


@dataclass(frozen=True, slots=True)
class KafkaOutput:
    bootstrap_servers: str
    topic: str
    partition: int | None = None  # None: the producer's partitioner (by key) decides
    properties: dict[str, str] = field(default_factory=dict)  # passed to the producer as is
    runtime: ChannelRuntime = ChannelRuntime()


# A call budget below this would time out the call machinery itself, not user code.
MIN_CALL_BUDGET_S = 0.1


@dataclass(frozen=True, slots=True)
class ProcessorRuntime:
    """``processor-runtime`` keys. ``max_batch_size`` records are processed between
    two flush-and-commit points; ``control_timeout_ms`` bounds one call into user
    code (its time budget); ``memory_limit_mb`` caps a ``type: python`` function's
    process (its address space) and each WebAssembly instance's linear memory
    (0: no cap); ``cpu_limit_seconds`` caps the CPU time one process of a
    ``type: python`` function may use (0: no cap); ``idle_park_ms`` is how long an
    instance sees no record before it parks (closes its Kafka clients until a record
    comes: ``fs_bus.node.parking``; 0: never); ``max_idle_count`` and ``idle_sleep_ms``
    are accepted for compatibility."""

    # A commit point flushes the outputs and waits for their acknowledgement: at 10 000 records
    # several came per second at full speed, and their stalls were most of the p99 latency.
    # checkpoint_interval_seconds (1 s) comes first below 100 000 records/s.
    max_batch_size: int = 100_000
    max_idle_count: int = 10_000
    idle_sleep_ms: int = 500
    control_timeout_ms: int = 5000
    control_max_retries: int = 3
    memory_limit_mb: int = 0
    cpu_limit_seconds: int = 0
    # The progress watchdog (fs_bus.node.watchdog): partitions with records to process and no
    # progress this long restart the instance from its last commit; 0 turns it off.
    stall_timeout_ms: int = 30_000
    # A minute: a function fed even once a minute keeps its clients, an idle one costs its
    # node one parked thread instead of ~8 (docs/operations.md, density).
    idle_park_ms: int = 60_000

    @property
    def call_budget_s(self) -> float:
        """How long one call into user code may take: ``control_timeout_ms``, at least
        ``MIN_CALL_BUDGET_S`` (a shorter budget would time out the call machinery itself)."""
        return max(MIN_CALL_BUDGET_S, self.control_timeout_ms / 1000)


@dataclass(frozen=True, slots=True)
class WasiDir:
    """A host directory a WebAssembly guest may open, at ``guest`` in its filesystem."""

    host: str
    guest: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class WasiAccess:
    """What a WebAssembly guest may reach through WASI (the ``wasi`` key): nothing by
    default. No network grant exists: sockets are always refused."""

    env: dict[str, str] = field(default_factory=dict)
    dirs: tuple[WasiDir, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    name: str
    type: TaskType
    input_groups: tuple[InputGroup, ...]
    outputs: tuple[KafkaOutput, ...]
    init_config: dict[str, str] = field(default_factory=dict)
    input_selector: str = "round-robin"
    runtime: ChannelRuntime = ChannelRuntime()
    processor_runtime: ProcessorRuntime = ProcessorRuntime()
    use_builtin_event_serialization: bool = False
    enable_checkpoint: bool = False
    checkpoint_interval_seconds: int = 1
    requirements: tuple[str, ...] = ()  # pip requirements of a type: python function
    python_runtime: str = "process"  # process: an OS process per partition; wasm: the Python runtime component
    guarantee: Guarantee = Guarantee.AT_LEAST_ONCE
    commit_interval_ms: int | None = None  # None: at-least-once commits per batch, exactly-once every 100 ms
    error_policy: ErrorPolicy = ErrorPolicy.FAIL
    error_retries: int = 3  # times a failing record is tried again before the policy applies
    dead_letter_topic: str | None = None
    wasi: WasiAccess = WasiAccess()  # what a component (or the wasm Python runtime) may reach
    parallelism: int | None = None  # nodes running it; None: its input partitions (fs_bus.placement)
    placement_labels: dict[str, str] = field(default_factory=dict)  # labels a node needs to run it ("": the key)

    @property
    def inputs(self) -> tuple[KafkaInput, ...]:
        return tuple(i for g in self.input_groups for i in g.inputs)

    @property
    def group_id(self) -> str:
        """The consumer group all of this function's instances join."""
        return self.inputs[0].group_id
