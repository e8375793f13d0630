"""What one call into user code produced: the records it emitted and the watermarks it set.

The driver API (``Context.take_emitted``) makes these and every runtime returns
them, so they live here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# An emitted record: (target_id, data), whose key is the input record's, or
# (target_id, data, key, headers), whose key and headers the function chose
# (None: no key, no headers). target_id indexes the function's ``outputs``.
OutputRecord = tuple[int, bytes] | tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]] | None]


@dataclass(slots=True)
class Emitted:
    """What one call into user code produced.

    ``records`` are :data:`OutputRecord` s. ``watermarks`` are ``(target_id, watermark)``.
    """

    records: list[OutputRecord] = field(default_factory=list)
    watermarks: list[tuple[int, int]] = field(default_factory=list)
