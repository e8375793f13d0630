"""How many Kafka clients one process may hold at once, and waiting for one to be freed.

confluent-kafka gives every client (producer, consumer or admin) a thread-local
storage key of its own, from when it is made until the object is freed (closing
it is not enough), and a process has ``PTHREAD_KEYS_MAX`` keys (1 024 on Linux;
the interpreter and libraries hold a dozen). Past that, making a client fails with
"Failed to initialize thread local storage", and clients already running can
break in odd ways (a ``SystemError`` out of ``consume``). A node reaches it with
about 480 busy functions: each holds a consumer and a producer.

So every client fs-bus makes takes a slot from the process's ``BUDGET`` and gives
it back when the object is freed. A client asked for when none is free waits for
one (collecting garbage first: a closed producer whose delivery callback refers
back to its owner is freed only by the cycle collector) and, after ``timeout``,
fails with ``ClientLimitReached``, which says what to do. While anyone waits the
budget is ``short``, and idle function instances park early to make room
(fs_bus.node.parking).
"""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Iterator, TypeVar

from fs_bus.errors import FsBusError

T = TypeVar("T")

# Keys left for the interpreter, wasmtime and other libraries of the process.
RESERVED_KEYS = 64
DEFAULT_WAIT_S = 60.0


def process_keys() -> int:
    """The thread-local keys a process has (``PTHREAD_KEYS_MAX``)."""
    try:
        keys = os.sysconf("SC_THREAD_KEYS_MAX")
    except (ValueError, OSError):
        keys = -1
    return keys if keys > 0 else 1024


def default_limit() -> int:
    return max(16, process_keys() - RESERVED_KEYS)


class ClientLimitReached(FsBusError):
    """No Kafka client could be made: the process holds as many as it can."""


class ClientBudget:
    """A count of the live Kafka clients of a process, bounded by ``limit``."""

    def __init__(self, limit: int | None = None):
        self.limit = default_limit() if limit is None else limit
        self._in_use = 0
        self._waiting = 0
        self._freed = threading.Condition(threading.RLock())
        self._credit = threading.local()  # slots a thread reserved and has not used yet

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return self._waiting

    def short(self) -> bool:
        """Whether a client is being waited for, or none is free."""
        return self._waiting > 0 or self._in_use >= self.limit

    def acquire(self, role: str, timeout: float = DEFAULT_WAIT_S, wait: bool = True) -> None:
        """Take a slot for a client of ``role``: from this thread's ``reserve``, or waiting up
        to ``timeout`` s for one to be freed.

        ``wait=False`` takes one at once, past the limit if need be, from the keys it leaves
        spare: for the few clients a process shares (one admin client per cluster), which
        idle functions need in order to park and so make room, and for short-lived ones."""
        if getattr(self._credit, "n", 0) > 0:
            self._credit.n -= 1
            return
        if not wait:
            with self._freed:
                self._in_use += 1
            return
        self._take(1, role, timeout)

    @contextmanager
    def reserve(self, n: int, role: str, timeout: float = DEFAULT_WAIT_S) -> Iterator[None]:
        """Take ``n`` slots at once for the clients this thread makes inside the block; what
        it does not use goes back at its end. A function instance opening its consumer and
        producers reserves them together: two instances each holding a consumer and waiting
        for a producer would wait for each other."""
        self._take(n, role, timeout)
        self._credit.n = getattr(self._credit, "n", 0) + n
        try:
            yield
        finally:
            left, self._credit.n = self._credit.n, 0
            for _ in range(left):
                self.release()

    def _take(self, n: int, role: str, timeout: float) -> None:
        if n > self.limit:
            raise ClientLimitReached(self.exhausted(role) + f"; it needs {n} at once")
        deadline = time.monotonic() + timeout
        collected = False
        with self._freed:  # reentrant: the finalizers a collection runs here take it too
            self._waiting += 1
            try:
                while self._in_use + n > self.limit:
                    if not collected:
                        collected = True
                        gc.collect()
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ClientLimitReached(self.exhausted(role, timeout))
                    self._freed.wait(min(left, 1.0))
                self._in_use += n
            finally:
                self._waiting -= 1

    def release(self) -> None:
        with self._freed:
            self._in_use = max(0, self._in_use - 1)
            self._freed.notify_all()  # one waiting for several, and one for one, may both fit now

    def track(self, client: T) -> T:
        """Give the slot back when ``client`` is freed (when its key is)."""
        weakref.finalize(client, self.release)
        return client

    def exhausted(self, role: str, waited: float | None = None) -> str:
        after = f" after waiting {waited:.0f} s" if waited else ""
        return (f"no Kafka client ({role}) could be made{after}: this process holds {self._in_use} "
                f"and may hold {self.limit} (each client takes one of the process's {process_keys()} "
                "thread-local keys until it is freed). Idle functions park to make room "
                "(processor-runtime: idle-park-ms); otherwise run fewer busy functions on this node "
                "(start more nodes, or lower their parallelism), or set --max-kafka-clients lower "
                "if other libraries of the process need keys")


BUDGET = ClientBudget()


def set_limit(limit: int) -> None:
    """The node's ``--max-kafka-clients``: at most ``default_limit()``, the keys a process has."""
    if limit < 1:
        raise ValueError("the limit of Kafka clients must be at least 1")
    with BUDGET._freed:  # noqa: SLF001 - the one writer of the limit
        BUDGET.limit = min(limit, default_limit())
        BUDGET._freed.notify_all()  # noqa: SLF001
