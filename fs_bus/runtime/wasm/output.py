"""A guest's stdout and stderr, a log record per line (:class:`_GuestOutput`).

A fact about wasmtime-py 50 this relies on (probed, see DESIGN.md):

- WASI output: ``WasiConfig.stdout_custom``/``stderr_custom`` callbacks run on a
  wasmtime worker thread (before the guest's blocking write returns), cost about
  0.5 ms per write, and make that thread panic at interpreter exit if a Store
  holding one is still alive; ``stdout_file`` opens its file at once. See
  :class:`_GuestOutput` for what we do instead.
"""

from __future__ import annotations

import logging
import os
import tempfile

import wasmtime


def _output_dir() -> str | None:
    # tmpfs when there is one: guest output then never touches a disk.
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class _GuestOutput:
    """The guest's stdout and stderr, one log record per line.

    Each stream is a temporary file that wasmtime writes natively and that we
    read (from where we stopped) after every export call: an ``fstat`` per stream
    and call when the guest printed nothing. The files are unlinked as soon as
    both sides hold them open, so nothing is left behind, and once more than
    ``compact_at`` bytes were read the file is truncated: wasmtime goes on writing
    at its own offset, so the space before it becomes a hole that takes no room
    (the logical size grows, the space used does not).

    Why not ``WasiConfig.stdout_custom``: its callback runs on a wasmtime worker
    thread, costs about 0.5 ms per write (a thread hop and a fresh Python thread
    state each time; measured: a 60-byte print() went from ~0.1 ms to ~0.6 ms),
    and a Store still holding one when the interpreter exits makes that thread
    panic at shutdown.

    The lines of one call are logged when the call returns, stdout's before
    stderr's; a last line without its newline is logged then too. (wasi-libc,
    hence print(), uses blocking writes, which are in the file when the call
    returns; a non-blocking write still in flight then is read at the next call.)
    """

    LEVELS = {"stdout": logging.INFO, "stderr": logging.WARNING}

    def __init__(
        self, logger: logging.Logger, function_name: str, *, max_line: int = 64 * 1024, compact_at: int = 1 << 20
    ) -> None:
        self.logger = logger
        self.function_name = function_name
        self.max_line = max_line
        self.compact_at = compact_at
        self._fds: dict[str, int] = {}
        self._offsets: dict[str, int] = {}

    def attach(self, wasi: wasmtime.WasiConfig) -> None:
        """Send ``wasi``'s stdout and stderr to this object."""
        for stream in ("stdout", "stderr"):
            fd, path = tempfile.mkstemp(prefix=f"fs-bus-guest-{stream}-", dir=_output_dir())
            try:
                if stream == "stdout":
                    wasi.stdout_file = path  # wasmtime opens it right here
                else:
                    wasi.stderr_file = path
            except BaseException:
                os.close(fd)
                raise
            finally:
                os.unlink(path)
            self._fds[stream] = fd
            self._offsets[stream] = 0

    def flush(self) -> None:
        """Log whatever the guest wrote since the last flush."""
        for stream, fd in self._fds.items():
            offset = self._offsets[stream]
            size = os.fstat(fd).st_size
            if size <= offset:
                continue
            data = os.pread(fd, size - offset, offset)
            self._offsets[stream] = offset + len(data)
            if self._offsets[stream] >= self.compact_at:
                os.ftruncate(fd, 0)
            self.write(stream, data)

    def write(self, stream: str, data: bytes) -> None:
        """Log ``data`` that the guest wrote to ``stream``, a record per line."""
        if not data:
            return
        for line in data.removesuffix(b"\n").split(b"\n"):
            for i in range(0, max(len(line), 1), self.max_line):
                self._emit(stream, line[i : i + self.max_line])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def _emit(self, stream: str, line: bytes) -> None:
        text = line.decode("utf-8", "replace").removesuffix("\r")
        self.logger.log(
            self.LEVELS[stream],
            "%s: %s",
            stream,
            text,
            extra={"function_name": self.function_name, "guest_stream": stream},
        )
