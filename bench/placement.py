"""``python -m bench.placement``: many functions on several real node processes.

Starts a broker (or uses ``--bootstrap-servers``), ``--nodes`` ``fs-bus node`` processes
(default heartbeat interval, as an operator runs them), and ``--functions`` copies of
upper.wasm with ``parallelism: 1``, each its own group on one shared 1-partition
topic. Then it reports, from the status topic (what every node reports of itself):

- balance: functions RUNNING per node, max/mean (goal: 100 +- 25 each for 3 x 300);
- CREATE -> RUNNING of ``--creates`` more functions, one after another, next to the others;
- join: a node more; the share of functions that moved (goal <= 30 %), and the time
  until every function runs where placement says;
- kill -9 of the newest node: the functions that moved (only its own?) and the time until
  they are all RUNNING elsewhere (goal < 15 s);
- each node's RSS and threads (from /proc), with no function and at the end.

It measures; it asserts nothing. Everything it starts ends with it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, UPPER_WASM, Children, Deadline, create_topics, log, percentile
from fs_bus.client import FsClient
from fs_bus.kafka import clients
from fs_bus.kafka.log import TopicReader
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import Topics, ensure_topics
from fs_bus.observability.footprint import pid_footprint
from fs_bus.placement import place
from fs_bus.status.records import ObservedState
from fs_bus.status.store import StatusReader


def config(bootstrap: str, ns: str, name: str) -> str:
    return f"""\
