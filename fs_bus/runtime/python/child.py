"""The child process of a ``type: python`` function: ``python -m fs_bus.runtime.python.child REQ REP LIFE``.

One per partition worker. It reads requests from file descriptor ``REQ`` and
writes replies to ``REP`` (frames of :mod:`fs_bus.runtime.python.protocol`), runs
the user's driver class against the partition's state, which it opens itself
(kv calls are then plain function calls, not messages), and exits when ``LIFE``
reports end of file: the parent is gone, even if user code is stuck in a loop.

Its stdout and stderr are the user's: ``print``, ``logging`` and C code writing
to descriptor 1 or 2 land in the parent's log, and cannot corrupt the protocol,
which runs on other pipes. (Code that sets out to write to the protocol pipes
can: this is isolation from crashes, not a sandbox. The parent parses replies
strictly, so the worst it can do is fail its own call.)
"""

from __future__ import annotations

import faulthandler
import importlib
import io
import json
import os
import resource
import sys
import threading
import traceback
from types import TracebackType

from fs_bus.api import Context, FSProcessorDriver
from fs_bus.artifacts.python_bundle import unpack
from fs_bus.errors import InvalidArtifact
from fs_bus.runtime.python import protocol as p
from fs_bus.runtime.python.importer import BundleImporter
from fs_bus.state.backend import MemoryBackend, SqliteBackend, StateBackend, StateError
from fs_bus.state.changelog import Change, ChangelogBackend

TRACEBACK_TAIL_LINES = 16
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


class _Pipes:
    """Blocking frame I/O on the two protocol descriptors."""

    def __init__(self, req_fd: int, rep_fd: int) -> None:
        self._in = io.FileIO(req_fd, "rb", closefd=False)
        self._out = rep_fd

    def _read_exactly(self, n: int) -> bytes | None:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self._in.readinto(view[got:])
            if not k:
                return None  # end of file: the parent closed its end
            got += k
        return bytes(buf)

    def recv(self) -> bytes | None:
        header = self._read_exactly(4)
        if header is None:
            return None
        length = p.frame_length(header)
        return self._read_exactly(length) if length else b""

    def send(self, body: bytes) -> None:
        view = memoryview(p.frame(body))
        while view:
            view = view[os.write(self._out, view):]


class _RuntimeContext(Context):
    """The runtime's side of the driver's context: its outputs as protocol columns.

    A batch reads the lengths of the output lists after each record instead of
    taking an ``Emitted`` per record: at 500 records a batch that is a third of
    the child's time for a trivial driver.
    """

    def output_ends(self) -> tuple[int, int]:
        return len(self._records), len(self._watermarks)

    def take_outputs(self, record_ends: list[int], watermark_ends: list[int]) -> p.Outputs:
        outputs = p.Outputs(record_ends, watermark_ends, self._records, self._watermarks)
        self._records = []
        self._watermarks = []
        return outputs

    def take_one_call(self) -> p.Outputs:
        return self.take_outputs([len(self._records)], [len(self._watermarks)])


