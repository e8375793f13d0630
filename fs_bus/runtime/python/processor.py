"""The :class:`~fs_bus.runtime.base.Processor` of ``type: python`` functions: user code in a child process."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import weakref
from pathlib import Path

from fs_bus.errors import BatchFailed, GuestError, GuestTimeout, InvalidArtifact
from fs_bus.runtime.base import Emitted
from fs_bus.runtime.python import protocol as p
from fs_bus.runtime.python.process import ChildGone, ChildProcess, ChildTimeout, describe_exit
from fs_bus.state.backend import StateError
from fs_bus.state.changelog import Change

# Starting an interpreter and importing the runtime; user code is not running yet.
STARTUP_TIMEOUT_S = 30.0
# Importing the user's modules and init() may take longer than a record may:
# libraries such as pandas take a second or two to import.
INIT_TIMEOUT_FLOOR_S = 10.0
# How long the child may take to exit once it has answered close().
CLOSE_GRACE_S = 1.0


class PythonProcessor:
    """One instance of a driver class, in a process of its own, for one partition worker.

    ``bundle``: the function's artifact (:mod:`fs_bus.artifacts.python_bundle`).
    ``state_path``: the partition's SQLite state file, opened by the child (in
    memory if None); it is committed at every :meth:`take_checkpoint`, so a new
    processor on the same path starts from the last checkpoint.
    ``call_timeout_s``: the budget of each call; past it the child's process group
    is killed and ``GuestTimeout`` raised. Importing the modules and ``init`` get
    at least ``INIT_TIMEOUT_FLOOR_S``.
    ``memory_limit_mb``: the child's address-space limit (``RLIMIT_AS``), set
    before user code is imported.
    ``cpu_limit_s``: the CPU seconds the child may use in its life (``RLIMIT_CPU``,
    also set before user code runs); past it the kernel stops it with SIGXCPU.
    ``log``: where the child's stdout (INFO) and stderr (WARNING) lines go
    (default: logger ``fs_bus.guest.<function_name>``).
    ``python``: the interpreter to run the child with.

    After any failure (an exception in user code, the child dying, a timeout)
    the child is gone and the processor is :attr:`broken`: every later call
    raises ``GuestError``, and the caller makes a new processor to restart.
    One call at a time; :meth:`close` waits for a call in flight.

    ``pid`` is the child's process id, ``start_s`` how long spawning it and
    ``init`` took (about 80 ms for a trivial driver, mostly interpreter start-up).
    """

    def __init__(
        self,
        bundle: bytes,
        init_config: dict[str, str],
        *,
        function_name: str,
        state_path: Path | None,
        call_timeout_s: float = 5.0,
        memory_limit_mb: int | None = None,
        cpu_limit_s: int | None = None,
        log: logging.Logger | None = None,
        python: str = sys.executable,
        changelog: bool = False,
    ) -> None:
        if call_timeout_s <= 0:
            raise ValueError(f"call_timeout_s must be > 0, got {call_timeout_s}")
        if cpu_limit_s is not None and cpu_limit_s <= 0:
            raise ValueError(f"cpu_limit_s must be > 0 or None, got {cpu_limit_s}")
        if memory_limit_mb is not None and memory_limit_mb <= 0:
            raise ValueError(f"memory_limit_mb must be > 0 or None, got {memory_limit_mb}")
        self.function_name = function_name
        self.call_timeout_s = call_timeout_s
        self._broken = False
        self._closed = False
        self._last_checkpoint: int | None = None
        self._lock = threading.Lock()
        self._logger = log or logging.getLogger(f"fs_bus.guest.{function_name}")
        started = time.monotonic()
        try:
            self._child = ChildProcess(python, self._logger, function_name)
        except OSError as exc:
            raise GuestError(f"function {function_name!r}: cannot start a process with {python!r}: {exc}") from None
        self.pid = self._child.pid
        # A processor dropped without close() must not leave its process behind.
        self._finalizer = weakref.finalize(self, self._child.terminate)
        header = json.dumps({
            "config": {str(k): str(v) for k, v in init_config.items()},
            "state_path": None if state_path is None else str(state_path),
            "memory_limit_mb": memory_limit_mb,
            "changelog": changelog,
            "cpu_limit_s": cpu_limit_s,
        }).encode()
        with self._lock:
            reply = self._call(None, "start", STARTUP_TIMEOUT_S)
            if reply.u32() != p.PROTOCOL:
                self._fail()
                raise GuestError(f"function {function_name!r}: its child process speaks another protocol version")
            self._call(p.encode_init(header, bundle), "init", max(call_timeout_s, INIT_TIMEOUT_FLOOR_S)).end()
        self.start_s = time.monotonic() - started

    @property
    def broken(self) -> bool:
        """True after a failure: the child is gone and calls raise ``GuestError``."""
        return self._broken

    # The child does the work while this thread waits on a pipe: several partitions'
    # batches run at once on the node's threads.
    parallel_batches = True

    # --- the Processor protocol ---------------------------------------------------

    def process(self, source_id: int, data: bytes) -> Emitted:
        if type(data) is not bytes:
            data = bytes(data)
        try:
            return self._process(source_id, [data])[0]
        except BatchFailed as exc:
            raise GuestError(str(exc)) from None

    def process_batch(self, source_id: int, records: list[bytes]) -> list[Emitted]:
        if not records:
            return []
        records = [r if type(r) is bytes else bytes(r) for r in records]
        return self._process(source_id, records)

    def process_watermark(self, source_id: int, watermark: int) -> Emitted:
        with self._lock:
            reply = self._call(p.encode_watermark(source_id, watermark), "process_watermark")
            return self._one_emitted(reply)

    def take_checkpoint(self, checkpoint_id: int) -> Emitted:
        """The driver's ``take_checkpoint``, then the child commits the state.

        If either fails nothing is committed and the offsets must not be either:
        user code raising gives ``GuestError``, the state failing ``StateError``.
        """
        with self._lock:
            if self._last_checkpoint is not None and checkpoint_id <= self._last_checkpoint:
                raise ValueError(
                    f"function {self.function_name!r}: checkpoint id {checkpoint_id} "
                    f"does not follow {self._last_checkpoint}; ids must increase"
                )
            reply = self._call(p.encode_checkpoint(checkpoint_id), "take_checkpoint")
            self._last_checkpoint = checkpoint_id
            return self._one_emitted(reply)

    # --- changelog-backed state (the child seals at take_checkpoint, commits at confirm) ---

    def sealed(self) -> list[Change]:
        """The state changes the last :meth:`take_checkpoint` sealed, for the changelog."""
        with self._lock:
            reply = self._call(p.CHANGES, "reading its state changes")
            try:
                return reply.changes()
            except p.ProtocolError as exc:
                raise self._malformed("reading its state changes", exc) from None

    def state_items(self) -> list[Change]:
        """The child's whole state as it is now, writes since the last checkpoint included
        (``fs_bus.testing`` reads it; a node never needs to)."""
        with self._lock:
            reply = self._call(p.STATE, "reading its state")
            try:
                return reply.changes()
            except p.ProtocolError as exc:
                raise self._malformed("reading its state", exc) from None

    def confirm(self, next_offset: int, now_ms: int) -> None:
        """The sealed changes are in the changelog before ``next_offset``: the child commits its state."""
        with self._lock:
            self._call(p.encode_confirm(next_offset, now_ms), "committing its state").end()

    def check_heartbeat(self) -> bool:
        """The driver's ``check_heartbeat``. False once broken: it must be replaced either way."""
        with self._lock:
            if self._broken:
                return False
            reply = self._call(p.HEARTBEAT, "check_heartbeat")
            healthy = reply.u8()
            reply.end()
            return healthy != 0

    def custom(self, payload: bytes) -> bytes:
        with self._lock:
            return self._call(p.encode_custom(bytes(payload)), "custom").rest()

    def close(self) -> None:
        """The driver's ``close``, then the child exits (killed if it takes too long). Idempotent.

        State not checkpointed is dropped. A failure of the driver's ``close`` is logged, not raised.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            child = self._child
            if not self._broken and not child.reaped:
                try:
                    self._call(p.CLOSE, "close", closing=True).results(1)
                except GuestError as exc:
                    self._logger.warning("%s", exc)
            child.reap(grace_s=CLOSE_GRACE_S)
            self._finalizer.detach()

    def __enter__(self) -> PythonProcessor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls ----------------------------------------------------------------------

    def _process(self, source_id: int, records: list[bytes]) -> list[Emitted]:
        with self._lock:
            reply = self._call(p.encode_process(source_id, records), "process", batch=len(records))
            try:
                results = reply.results(len(records))
            except p.ProtocolError as exc:
                raise self._malformed("process", exc) from None
            return results

    def _one_emitted(self, reply: p.Reply) -> Emitted:
        try:
            (emitted,) = reply.results(1)
        except p.ProtocolError as exc:
            raise self._malformed("a call", exc) from None
        return emitted

    def _call(self, body: bytes | None, hook: str, timeout_s: float | None = None, *,
              batch: int | None = None, closing: bool = False) -> p.Reply:
        """One request and its reply; any failure leaves the processor broken (and the child gone)."""
        if self._broken:
            raise GuestError(f"function {self.function_name!r}: instance is broken after a previous failure; "
                             "restart it")
        if self._closed and not closing:
            raise GuestError(f"function {self.function_name!r}: instance is closed")
        budget = self.call_timeout_s if timeout_s is None else timeout_s
        child = self._child
        try:
            raw = child.call(body, budget)
        except ChildTimeout:
            self._fail()
            raise GuestTimeout(
                f"function {self.function_name!r} ran past its {budget:g} s budget in {hook}; "
                f"its process (pid {child.pid}) was killed"
            ) from None
        except ChildGone as exc:
            self._fail()
            raise GuestError(
                f"function {self.function_name!r}: its process (pid {child.pid}) {describe_exit(exc.returncode)} "
                f"in {hook}{self._last_output()}"
            ) from None
        except p.ProtocolError as exc:
            raise self._malformed(hook, exc) from None
        reply = p.Reply(raw)
        try:
            status = reply.u8()
            if status == p.Status.OK:
                return reply
            if status != p.Status.ERROR:
                raise p.ProtocolError(f"unknown reply status {status}")
            failure = reply.failure()
        except p.ProtocolError as exc:
            raise self._malformed(hook, exc) from None
        if failure.kind is p.ErrorKind.MISSING:
            raise GuestError(f"function {self.function_name!r}: {failure.message}")
        self._fail()
        raise self._error(failure, batch)

    def _error(self, failure: p.Failure, batch: int | None) -> Exception:
        name = self.function_name
        if failure.kind is p.ErrorKind.ARTIFACT:
            return InvalidArtifact(f"function {name!r}: {failure.message}")
        where = failure.where
        if batch is not None and batch > 1 and failure.index is not None:
            where = f"{where}, record {failure.index} of a batch of {batch}"
        exception = f"{failure.exc_type}: {failure.message}" if failure.message else failure.exc_type
        if failure.kind is p.ErrorKind.USER:
            message = f"function {name!r} raised {exception} (in {where})"
        elif failure.kind is p.ErrorKind.STATE:
            message = f"function {name!r}: its state failed while {where}: {exception}"
        else:
            message = f"function {name!r}: the fs-bus runtime in its process failed in {where}: {exception}"
        if failure.traceback:
            message += "\n" + failure.traceback
        if failure.kind is p.ErrorKind.STATE:
            return StateError(message)
        if batch is not None and failure.index is not None:
            return BatchFailed(message, failure.index, failure.done)
        return GuestError(message)

    def _malformed(self, hook: str, exc: p.ProtocolError) -> GuestError:
        self._fail()
        return GuestError(f"function {self.function_name!r}: its process sent a malformed reply to {hook} ({exc}); "
                          "it was killed")

    def _fail(self) -> None:
        """Tear the child down: after a failure its state may be half-updated and
        must be rolled back to the last checkpoint, which the process dying does."""
        self._broken = True
        child = self._child
        child.kill()
        child.collect_output(0.5)
        child.reap(grace_s=0)
        self._finalizer.detach()

    def _last_output(self) -> str:
        tail = list(self._child.tail)
        if not tail:
            return " (it wrote nothing to stdout or stderr)"
        return "; its last output lines:\n" + "\n".join(f"  {line}" for line in tail)

