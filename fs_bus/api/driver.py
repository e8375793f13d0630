"""The class a ``type: python`` function defines: one instance per input partition.

The runtime (:mod:`fs_bus.runtime.python`) creates the instance in its own process,
calls :meth:`FSProcessorDriver.init` once, then :meth:`FSProcessorDriver.process`
for every record of the partition, in order, and the other hooks when their
moment comes. Only ``process`` must be defined; every other hook has a default
that does nothing (``check_heartbeat`` says healthy, ``custom`` says there is none).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from fs_bus.api.context import Context


class FSProcessorDriver(ABC):
    """Subclass it, define ``process``, and name the subclass as the function's class."""

    def init(self, ctx: Context, config: dict[str, str]) -> None:
        """Called once before the first record, with the function's ``init_config``."""

    @abstractmethod
    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        """One record of input ``source_id`` (the index of the input in the config).

        Emit results with ``ctx.emit(data, channel)``; ``channel`` indexes the
        function's outputs. Raising fails the record: the runtime restarts the
        instance from the last checkpoint and the record is processed again.
        """

    def process_watermark(self, ctx: Context, source_id: int, watermark: int) -> None:
        """The event time of input ``source_id`` advanced to ``watermark`` (ms since the epoch)."""

    def take_checkpoint(self, ctx: Context, checkpoint_id: int) -> None:
        """The input offsets are about to be committed; the state is committed
        right after this returns (ids grow by one per commit)."""

    def check_heartbeat(self, ctx: Context) -> bool:
        """False asks the runtime to replace this instance (from the last checkpoint)."""
        return True

    def close(self, ctx: Context) -> None:
        """Called once when the partition goes away; uncheckpointed state is dropped."""

    def custom(self, payload: bytes) -> bytes:
        """The function's own request/response entry point (``CALL FUNCTION``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define custom()")
