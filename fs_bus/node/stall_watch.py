"""The progress watchdog's shell: samples every instance of the node and acts on the verdict.

Runs on a thread of its own, since an instance that is stalled may be stuck on its own
thread (a commit point waiting for acknowledgements that never come). The decisions
are ``fs_bus.node.watchdog``'s; this asks the clusters whether they answer when a stall
is due (an outage is not a stall) and hands restarts to the instance through its
``Progress``, which its waits check.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable, Protocol

from fs_bus.config.model import FunctionConfig
from fs_bus.errors import FsBusError
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.node.progress import Progress
from fs_bus.node.watchdog import Verdict, Watch, judge
from fs_bus.status.records import ObservedState

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 5.0


class Watched(Protocol):
    """What the watchdog needs of a function instance (``fs_bus.node.instance.FunctionInstance``)."""

    name: str
    config: FunctionConfig
    progress: Progress
    state: ObservedState


Probe = Callable[[KafkaSettings, float], None]  # raises when the cluster does not answer


def session_timeout_s(config: FunctionConfig) -> float:
    """The group session timeout of the function's consumer: after an outage, it may take that
    long to find its membership lapsed and rejoin (the watchdog waits for it on top)."""
    ms: object = clients.FUNCTION_CONSUMER_DEFAULTS["session.timeout.ms"]
    for i in config.inputs:
        ms = i.properties.get("session.timeout.ms", ms)
    try:
        return int(str(ms)) / 1000
    except ValueError:  # librdkafka refuses it when the instance opens, with the key's path
        return 0.0


class StallWatch:
    def __init__(self, settings: KafkaSettings, instances: Callable[[], Iterable[Watched]],
                 probe: Probe = clients.probe):
        self._settings = settings
        self._instances = instances
        self._probe = probe
        self._watches: dict[int, tuple[Watched, Watch]] = {}  # id(instance) -> (instance, its watch)

    def run(self, stop: threading.Event, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        while not stop.wait(interval_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the watchdog never takes the node down
                log.exception("progress watchdog failed")

    def tick(self) -> None:
        """Judge every instance once."""
        seen: dict[int, tuple[Watched, Watch]] = {}
        for inst in list(self._instances()):
            known = self._watches.get(id(inst))
            watch = known[1] if known is not None and known[0] is inst else Watch()
            seen[id(inst)] = (inst, self._judge(inst, watch))
        self._watches = seen

    def _judge(self, inst: Watched, watch: Watch) -> Watch:
        if inst.state is ObservedState.STOPPED or inst.progress.asked:
            return watch
        timeout_s = inst.config.processor_runtime.stall_timeout_ms / 1000
        recover_s = session_timeout_s(inst.config)
        decision = judge(watch, inst.progress.sample(), timeout_s, recover_s)
        if decision.verdict is Verdict.PROBE:
            reachable = self._reachable(inst.config)
            if not reachable:
                log.info("function %s: no progress for %.0f s, but its cluster does not answer: an outage, "
                         "not a stall", inst.name, decision.stalled_s)
            decision = judge(watch, inst.progress.sample(reachable), timeout_s, recover_s)
        if decision.verdict in (Verdict.RESTART, Verdict.FAIL):
            log.warning("function %s: %s", inst.name, decision.status)
            inst.progress.request(decision)
        return decision.watch

    def _reachable(self, config: FunctionConfig) -> bool:
        servers = dict.fromkeys([config.inputs[0].bootstrap_servers, *(o.bootstrap_servers for o in config.outputs)])
        try:
            for s in servers:
                self._probe(self._settings.for_servers(s), PROBE_TIMEOUT_S)
        except FsBusError:
            return False
        return True
