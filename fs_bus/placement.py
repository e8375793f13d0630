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


@lru_cache(maxsize=1 << 18)  # placing 10 000 functions again on every membership change
def score(function: str, node_id: str) -> int:
    """The node's rendezvous weight for the function: the same on every machine and Python
    (blake2b, not ``hash()``, which is salted per process)."""
    digest = hashlib.blake2b(f"{function}\x00{node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


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
    eligible = [n for n, node_labels in nodes.items() if matches(node_labels, required)]
    eligible.sort(key=lambda n: (score(function, n), n), reverse=True)
    chosen = tuple(eligible[:wanted])
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
