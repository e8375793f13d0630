"""``fs-bus local up|down|status``: a broker and one node in the background, under one directory.

Layout of the directory: ``kafka/`` (the broker's data, ``broker.log``, ``broker.pid``),
``node.log`` and ``node.pid``, ``console.log`` and ``console.pid`` (``fs-bus console``, read-only).
The processes outlive the command that started them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fs_bus.errors import LocalClusterError
from fs_bus.local.broker import BrokerSpec, LocalBroker

Say = Callable[[str], None]
METRICS_PORT_FILE = "node.metrics-port"  # the port the local node serves /metrics on, when it does


def local_dir(explicit: Path | None = None) -> Path:
    d = explicit or Path(os.environ.get("FS_BUS_LOCAL_DIR") or Path.home() / ".fs-bus" / "local")
    return Path(d).expanduser().resolve()


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _broker(directory: Path) -> LocalBroker | None:
    try:
        return LocalBroker.attach(directory / "kafka")
    except LocalClusterError:
        return None


CONSOLE_PORT = 8089


def up(directory: Path, *, port: int = 9092, namespace: str = "fs-bus", with_node: bool = True,
       console_port: int | None = CONSOLE_PORT, say: Say = print, metrics_port: int | None = None) -> str:
    """Start what is not running yet; ``console_port=None``: no console; ``metrics_port``: the
    node serves /metrics there (0: a free port), None: no metrics."""
    directory.mkdir(parents=True, exist_ok=True)
    broker = _broker(directory)
    if broker is not None and broker.is_running():
        say(f"broker already running at {broker.bootstrap_servers} (pid {broker.pid})")
    else:
        broker = LocalBroker(BrokerSpec(data_dir=directory / "kafka", port=port))
        say(f"starting Kafka broker on {broker.bootstrap_servers} (data and logs in {broker.data_dir})")
        t0 = time.monotonic()
        broker.start()
        say(f"broker ready in {time.monotonic() - t0:.1f} s")
    bootstrap = broker.bootstrap_servers
    if with_node:
        _start_node(directory, bootstrap, namespace, say, metrics_port)
        served = _read_pid(directory / METRICS_PORT_FILE)
        say(f"metrics:   http://127.0.0.1:{served}/metrics" if served else
            "metrics:   off (`fs-bus local down`, then `fs-bus local up --metrics-port 9464` serves them)")
        say(f"node log:  {directory / 'node.log'}; a function's own output: `fs-bus logs NAME`")
    if console_port is not None:
        _start_console(directory, bootstrap, namespace, console_port, say)
    say(f"broker log: {broker.log_path}")
    say(f"ready: bootstrap servers {bootstrap}; `fs-bus local down` stops everything")
    return bootstrap


def _start_node(directory: Path, bootstrap: str, namespace: str, say: Say, metrics_port: int | None = None) -> None:
    pid_path, log_path = directory / "node.pid", directory / "node.log"
    pid = _read_pid(pid_path)
    if _pid_alive(pid):
        say(f"node already running (pid {pid})")
        if metrics_port is not None and metrics_port != _read_pid(directory / METRICS_PORT_FILE):
            say("(--metrics-port applies when the node starts: `fs-bus local down` first)")
        return
    if metrics_port == 0:
        from fs_bus.local.broker import free_port

        metrics_port = free_port()  # chosen here, so that it can be said where it is
    metrics = ["--metrics-port", str(metrics_port), "--metrics-address", "127.0.0.1"] if metrics_port else []
    with open(log_path, "ab") as log:
        # The node's own FS_BUS_METRICS_PORT would otherwise serve metrics nobody was told of.
        env = {k: v for k, v in os.environ.items() if k != "FS_BUS_METRICS_PORT"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "fs_bus", "node", "--bootstrap-servers", bootstrap, "--namespace", namespace,
             "--node-id", "local-1", *metrics],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    pid_path.write_text(str(proc.pid))
    metrics_file = directory / METRICS_PORT_FILE
    if metrics_port:
        metrics_file.write_text(str(metrics_port))
    else:
        metrics_file.unlink(missing_ok=True)
    _wait_node_alive(bootstrap, namespace, proc, log_path)
    say(f"node local-1 running (pid {proc.pid}, log {log_path})")


def _start_console(directory: Path, bootstrap: str, namespace: str, port: int, say: Say) -> None:
    """The console, read-only, in the background. A console that cannot start (its port is
    taken) is reported, not fatal: the broker and the node are what development needs."""
    pid_path, log_path = directory / "console.pid", directory / "console.log"
    pid = _read_pid(pid_path)
    if _pid_alive(pid):
        address = console_address(log_path)
        say(f"console already running at {address or '?'} (pid {pid})")
        return
    start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fs_bus", "console", "--bootstrap-servers", bootstrap, "--namespace", namespace,
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        address = console_address(log_path, start)
        if address:
            pid_path.write_text(str(proc.pid))
            say(f"console: {address} (read-only; pid {proc.pid}, log {log_path})")
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        proc.terminate()
    tail = log_path.read_text(errors="replace")[start:].strip().splitlines()[-3:]
    say(f"the console did not start ({' '.join(tail) or 'no output'}); start it with `fs-bus console --port N`")


def console_address(log_path: Path, start: int = 0) -> str | None:
    """The address the console printed in its log (after byte ``start``), if it did."""
    try:
        text = log_path.read_text(errors="replace")[start:]
    except OSError:
        return None
    found = re.findall(r"fs-bus console: (http://\S+)", text)
    return found[-1] if found else None


def _wait_node_alive(bootstrap: str, namespace: str, proc: subprocess.Popen, log_path: Path,
                     timeout: float = 60.0) -> None:
    from fs_bus.client import FsClient

    deadline = time.monotonic() + timeout
    with FsClient(bootstrap_servers=bootstrap, namespace=namespace) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise LocalClusterError(f"the node exited with code {proc.returncode}; its log ends:\n{tail}")
            if any(n.alive and n.node_id == "local-1" for n in client.show_functions().nodes):
                return
            time.sleep(0.3)
    raise LocalClusterError(f"the node did not report alive within {timeout:.0f} s; see {log_path}")


def down(directory: Path, *, purge: bool = False, say: Say = print) -> None:
    console_pid = _read_pid(directory / "console.pid")
    pid = _read_pid(directory / "node.pid")
    broker = _broker(directory)
    if not _pid_alive(console_pid) and not _pid_alive(pid) and not (broker is not None and broker.is_running()):
        say(f"nothing was running (no local broker, node or console in {directory})")
    if console_pid is not None and _pid_alive(console_pid):
        _terminate(console_pid, grace_s=10)
        say(f"console stopped (pid {console_pid})")
    (directory / "console.pid").unlink(missing_ok=True)
    if pid is not None and _pid_alive(pid):
        _terminate(pid, grace_s=30)  # a node flushes its outputs and commits first
        say(f"node stopped (pid {pid})")
    (directory / "node.pid").unlink(missing_ok=True)
    (directory / METRICS_PORT_FILE).unlink(missing_ok=True)
    if broker is not None and broker.is_running():
        broker.stop()
        say("broker stopped")
    if purge and directory.exists():
        shutil.rmtree(directory)
        say(f"removed {directory}")


@dataclass(frozen=True)
class LocalStatus:
    directory: str
    broker_running: bool
    bootstrap_servers: str | None
    broker_pid: int | None
    node_running: bool
    node_pid: int | None
    console_url: str | None = None  # None: not running

    @property
    def ok(self) -> bool:
        return self.broker_running and self.node_running


def observe(directory: Path) -> LocalStatus:
    broker = _broker(directory)
    broker_ok = broker is not None and broker.is_running()
    pid = _read_pid(directory / "node.pid")
    node_ok = _pid_alive(pid)
    console_url = console_address(directory / "console.log") if _pid_alive(_read_pid(directory / "console.pid")) \
        else None
    return LocalStatus(str(directory), broker_ok, broker.bootstrap_servers if broker_ok else None,
                       broker.pid if broker_ok else None, node_ok, pid if node_ok else None, console_url)


def status(directory: Path, *, say: Say = print) -> bool:
    st = observe(directory)
    say(f"broker: {f'running at {st.bootstrap_servers} (pid {st.broker_pid})' if st.broker_running else 'stopped'}")
    say(f"node:   {'running (pid %d)' % st.node_pid if st.node_running else 'stopped'}")
    say(f"console: {st.console_url or 'stopped'}")
    say(f"dir:    {directory}")
    return st.ok


def _terminate(pid: int, *, grace_s: float) -> None:
    """SIGTERM, then SIGKILL if ``pid`` is still alive after ``grace_s``."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
