"""What a partition worker needs from an engine, whatever the engine is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class Emitted:
    """What one call into user code produced.

    ``records`` are ``(target_id, data)``: ``target_id`` indexes the function's
    ``outputs``. ``watermarks`` are ``(target_id, watermark)``.
    """

    records: list[tuple[int, bytes]] = field(default_factory=list)
    watermarks: list[tuple[int, int]] = field(default_factory=list)


class Processor(Protocol):
    """One instance of user code, owned by one partition worker (its own state)."""

    def process(self, source_id: int, data: bytes) -> Emitted:
        """Run the function on one record; raise ``GuestError`` if user code fails."""
        ...

    def close(self) -> None:
        """Call the function's close hook if it has one, then free the instance."""
        ...
