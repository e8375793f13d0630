"""An ``fs-bus node`` process of its own (namespace, node id and cache dir), as an operator runs it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fs_bus.client import FsClient

from bench.common import CaseTimeout, Children, Deadline, tail


class BenchNode:
    def __init__(self, children: Children, bootstrap: str, namespace: str, node_id: str, workdir: Path,
                 cache_dir: Path | None = None):
        self.children = children
        self.bootstrap, self.namespace, self.node_id = bootstrap, namespace, node_id
        self.cache_dir = cache_dir or workdir / f"cache-{node_id}"
        self.log_path = workdir / f"node-{node_id}.log"
        self.proc = None

    def start(self, deadline: Deadline, wait: bool = True) -> BenchNode:
        """Start the node; with ``wait``, return once it reports alive (SHOW FUNCTIONS, which asks
        every function's lag: slow with thousands of functions, so those benches follow the status)."""
        self.proc = self.children.start(
            [sys.executable, "-m", "fs_bus", "node", "--bootstrap-servers", self.bootstrap,
             "--namespace", self.namespace, "--node-id", self.node_id, "--cache-dir", str(self.cache_dir),
             "--heartbeat-interval", "0.5"], self.log_path)
        if not wait:
            return self
        with FsClient(bootstrap_servers=self.bootstrap, namespace=self.namespace) as client:
            while True:
                self.check()
                if any(n.node_id == self.node_id and n.alive for n in client.show_functions().nodes):
                    return self
                deadline.check(f"waiting for node {self.node_id} to report alive")
                time.sleep(0.2)

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"node {self.node_id} exited (code {code}):\n{self.log()}")

    def log(self) -> str:
        return tail(self.log_path)

    def stop(self) -> None:
        if self.proc is not None:
            Children.stop(self.proc, grace=30.0)

    def explain(self, exc: Exception) -> Exception:
        """``exc`` with the tail of this node's log, unless it is a timeout (which keeps its partial figures)."""
        if isinstance(exc, CaseTimeout) or "node log" in str(exc):
            return exc
        return RuntimeError(f"{type(exc).__name__}: {exc}\n--- node {self.node_id} log (tail) ---\n{self.log()}")

    def client(self, timeout: float = 60.0) -> FsClient:
        return FsClient(bootstrap_servers=self.bootstrap, namespace=self.namespace, timeout=timeout)
