"""``fs-bus local up|down|status``: a broker and one node in the background, under one directory.

Layout of the directory: ``kafka/`` (the broker's data, ``broker.log``, ``broker.pid``),
``node.log`` and ``node.pid``. Both processes outlive the command that started them.
"""

from __future__ import annotations

import os
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


def up(directory: Path, *, port: int = 9092, namespace: str = "fs-bus", with_node: bool = True,
       say: Say = print) -> str:
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
        _start_node(directory, bootstrap, namespace, say)
    say(f"ready: bootstrap servers {bootstrap}; `fs-bus local down` stops everything")
    return bootstrap


def _start_node(directory: Path, bootstrap: str, namespace: str, say: Say) -> None:
    pid_path, log_path = directory / "node.pid", directory / "node.log"
    pid = _read_pid(pid_path)
    if _pid_alive(pid):
        say(f"node already running (pid {pid})")
        return
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fs_bus", "node", "--bootstrap-servers", bootstrap, "--namespace", namespace,
             "--node-id", "local-1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    pid_path.write_text(str(proc.pid))
    _wait_node_alive(bootstrap, namespace, proc, log_path)
    say(f"node local-1 running (pid {proc.pid}, log {log_path})")


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
    pid = _read_pid(directory / "node.pid")
    if _pid_alive(pid):
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        say(f"node stopped (pid {pid})")
    (directory / "node.pid").unlink(missing_ok=True)
    broker = _broker(directory)
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

    @property
    def ok(self) -> bool:
        return self.broker_running and self.node_running


def observe(directory: Path) -> LocalStatus:
    broker = _broker(directory)
    broker_ok = broker is not None and broker.is_running()
    pid = _read_pid(directory / "node.pid")
    node_ok = _pid_alive(pid)
    return LocalStatus(str(directory), broker_ok, broker.bootstrap_servers if broker_ok else None,
                       broker.pid if broker_ok else None, node_ok, pid if node_ok else None)


def status(directory: Path, *, say: Say = print) -> bool:
    st = observe(directory)
    say(f"broker: {f'running at {st.bootstrap_servers} (pid {st.broker_pid})' if st.broker_running else 'stopped'}")
    say(f"node:   {'running (pid %d)' % st.node_pid if st.node_running else 'stopped'}")
    say(f"dir:    {directory}")
    return st.ok
