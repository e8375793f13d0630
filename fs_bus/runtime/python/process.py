"""The parent's end of one child process: spawning, exchanging frames, logging its output, reaping.

Everything a call needs happens in the calling thread, in one ``select`` loop:
writing the request, reading the reply, reading the child's stdout and stderr
(so a child printing a lot never blocks on a full pipe while we wait for its
reply), and the call's deadline. No reader threads, no timer thread, and every
line a call printed is logged before the call returns.

Pipes keep the kernel's default size (64 KiB). Growing them to 1 MiB
(``F_SETPIPE_SZ``) gained under 5 % at 500-record batches, and pipe capacity
counts against a per-user limit (``pipe-user-pages-soft``, 64 MiB): with one
child per partition, big pipes would shrink every later pipe of the node to
one page.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import selectors
import signal
import subprocess
import time
from pathlib import Path

from fs_bus.runtime.python import protocol as p

CHILD_MODULE = "fs_bus.runtime.python.child"
# The fs_bus the parent runs is the one the child must import (it may not be the installed one).
_SOURCE_ROOT = str(Path(__file__).resolve().parents[3])
_READ_CHUNK = 1 << 16
_DRAIN_READS = 16  # a full pipe is 64 KiB; the child flushed before replying
_OUTPUT_TAIL = 20


_PRIVATE_ENV_PREFIX = "FS_BUS_KAFKA_"


class ChildGone(Exception):
    """The child process ended (or closed its end of the protocol) during a call."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(describe_exit(returncode))


class ChildTimeout(Exception):
    """The call's deadline passed before the reply arrived."""


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "closed its end of the protocol pipe"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = " after using up its CPU time (processor-runtime.cpu-limit-seconds)" if name == "SIGXCPU" else ""
        return f"was killed by {name} (signal {-returncode}){why}"
    return f"exited with code {returncode}"


