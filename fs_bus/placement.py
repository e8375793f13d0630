"""Where a function runs: rendezvous hashing over the live nodes. Pure.

Every node (and every client) computes the same answer from what all of them read:
the live nodes in ``<ns>.status`` with their labels, and the function's name and
config. Each node gets a score per function, a stable hash of (function, node);
the function runs on the ``parallelism`` eligible nodes with the highest scores
(highest-random-weight hashing). A node joining takes over only the functions for
which it now scores in the top ``parallelism``; a node leaving hands on only its
own. No coordinator, no assignment record: nothing to elect, nothing to lose.

A function's ``placement: {labels: {zone: a, gpu: ""}}`` makes only the nodes
started with those labels eligible (``--label zone=a --label gpu``; an empty value
asks only that the key is there). ``parallelism`` defaults to the partitions of
the function's inputs (more instances than partitions would idle), and is capped
by the eligible live nodes (one instance per node).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Placement:
    """The nodes chosen for one function, best first, and why there are fewer than wanted."""

    nodes: tuple[str, ...]
    wanted: int  # the parallelism asked for: the config's, else the input partitions
    reason: str | None = None  # set when fewer nodes than wanted were found (none: unplaced)

    @property
    def placed(self) -> bool:
        return bool(self.nodes)

    def summary(self) -> str:
        """One cell of SHOW FUNCTIONS: ``n1,n2 (2/2)`` or ``unplaced: no live node with zone=b``."""
        if not self.nodes:
            return f"unplaced: {self.reason or 'no live node'}"
        return f"{','.join(sorted(self.nodes))} ({len(self.nodes)}/{self.wanted})"


_MASK = (1 << 64) - 1


@lru_cache(maxsize=1 << 12)  # the node ids, mostly: a function's is asked once per placement
def _digest(text: str) -> int:
    """64 stable bits of ``text``: blake2b, the same on every machine and Python (not
    ``hash()``, which is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix(x: int) -> int:
    """splitmix64's finalizer: every input bit moves every output bit."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _weight(function_digest: int, node_id: str) -> int:
    return _mix(function_digest ^ _digest(node_id))


def score(function: str, node_id: str) -> int:
    """The node's rendezvous weight for the function. Two digests combined by a mixer, not
    one hash per pair: placing 10 000 functions over 100 nodes is a million weights."""
    return _weight(_digest(function), node_id)


def matches(node_labels: Labels, required: Labels) -> bool:
    """The node has every required label: the key, and the value unless it is empty."""
    return all(k in node_labels and (v == "" or node_labels[k] == v) for k, v in required.items())


def label_text(required: Labels) -> str:
    """``zone=a, gpu`` as a node would be started with them."""
    return ", ".join(k if v == "" else f"{k}={v}" for k, v in sorted(required.items()))


def wanted_parallelism(parallelism: int | None, partitions: int | None) -> int:
    """The config's ``parallelism``, else the input partitions (1 while they are unknown)."""
    if parallelism is not None:
        return max(1, parallelism)
    return max(1, partitions or 1)


def place(function: str, nodes: Mapping[str, Labels], *, parallelism: int | None = None,
          partitions: int | None = None, labels: Labels | None = None) -> Placement:
    """Choose the nodes of ``function`` among the live ``nodes`` (node id -> its labels)."""
    required = labels or {}
    wanted = wanted_parallelism(parallelism, partitions)
    eligible = [n for n, node_labels in nodes.items() if matches(node_labels, required)] if required else list(nodes)
    fd = _digest(function)
    chosen = tuple(heapq.nlargest(wanted, eligible, key=lambda n: (_weight(fd, n), n)))
    where = f"live node with {label_text(required)}" if required else "live node"
    if not chosen:
        return Placement((), wanted, f"no {where}")
    if len(chosen) < wanted:
        return Placement(chosen, wanted, f"{len(chosen)} of {wanted} wanted: only {len(chosen)} {where}"
                                         f"{'s' if len(chosen) != 1 else ''}")
    return Placement(chosen, wanted)


def place_all(functions: Mapping[str, tuple[int | None, int | None, Labels]],
              nodes: Mapping[str, Labels]) -> dict[str, Placement]:
    """``place`` for many functions: name -> (parallelism, partitions, labels)."""
    return {name: place(name, nodes, parallelism=p, partitions=n, labels=lab)
            for name, (p, n, lab) in functions.items()}
