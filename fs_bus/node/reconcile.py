"""The reconcile diff: desired table vs. what this node runs, as a list of actions.

Level-triggered, as a Kubernetes controller: it looks at the whole of both sides,
never at the event that woke it, so running it twice gives nothing new to do and a
missed event is healed by the next pass. Pure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Collection, Mapping

from fs_bus.control.records import DesiredState, FunctionRecord
from fs_bus.status.records import ObservedState


@dataclass(frozen=True, slots=True)
class Observed:
    """What the node has done about one function: the record it acted on and the outcome."""

    record: FunctionRecord
    state: ObservedState

    @property
    def active(self) -> bool:
        return self.state in (ObservedState.STARTING, ObservedState.RUNNING)


class Verb(str, enum.Enum):
    START = "start"  # build an instance and run it
    STOP = "stop"  # close the instance, keep the group's offsets
    RESTART = "restart"  # the code or config changed under a running instance
    ACKNOWLEDGE = "acknowledge"  # nothing to run or stop; record the new revision
    REMOVE = "remove"  # dropped: close what runs and forget the function
    UNPLACE = "unplace"  # placed on other nodes now: close what runs (committing), keep the state


@dataclass(frozen=True, slots=True)
class Action:
    verb: Verb
    name: str
    record: FunctionRecord | None  # None for REMOVE


def reconcile(desired: Mapping[str, FunctionRecord], observed: Mapping[str, Observed],
              here: Collection[str] | None = None) -> list[Action]:
    """The actions that make ``observed`` what ``desired`` asks, for the functions placed
    on this node (``here``; None: all of them). A function placed elsewhere is let go."""
    actions: list[Action] = []
    for name in sorted(desired):
        rec = desired[name]
        obs = observed.get(name)
        if here is not None and name not in here:
            if obs is not None:
                actions.append(Action(Verb.UNPLACE, name, rec))
            continue
        if obs is not None and obs.record == rec:
            continue  # already acted on exactly this record (a FAILED one waits for a new record)
        want_running = rec.desired_state is DesiredState.RUNNING
        if obs is None or not obs.active:
            verb = Verb.START if want_running else Verb.ACKNOWLEDGE
        elif not want_running:
            verb = Verb.STOP
        elif obs.record.spec_key != rec.spec_key:
            verb = Verb.RESTART
        else:
            verb = Verb.ACKNOWLEDGE
        actions.append(Action(verb, name, rec))
    for name in sorted(set(observed) - set(desired)):
        actions.append(Action(Verb.REMOVE, name, None))
    return actions
