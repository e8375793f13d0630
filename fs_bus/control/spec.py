"""A function's spec: its control record with the config parsed once, and what follows from it.

The control topic holds the config as YAML text, and anyone can write the topic, so
the text is parsed (and validated) again where the record is read: here, once per
record, on the node and in the client alike. A config that does not parse is kept
as ``error`` instead of raised, so the node's reconcile reports it as the
function's state rather than failing inside an action. The names and numbers
derived from the config (changelog topics, the inputs' cluster, the transactional
id, the call budget) are computed here and nowhere else. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from fs_bus.config.model import FunctionConfig
from fs_bus.config.validate import parse_config
from fs_bus.control.records import FunctionRecord
from fs_bus.errors import FsBusError
from fs_bus.state.changelog import changelog_topic

# A call (control hook, fs-custom) never gets less than this, whatever the config says.


@dataclass(frozen=True)
class FunctionSpec:
    """One function record and its parsed config (or why it does not parse)."""

    record: FunctionRecord

    @classmethod
    def of(cls, record: FunctionRecord) -> FunctionSpec:
        return cls(record)

    def succeeded_by(self, record: FunctionRecord) -> FunctionSpec:
        """The spec of ``record``, the next record of this function: a config text that did
        not change (STOP, START, a new artifact) is not parsed again."""
        spec = FunctionSpec(record)
        if record.config_yaml == self.record.config_yaml and "_parsed" in self.__dict__:
            spec.__dict__["_parsed"] = self.__dict__["_parsed"]  # what cached_property would store
        return spec

    @cached_property
    def _parsed(self) -> tuple[FunctionConfig | None, FsBusError | None]:
        # Parsed on first use: a node replaying the control log folds every record,
        # most of them superseded before anyone asks for their config.
        try:
            return parse_config(self.record.config_yaml), None
        except FsBusError as exc:
            return None, exc

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def config(self) -> FunctionConfig | None:
        """The validated config; None when it is invalid (``error`` says why)."""
        return self._parsed[0]

    @property
    def error(self) -> str | None:
        """Why the config is invalid; None when it is valid."""
        error = self._parsed[1]
        return None if error is None else str(error)

    @property
    def valid(self) -> FunctionConfig:
        """The config; raises what parsing it raised (an ``InvalidConfig``) when it is invalid."""
        config, error = self._parsed
        if config is None:
            assert error is not None
            raise error.with_traceback(None)
        return config

    @property
    def input_servers(self) -> str:
        """The cluster of the inputs (the first input's): consumer group, changelogs, dead letters."""
        return self.valid.inputs[0].bootstrap_servers

    @property
    def input_topics(self) -> list[str]:
        return sorted({i.topic for i in self.valid.inputs})

    @property
    def call_budget_s(self) -> float:
        """How long one call into user code may take (``control-timeout-ms``)."""
        return self.valid.processor_runtime.call_budget_s

    def changelog_topics(self, namespace: str, generation: int | None = None) -> dict[str, str]:
        """Each input topic's changelog topic, for the record's state generation (or ``generation``)."""
        gen = self.record.state_generation if generation is None else generation
        return {i.topic: changelog_topic(namespace, self.name, gen, i.topic) for i in self.valid.inputs}

    def transactional_id(self, namespace: str, node_id: str) -> str:
        """Exactly-once: this node's producer id for the function (the ACL prefix is ``fs-bus.<ns>.``)."""
        return f"fs-bus.{namespace}.{self.name}.{node_id}"
