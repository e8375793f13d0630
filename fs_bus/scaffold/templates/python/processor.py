"""@NAME@: an fs-bus function as a Python class (``type: python``).

It counts how often each record's value has been seen, in the kv store "counts"
(key: the value, value: the count in decimal), and emits ``<value>=<count>`` to
output 0. ``fs-bus call @NAME@ VALUE`` answers VALUE's count (``custom``).
"""

from __future__ import annotations

from fs_bus.api import Context, FSProcessorDriver


class @CLASS@(FSProcessorDriver):
    def init(self, ctx: Context, config: dict[str, str]) -> None:
        self.store = ctx.getOrCreateKVStore("counts")

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        old = self.store.get_state(data)
        if old is not None and not old.isdigit():
            # Raising fails the record: the node reports it with its topic, partition and offset.
            raise ValueError(f"the count of {data!r} is {old!r}, not a number")
        count = int(old or b"0") + 1
        self.store.put_state(data, str(count).encode())
        ctx.emit(data + b"=" + str(count).encode(), 0)

    def custom(self, payload: bytes) -> bytes:
        return self.store.get_state(payload) or b"0"
