"""The files of fs-bus's fast path (:class:`_BatchFiles`).

A component exporting ``fs-bus:batch/batch@0.1.0`` (``wit/fs-bus/batch.wit``)
gets its records a batch per call, as bytes in a file of a preopened tmpfs
directory (framing: :mod:`fs_bus.runtime.framing`): no component values at all.
"""

from __future__ import annotations

import logging
import os
import tempfile

from fs_bus.runtime.wasm.output import _output_dir

log = logging.getLogger(__package__)


class _BatchFiles:
    """The two files of the fast path, in a directory of their own that the guest
    sees as ``/fs-bus`` (wit/fs-bus/batch.wit): ``in`` (the host writes an input
    batch, the guest reads it) and ``out`` (the other way round).

    On tmpfs when there is one, so a batch never touches a disk. Both files stay
    open for the processor's life: a batch costs one ``pwrite`` and one ``pread``
    here, and the guest's reads and writes are served by wasmtime natively. Sizes
    travel with the call, so neither file is ever truncated.
    """

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="fs-bus-batch-", dir=_output_dir())
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self.in_fd = os.open(os.path.join(self.dir, "in"), flags, 0o600)
        self.out_fd = os.open(os.path.join(self.dir, "out"), flags, 0o600)

    def close(self) -> None:
        for fd in (self.in_fd, self.out_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        for name in ("in", "out"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError as e:
            log.debug("cannot remove %s: %s", self.dir, e)
