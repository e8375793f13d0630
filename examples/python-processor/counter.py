"""The word counter as a ``type: python`` function: the seed's counter, no build step.

For every record it counts the words (split on ASCII whitespace) in the kv store,
under ``key_prefix + word``, as decimal ASCII, and counts the records processed
under ``key_prefix + " total_processed"`` (the space keeps it apart from every
word). It emits one JSON record per input record to output 0::

    {"total_processed": N, "counter_map": {"word": count, ...}}

``counter_map`` holds this record's words in order of first appearance, with their
counts after this record: byte for byte what examples/go-processor and
examples/python-component emit. The counts live in the kv store only, so they
survive STOP/START and node restarts.
"""

from __future__ import annotations

import json

from fs_api import Context, FSProcessorDriver

STORE_NAME = "counter-store"
TOTAL_SUFFIX = b" total_processed"


class CounterProcessor(FSProcessorDriver):
    key_prefix = b""

    def init(self, ctx: Context, config: dict[str, str]) -> None:
        self.key_prefix = config.get("key_prefix", "").encode()
        self.store = ctx.getOrCreateKVStore(STORE_NAME)

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        store = ctx.getOrCreateKVStore(STORE_NAME)
        occurrences: dict[bytes, int] = {}  # insertion order = first appearance
        for word in data.split():
            occurrences[word] = occurrences.get(word, 0) + 1
        counter_map = {word.decode("utf-8", "replace"): self._add(store, word, n) for word, n in occurrences.items()}
        total = self._add(store, TOTAL_SUFFIX, 1)
        out = {"total_processed": total, "counter_map": counter_map}
        ctx.emit(json.dumps(out, ensure_ascii=False).encode(), 0)

    def _add(self, store, word: bytes, n: int) -> int:
        """Add n to the decimal counter of word and return the new value.

        A value that is not a decimal number raises: counting on would give wrong
        numbers, and the runtime marks the function FAILED with the record's offset.
        """
        key = self.key_prefix + word
        old = store.get_state(key)
        if old is not None and not old.isdigit():
            raise ValueError(f"counter {key!r} holds {old!r}, not a number")
        count = (int(old) if old is not None else 0) + n
        store.put_state(key, str(count).encode())
        return count

    def custom(self, payload: bytes) -> bytes:
        """``fs-bus call python-processor-example WORD`` answers WORD's count so far
        (in the partition that owns the function's first input partition)."""
        return self.store.get_state(self.key_prefix + payload.strip()) or b"0"