class _Runtime:
    """The driver instance, its context and the partition's state, and what each request does to them."""

    def __init__(self) -> None:
        self.driver: FSProcessorDriver | None = None
        self.ctx: _RuntimeContext | None = None
        self.state: StateBackend | None = None

    # --- start ------------------------------------------------------------------

    def start(self, body: bytes) -> bytes:
        header_json, bundle_bytes = p.decode_init(body)
        header = json.loads(header_json)
        config: dict[str, str] = header["config"]
        try:
            state_path = header["state_path"]
            self.state = MemoryBackend() if state_path is None else SqliteBackend(state_path)
            if header.get("changelog"):
                # The parent restored the file; writes are sealed at CHECKPOINT and
                # committed at CONFIRM, once the changelog holds them.
                self.state = ChangelogBackend(self.state)
        except StateError as exc:
            return self.failure(p.ErrorKind.STATE, exc, "opening its state")
        limit_mb = header["memory_limit_mb"]
        if limit_mb is not None:
            # Before any user code runs; the hard limit too, so user code cannot lift it.
            limit = int(limit_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        cpu_s = header.get("cpu_limit_s")
        if cpu_s is not None:
            # SIGXCPU at the soft limit ends the process (its default action); the hard
            # limit a second later is SIGKILL for code that catches SIGXCPU.
            resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_s), int(cpu_s) + 1))
        try:
            bundle, packages = unpack(bundle_bytes)
        except InvalidArtifact as exc:
            return self.failure(p.ErrorKind.ARTIFACT, exc, "reading its bundle")
        BundleImporter(bundle, packages).install()
        try:
            import fs_api  # noqa: F401 - user code imports it under this name
        except ImportError:
            sys.modules["fs_api"] = sys.modules["fs_bus.api"]
        for name, _source in bundle.modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - whatever user code raises is reported
                return self.failure(p.ErrorKind.USER, exc, f"importing module {name!r}")
        module_name = bundle.entry_module
        cls = getattr(sys.modules[module_name], bundle.class_name, None)
        if cls is None:
            return self._artifact(f"module {module_name!r} defines no {bundle.class_name!r}")
        if not (isinstance(cls, type) and issubclass(cls, FSProcessorDriver)):
            return self._artifact(
                f"{bundle.class_name!r} in module {module_name!r} is not a subclass of FSProcessorDriver; "
                f"define it as `class {bundle.class_name}(FSProcessorDriver)` (from fs_api import FSProcessorDriver)"
            )
        if getattr(cls, "__abstractmethods__", None):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            return self._artifact(f"class {bundle.class_name!r} does not define {missing}()")
        self.ctx = _RuntimeContext(config, self.state)
        try:
            self.driver = cls()
        except Exception as exc:  # noqa: BLE001
            return self.failure(p.ErrorKind.USER, exc, f"{bundle.class_name}()")
        try:
            self.driver.init(self.ctx, dict(config))
        except Exception as exc:  # noqa: BLE001
            return self.failure(p.ErrorKind.USER, exc, "init")
        # What init emitted stays in the context and goes out with the first record.
        return p.ok()

    # --- requests ---------------------------------------------------------------

    def handle(self, body: bytes) -> bytes:
        op = body[0]
        driver, ctx = self.driver, self.ctx
        assert driver is not None and ctx is not None
        if op == p.Op.PROCESS:
            source_id, records = p.decode_process(body)
            return self.process(source_id, records)
        if op == p.Op.WATERMARK:
            source_id, watermark = p.decode_u32_u64(body)
            try:
                driver.process_watermark(ctx, source_id, watermark)
            except Exception as exc:  # noqa: BLE001
                return self.failure(p.ErrorKind.USER, exc, "process_watermark")
            return p.ok_results(ctx.take_one_call())
        if op == p.Op.CHECKPOINT:
            checkpoint_id = p.decode_u64(body)
            try:
                driver.take_checkpoint(ctx, checkpoint_id)
            except Exception as exc:  # noqa: BLE001
                return self.failure(p.ErrorKind.USER, exc, "take_checkpoint")
            try:
                assert self.state is not None
                self.state.checkpoint()
            except StateError as exc:
                return self.failure(p.ErrorKind.STATE, exc, "committing its state")
            return p.ok_results(ctx.take_one_call())
        if op == p.Op.CHANGES:
            if not isinstance(self.state, ChangelogBackend):
                raise ValueError("CHANGES asked of a state without a changelog")
            return p.encode_changes(self.state.sealed())
        if op == p.Op.STATE:
            assert self.state is not None
            return p.encode_changes([Change(store, key, value) for store, key, value in self.state.items()])
        if op == p.Op.CONFIRM:
            if not isinstance(self.state, ChangelogBackend):
                raise ValueError("CONFIRM asked of a state without a changelog")
            next_offset, now_ms = p.decode_confirm(body)
            try:
                self.state.confirm(next_offset, now_ms)
            except StateError as exc:
                return self.failure(p.ErrorKind.STATE, exc, "committing its state")
            return p.ok()
        if op == p.Op.HEARTBEAT:
            try:
                healthy = driver.check_heartbeat(ctx)
            except Exception as exc:  # noqa: BLE001
                return self.failure(p.ErrorKind.USER, exc, "check_heartbeat")
            return p.ok(bytes((1 if healthy else 0,)))
        if op == p.Op.CUSTOM:
            if type(driver).custom is FSProcessorDriver.custom:
                message = f"{type(driver).__name__} does not define custom()"
                return p.error(p.Failure(p.ErrorKind.MISSING, None, "", message, "", "custom"))
            try:
                result = driver.custom(body[1:])
                if type(result) is not bytes:
                    if not isinstance(result, (bytes, bytearray, memoryview)):
                        raise TypeError(f"custom() must return bytes, not {type(result).__name__}")
                    result = bytes(result)
            except Exception as exc:  # noqa: BLE001
                return self.failure(p.ErrorKind.USER, exc, "custom")
            return p.ok(result)
        if op == p.Op.CLOSE:
            try:
                driver.close(ctx)
            except Exception as exc:  # noqa: BLE001
                return self.failure(p.ErrorKind.USER, exc, "close")
            return p.ok_results(ctx.take_one_call())
        raise ValueError(f"unknown request op {op}")

    def process(self, source_id: int, records: list[bytes]) -> bytes:
        driver, ctx = self.driver, self.ctx
        assert driver is not None and ctx is not None
        process = driver.process
        ends = ctx.output_ends
        record_ends: list[int] = []
        watermark_ends: list[int] = []
        for i, data in enumerate(records):
            try:
                process(ctx, source_id, data)
            except Exception as exc:  # noqa: BLE001
                # The failed record's outputs are dropped with the rest.
                done = ctx.take_outputs(record_ends, watermark_ends).first(i)
                return self.failure(p.ErrorKind.USER, exc, "process", index=i, done=done)
            r, w = ends()
            record_ends.append(r)
            watermark_ends.append(w)
        return p.ok_results(ctx.take_outputs(record_ends, watermark_ends))

    def close_state(self) -> None:
        if self.state is not None:
            try:
                self.state.close()  # rolls back what was not checkpointed
            except StateError as exc:
                print(f"fs-bus: closing the state failed: {exc}", file=sys.stderr)

    # --- failures -----------------------------------------------------------------

    def failure(self, kind: p.ErrorKind, exc: BaseException, where: str, *,
                index: int | None = None, done: p.Outputs | None = None) -> bytes:
        exc_type = type(exc).__qualname__
        module = type(exc).__module__
        if module not in ("builtins", "__main__"):
            exc_type = f"{module}.{exc_type}"
        try:
            message = str(exc)
        except Exception:  # noqa: BLE001 - a user __str__ that raises
            message = f"<{type(exc).__name__} whose str() failed>"
        return p.error(p.Failure(kind, index, exc_type, message, _traceback_tail(exc), where), done)

    def _artifact(self, message: str) -> bytes:
        return p.error(p.Failure(p.ErrorKind.ARTIFACT, None, "", message, "", "loading its class"))


