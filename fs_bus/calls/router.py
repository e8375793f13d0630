"""Routing ``fs-custom`` calls: from ``<ns>.calls`` to the one instance that answers them.

Every node reads every call; each hands it to its instance of the function, and
only the instance owning the function's *call partition* (the lowest partition it
may process of its first input) keeps it, so exactly one instance answers, with
that partition's state. The call waits in that instance's inbox until its thread
is between batches: user code runs on the instance's thread only.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from typing import Callable, Protocol

from fs_bus.calls.records import CallRequest, decode_request
from fs_bus.clock import now_ms
from fs_bus.config.model import FunctionConfig
from fs_bus.errors import FsBusError
from fs_bus.kafka.types import Message

log = logging.getLogger(__name__)


def call_partition(config: FunctionConfig) -> tuple[str, int]:
    """The input partition whose owner answers the function's calls."""
    first = config.inputs[0]
    return first.topic, first.partition if first.partition is not None else 0


class Callee(Protocol):
    def submit_call(self, request: CallRequest) -> bool: ...


def route(msg: Message, callee: Callable[[str], Callee | None], node_id: str) -> None:
    """Hand the call record ``msg`` to this node's instance of its function, if it has one."""
    try:
        request = decode_request(msg.value())
    except FsBusError as exc:
        log.warning("node %s: skipped call record %s[%d]@%d: %s", node_id, msg.topic(), msg.partition(),
                    msg.offset(), exc)
        return
    instance = callee(request.function)
    if instance is not None:
        instance.submit_call(request)


class CallInbox:
    """An instance's calls, queued by the node's thread and taken by the instance's."""

    def __init__(self, config: FunctionConfig):
        self.partition = call_partition(config)
        self._queue: queue.SimpleQueue[CallRequest] = queue.SimpleQueue()

    def offer(self, request: CallRequest, owns_partition: bool) -> bool:
        """Queue ``request`` if the instance owns the call partition; say whether it did."""
        if owns_partition:
            self._queue.put(request)
        return owns_partition

    def take(self) -> Iterator[CallRequest]:
        """The queued calls whose callers still wait for an answer."""
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                return
            if request.deadline >= now_ms():  # else the caller has given up
                yield request