class _Output:
    """One of the child's output streams, logged one record per line."""

    def __init__(self, fd: int, stream: str, level: int, logger: logging.Logger, function_name: str,
                 tail: collections.deque[str], max_line: int = 64 * 1024) -> None:
        self.fd = fd
        self.stream = stream
        self.level = level
        self.logger = logger
        self.function_name = function_name
        self.tail = tail
        self.max_line = max_line
        self.partial = b""
        self.open = True

    def read(self) -> bool:
        """Read once and log the complete lines; False once the pipe is closed."""
        try:
            data = os.read(self.fd, _READ_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self.open = False
            self.flush()
            return False
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self._emit(line)
        if len(self.partial) >= self.max_line:
            self.flush()
        return True

    def drain(self) -> None:
        """Read what the pipe holds now. Bounded: a user thread printing
        without pause must not keep the call from returning."""
        for _ in range(_DRAIN_READS):
            if not self.open or not _readable(self.fd):
                return
            self.read()

    def flush(self) -> None:
        """Log a last line that has no newline yet (it belongs to the call that wrote it)."""
        if self.partial:
            line, self.partial = self.partial, b""
            self._emit(line)

    def _emit(self, line: bytes) -> None:
        for i in range(0, max(len(line), 1), self.max_line):
            text = line[i : i + self.max_line].decode("utf-8", "replace").removesuffix("\r")
            self.tail.append(text)
            self.logger.log(self.level, "%s: %s", self.stream, text,
                            extra={"function_name": self.function_name, "guest_stream": self.stream})


class ChildProcess:
    """One running child: its process (a process group of its own) and its pipes."""

    def __init__(self, python: str, logger: logging.Logger, function_name: str) -> None:
        self.function_name = function_name
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        # Only we hold the write end of the lifeline; the child exits when it reads EOF.
        life_r, life_w = os.pipe()
        # The node's Kafka credentials (FS_BUS_KAFKA_*) stay with the node: user code
        # reaches Kafka only through the records the node hands it.
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV_PREFIX)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_SOURCE_ROOT, env.get("PYTHONPATH"))))
        env["PYTHONIOENCODING"] = "utf-8:backslashreplace"  # a print() of any str never fails
        # glibc gives a thread that mallocs its own arena, reserving 64 MiB of
        # address space, which counts against memory_limit_mb (RLIMIT_AS): with
        # one arena the child's address space is about 22 MiB, with the default
        # about 90 MiB as soon as the parent-watch thread has read once.
        env.setdefault("MALLOC_ARENA_MAX", "1")
        try:
            self.proc = subprocess.Popen(
                # -P: the working directory is not on sys.path (it could shadow bundle modules).
                [python, "-P", "-m", CHILD_MODULE, str(req_r), str(rep_w), str(life_r)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(req_r, rep_w, life_r), start_new_session=True, env=env, close_fds=True,
            )
        except BaseException:
            for fd in (req_r, req_w, rep_r, rep_w, life_r, life_w):
                os.close(fd)
            raise
        for fd in (req_r, rep_w, life_r):
            os.close(fd)
        self.pid = self.proc.pid
        self.req_w, self.rep_r, self.life_w = req_w, rep_r, life_w
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.tail: collections.deque[str] = collections.deque(maxlen=_OUTPUT_TAIL)
        self.outputs = [
            _Output(self.proc.stdout.fileno(), "stdout", logging.INFO, logger, function_name, self.tail),
            _Output(self.proc.stderr.fileno(), "stderr", logging.WARNING, logger, function_name, self.tail),
        ]
        for fd in (req_w, rep_r, *(o.fd for o in self.outputs)):
            os.set_blocking(fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(rep_r, selectors.EVENT_READ, None)
        for out in self.outputs:
            self._selector.register(out.fd, selectors.EVENT_READ, out)
        self._writing = False
        # The reply being read by call().
        self._header = bytearray()
        self._reply: bytearray | None = None
        self._got = 0
        self.reaped = False

    # --- one call -----------------------------------------------------------------

    def call(self, body: bytes | None, timeout: float) -> bytes:
        """Send ``body`` (None: send nothing) and return the reply's body.

        Raises ``ChildTimeout`` when ``timeout`` passes first, ``ChildGone`` when
        the child ends, ``p.ProtocolError`` when the reply is malformed. The
        caller tears the child down after any of them.
        """
        deadline = time.monotonic() + timeout
        pending = memoryview(p.frame(body)) if body is not None else None
        if pending is not None:
            pending = self._write(pending)
        self._header = bytearray()
        self._reply = None
        self._got = 0
        select = self._selector.select
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildTimeout()
            for key, _events in select(remaining):
                out = key.data
                if out is not None:
                    if not out.read():
                        self._selector.unregister(out.fd)
                elif key.fd == self.req_w:
                    assert pending is not None
                    pending = self._write(pending)
                elif self._read_reply():
                    if pending:
                        raise p.ProtocolError("the child replied before it had read the whole request")
                    self._end_call()
                    assert self._reply is not None
                    return bytes(self._reply)

    def _read_reply(self) -> bool:
        """Read what the reply pipe holds; True once the whole reply is in."""
        try:
            while self._reply is None:
                chunk = os.read(self.rep_r, 4 - len(self._header))
                if not chunk:
                    raise self._gone()
                self._header += chunk
                if len(self._header) == 4:
                    self._reply = bytearray(p.frame_length(bytes(self._header)))
            view = memoryview(self._reply)
            while self._got < len(self._reply):
                n = os.readv(self.rep_r, [view[self._got :]])
                if not n:
                    raise self._gone()
                self._got += n
        except BlockingIOError:
            return False
        return True

    def _write(self, pending: memoryview) -> memoryview | None:
        try:
            n = os.write(self.req_w, pending)
        except BlockingIOError:
            n = 0
        except (BrokenPipeError, ConnectionResetError):
            raise self._gone() from None
        rest = pending[n:]
        want = bool(rest)
        if want != self._writing:
            if want:
                self._selector.register(self.req_w, selectors.EVENT_WRITE, None)
            else:
                self._selector.unregister(self.req_w)
            self._writing = want
        return rest if want else None

    def _end_call(self) -> None:
        # The child flushed its output before replying: it is all in the pipes now.
        for out in self.outputs:
            out.drain()
            out.flush()
        if self._writing:
            self._selector.unregister(self.req_w)
            self._writing = False

    def _gone(self) -> ChildGone:
        """The child closed the reply pipe: collect its last words and exit status."""
        self.wait_exited(2.0)
        # Before collecting output: a process the child started may hold the pipes open.
        self.kill()
        self.collect_output(1.0)
        return ChildGone(self.reap(grace_s=0))

    # --- the end ------------------------------------------------------------------

    def collect_output(self, timeout: float) -> None:
        """Log what the child still writes until its pipes close (or ``timeout``)."""
        if self.reaped:
            return
        deadline = time.monotonic() + timeout
        while any(out.open for out in self.outputs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            events = self._selector.select(remaining)
            for key, _ in events:
                out = key.data
                if out is not None and not out.read():
                    self._selector.unregister(out.fd)
            if not events:
                break
        for out in self.outputs:
            out.flush()

    def kill(self) -> None:
        """SIGKILL the child's whole process group (user code may have started processes)."""
        if self.reaped:
            return
        try:
            # The group id stays ours until the child is reaped, even once it has exited.
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self, grace_s: float) -> int:
        """Give the child ``grace_s`` to exit, then kill its group; wait for it; close our pipes."""
        if not self.reaped:
            self.wait_exited(grace_s)
            self.kill()  # also whatever the child started, before the group id can be reused
            self.proc.wait()
            self.reaped = True
            self.close_pipes()
        rc = self.proc.returncode
        assert rc is not None
        return rc

    def wait_exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the child to exit, without reaping it: until
        it is reaped its process group id cannot be reused, so killpg stays safe."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                    return True
            except ChildProcessError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    def close_pipes(self) -> None:
        try:
            self._selector.close()
        except Exception:  # noqa: BLE001, S110
            pass
        for fd in (self.req_w, self.rep_r, self.life_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.req_w = self.rep_r = self.life_w = -1
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def terminate(self) -> None:
        """Last resort (garbage collection, interpreter exit): kill and reap, quietly."""
        if not self.reaped:
            self.kill()
            try:
                self.reap(grace_s=0)
            except Exception:  # noqa: BLE001, S110
                pass



def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])
