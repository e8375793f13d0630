"""An instance's progress, as the watchdog sees it: fed by the instance's thread, read by the watchdog's.

The instance says when it processed records (and on which partition), when an output
was acknowledged, when a commit point completed, and which partitions have records
behind; the watchdog samples that (``fs_bus.node.watchdog.Sample``) and, when it finds
the instance stalled, asks it to restart through ``request``. Every wait of the
instance that could outlast a stall (a commit point waiting for acknowledgements, the
loop) calls ``check``, which raises ``Stalled`` once asked.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from fs_bus.errors import Stalled
from fs_bus.node.watchdog import Decision, Sample, Verdict


class Progress:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.at = clock()  # the last progress
        self._lagging: set[str] = set()  # "topic:partition" with records after the consumer's position
        self._uncommitted: set[str] = set()  # processed records not committed yet
        self._asked = threading.Event()
        self._decision: Decision | None = None

    # --- from the instance's thread ---

    def made(self) -> None:
        """Something moved: an output acknowledged, say."""
        self.at = self._clock()

    def processed(self, partition: str) -> None:
        with self._lock:
            self.at = self._clock()
            self._uncommitted.add(partition)

    def committed(self) -> None:
        with self._lock:
            self.at = self._clock()
            self._uncommitted.clear()

    def lagging(self, partitions: Iterable[str]) -> None:
        with self._lock:
            self._lagging = set(partitions)

    def forget(self, partitions: Iterable[str]) -> None:
        """Partitions no longer held: their work is someone else's."""
        with self._lock:
            gone = set(partitions)
            self._lagging -= gone
            self._uncommitted -= gone

    def reset(self) -> None:
        """The instance (re)opened from its last commit: nothing held, the clock starts now."""
        with self._lock:
            self.at = self._clock()
            self._lagging.clear()
            self._uncommitted.clear()
        self._asked.clear()

    def check(self) -> None:
        """Raise ``Stalled`` if the watchdog asked for a restart."""
        if self._asked.is_set():
            decision = self._decision
            assert decision is not None
            raise Stalled(decision.status, fail=decision.verdict is Verdict.FAIL)

    @property
    def asked(self) -> bool:
        return self._asked.is_set()

    # --- from the watchdog's thread ---

    def sample(self, reachable: bool | None = None) -> Sample:
        with self._lock:
            behind = tuple(sorted(self._lagging | self._uncommitted))
            return Sample(self._clock(), behind, self.at, reachable)

    def request(self, decision: Decision) -> None:
        self._decision = decision
        self._asked.set()