def _traceback_tail(exc: BaseException) -> str:
    """The last lines of the traceback, starting at the first frame outside the runtime."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _is_runtime(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    lines = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n").splitlines()
    if len(lines) > TRACEBACK_TAIL_LINES:
        lines = ["  ..."] + lines[-TRACEBACK_TAIL_LINES:]
    return "\n".join(lines)


def _is_runtime(filename: str) -> bool:
    return filename.startswith(_RUNTIME_DIR) or filename.startswith("<frozen importlib")


def _watch_parent(life_fd: int) -> None:
    """Exit as soon as the parent is gone: only it holds the write end of ``life_fd``."""

    def watch() -> None:
        while os.read(life_fd, 1):
            pass
        os._exit(70)

    old = threading.stack_size(64 * 1024)  # a small stack: under RLIMIT_AS every mapping counts
    try:
        threading.Thread(target=watch, name="fs-bus-parent-watch", daemon=True).start()
    finally:
        threading.stack_size(old)


def _exit(code: int) -> None:
    """Leave now: non-daemon user threads must not keep a finished child alive."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110
            pass
    os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def main(argv: list[str]) -> None:
    req_fd, rep_fd, life_fd = (int(a) for a in argv[1:4])
    for fd in (req_fd, rep_fd, life_fd):
        os.set_inheritable(fd, False)  # user subprocesses must not hold our pipes open
    _watch_parent(life_fd)
    faulthandler.enable(all_threads=False)  # a segfault in user code prints the Python traceback to stderr
    try:
        # A print() is in the parent's log when its line ends, even if the process dies next.
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        pass
    pipes = _Pipes(req_fd, rep_fd)
    runtime = _Runtime()
    pipes.send(p.ready())
    try:
        body = pipes.recv()
        if body is None:
            _exit(0)
        assert body is not None
        reply = runtime.start(body)
        _flush_user_output()
        pipes.send(reply)
        if reply[0] != p.Status.OK:
            runtime.close_state()
            _exit(0)
        while True:
            body = pipes.recv()
            if body is None:  # the parent closed the pipe: it wants us gone
                runtime.close_state()
                _exit(0)
            assert body is not None
            try:
                reply = runtime.handle(body)
            except Exception as exc:  # noqa: BLE001 - a bug here; the parent says so and restarts us
                reply = runtime.failure(p.ErrorKind.INTERNAL, exc, _op_name(body[0]))
            _flush_user_output()
            if body[0] == p.Op.CLOSE:
                runtime.close_state()
                pipes.send(reply)
                _exit(0)
            pipes.send(reply)
    except SystemExit as exc:  # sys.exit() in user code: the process ends, as the user asked
        _exit(_exit_code(exc))


def _op_name(op: int) -> str:
    try:
        return p.Op(op).name.lower()
    except ValueError:
        return f"request {op}"


def _flush_user_output() -> None:
    # Whatever user code printed during a call is in the pipes before the reply,
    # so the parent logs it as part of that call.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a user may have replaced or closed them
            pass


if __name__ == "__main__":
    main(sys.argv)