name: {name}
type: processor
parallelism: 1
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {ns}-in
        group_id: {ns}-{name}
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {ns}-out
"""


class Cluster:
    """The node processes of one namespace, and the status topic as they report it."""

    def __init__(self, children: Children, bootstrap: str, ns: str, workdir: Path, heartbeat: float):
        self.children, self.bootstrap, self.ns, self.workdir = children, bootstrap, ns, workdir
        self.heartbeat = heartbeat
        self.procs: dict[str, Any] = {}
        settings = KafkaSettings(bootstrap)
        ensure_topics(clients.admin(settings), Topics(ns))
        self.status = StatusReader(lambda: TopicReader(clients.reader(settings, "bench"), Topics(ns).status))

    def start(self, node_id: str) -> None:
        self.procs[node_id] = self.children.start(
            [sys.executable, "-m", "fs_bus", "node", "--bootstrap-servers", self.bootstrap, "--namespace", self.ns,
             "--node-id", node_id, "--cache-dir", str(self.workdir / f"cache-{node_id}"),
             "--heartbeat-interval", str(self.heartbeat)], self.workdir / f"node-{node_id}.log")

    def kill(self, node_id: str) -> None:
        proc = self.procs.pop(node_id)
        proc.kill()
        proc.wait(10)

    def live(self) -> set[str]:
        self.status.poll(0.1)
        return set(self.status.table.live_nodes(int(time.time() * 1000)))

    def running(self) -> dict[str, set[str]]:
        """Function -> the live nodes reporting it RUNNING."""
        live = self.live()
        out: dict[str, set[str]] = {}
        for (fn, node), st in self.status.table.functions.items():
            if node in live and st.state is ObservedState.RUNNING:
                out.setdefault(fn, set()).add(node)
        return out

    def wait_placed(self, names: list[str], node_ids: list[str], deadline: Deadline) -> tuple[float, dict]:
        """Seconds until every function RUNNING exactly where placement over ``node_ids`` puts it."""
        t0 = time.monotonic()
        want = {n: set(place(n, {i: {} for i in node_ids}, parallelism=1).nodes) for n in names}
        while True:
            running = self.running()
            if self.live() == set(node_ids) and all(running.get(n) == want[n] for n in names):
                return time.monotonic() - t0, running
            wrong = sum(1 for n in names if running.get(n) != want[n])
            deadline.check(f"waiting for placement over {node_ids} ({wrong} of {len(names)} not there yet)")
            time.sleep(0.1)

    def footprint(self) -> dict[str, dict[str, float]]:
        return {n: dict(zip(("rss_mb", "threads"), (round(r / 2**20, 1), t)))
                for n, (r, t) in ((n, pid_footprint(p.pid)) for n, p in self.procs.items())}


def balance(running: dict[str, set[str]], node_ids: list[str]) -> dict[str, Any]:
    per = {n: 0 for n in node_ids}
    for nodes in running.values():
        for n in nodes:
            per[n] = per.get(n, 0) + 1
    mean = statistics.fmean(per.values())
    return {"per_node": per, "max_over_mean": round(max(per.values()) / mean, 3) if mean else None}


def run(a: argparse.Namespace, bootstrap: str, workdir: Path, children: Children) -> dict[str, Any]:
    ns = f"pl-{int(time.time())}"
    out: dict[str, Any] = {"nodes": a.nodes, "functions": a.functions, "heartbeat_interval_s": a.heartbeat}
    create_topics(bootstrap, [f"{ns}-in", f"{ns}-out"], 1)
    cluster = Cluster(children, bootstrap, ns, workdir, a.heartbeat)
    ids = [f"n{i + 1}" for i in range(a.nodes)]
    deadline = Deadline(a.timeout, "placement bench")
    with cluster.status.following(), FsClient(bootstrap_servers=bootstrap, namespace=ns, timeout=120) as client:
        for i in ids:
            cluster.start(i)
        while cluster.live() != set(ids):
            deadline.check("waiting for the nodes to beat")
            time.sleep(0.2)
        out["idle_footprint"] = cluster.footprint()
        wasm = UPPER_WASM.read_bytes()
        names = [f"fn-{i:05d}" for i in range(a.functions)]
        t0 = time.monotonic()
        for n in names:
            client.create_function_from_bytes(wasm, config(bootstrap, ns, n), wait=False)
        log(f"{len(names)} functions written in {time.monotonic() - t0:.1f} s; waiting for them to run")
        settle, running = cluster.wait_placed(names, ids, deadline)
        out["all_running_s"] = round(time.monotonic() - t0, 1)
        out["balance"] = balance(running, ids)
        creates = []
        for k in range(a.creates):
            t = time.perf_counter()
            client.create_function_from_bytes(wasm, config(bootstrap, ns, f"extra-{k}"), wait=True)
            creates.append((time.perf_counter() - t) * 1000)
        names += [f"extra-{k}" for k in range(a.creates)]
        out["create_to_running_ms"] = {"n": len(creates), "p50": round(percentile(creates, 50)),
                                       "max": round(max(creates)) if creates else None,
                                       "next_to": a.functions}
        log(f"balance {out['balance']}; CREATE->RUNNING p50 {out['create_to_running_ms']['p50']} ms")
        out["join"], before = _join(cluster, names, ids, deadline)
        out["kill"] = _kill(cluster, names, ids, before, deadline)
        out["footprint"] = cluster.footprint()
    return out


def _join(cluster: Cluster, names, ids, deadline) -> tuple[dict[str, Any], dict]:
    newcomer = f"n{len(ids) + 1}"
    _, before = cluster.wait_placed(names, ids, deadline)  # all where placement says, not a passing moment
    cluster.start(newcomer)
    seconds, after = cluster.wait_placed(names, ids + [newcomer], deadline)
    moved = [n for n in names if after.get(n) != before.get(n)]
    log(f"{newcomer} joined: {len(moved)} of {len(names)} moved, settled in {seconds:.1f} s")
    return {"moved": len(moved), "moved_share": round(len(moved) / len(names), 3), "settled_s": round(seconds, 1),
            "moved_all_to_newcomer": all(after[n] == {newcomer} for n in moved),
            "balance": balance(after, ids + [newcomer])}, after


def _kill(cluster: Cluster, names, ids, before, deadline) -> dict[str, Any]:
    victim = f"n{len(ids) + 1}"
    own = [n for n in names if before.get(n) == {victim}]
    cluster.kill(victim)
    seconds, after = cluster.wait_placed(names, ids, deadline)
    moved = [n for n in names if after.get(n) != before.get(n)]
    log(f"{victim} killed: {len(moved)} moved ({len(own)} were its own), all RUNNING in {seconds:.1f} s")
    return {"victim_functions": len(own), "moved": len(moved), "moved_only_its_own": sorted(moved) == sorted(own),
            "all_running_again_s": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.placement", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--functions", type=int, default=300)
    ap.add_argument("--creates", type=int, default=10, help="functions created one by one (timed) after the rest")
    ap.add_argument("--heartbeat", type=float, default=2.0, help="the nodes' --heartbeat-interval (s)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--bootstrap-servers", default=None, help="use this broker instead of starting one")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    a = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="fs-bus-placement-"))
    children, broker = Children(), None
    try:
        bootstrap = a.bootstrap_servers
        if bootstrap is None:
            from fs_bus.local.broker import BrokerSpec, LocalBroker, free_port

            broker = LocalBroker(BrokerSpec(data_dir=workdir / "kafka", port=free_port(), heap="1g"))
            broker.start(wait_timeout=120.0)
            bootstrap = broker.bootstrap_servers
        result = run(a, bootstrap, workdir, children)
    finally:
        children.stop_all()
        if broker is not None:
            broker.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
