"""The error policy of one function instance: what happens to a record user code fails on.

Pure bookkeeping, no Kafka: the instance asks it and acts. A record that fails is
tried again ``errors.retries`` times (the instance reopens from the committed
offsets, so it is delivered again); then ``errors.policy`` decides: ``fail``
stops the function, ``skip`` moves past the record, ``dead-letter`` writes it to
the dead-letter topic with headers saying why, then moves past it. Attempts are
counted per record (topic, partition, offset) across reopenings.

A batch that failed without saying which record (a Python function's process
died) is narrowed down: the partition runs one record at a time until it is past
the batch's last offset, so the next failure names its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fs_bus.config.model import ErrorPolicy
from fs_bus.errors import RecordFailed

# A dead letter's error header is cut here: a guest's message can be any size.
MAX_ERROR_HEADER_BYTES = 8192

Partition = tuple[str, int]  # (topic, partition)


@dataclass
class RecordErrors:
    """Attempts, settling and narrowing for one instance's records (see the module doc)."""

    policy: ErrorPolicy
    retries: int
    # (topic, partition, offset) -> failed attempts so far.
    attempts: dict[tuple[str, int, int], int] = field(default_factory=dict)
    # Records whose retries are spent, settled by the policy on their next delivery: offset -> error.
    to_settle: dict[Partition, dict[int, str]] = field(default_factory=dict)
    # Partitions whose last batch died without naming a record -> that batch's last offset.
    narrowing: dict[Partition, int] = field(default_factory=dict)

    def failed(self, topic: str, partition: int, offset: int, error: str) -> RecordFailed:
        """Count a failure of one record; once its retries are spent, hand it to the policy.
        The error says which, for the instance to raise (it reopens, or stops for ``fail``)."""
        key = (topic, partition, offset)
        attempts = self.attempts.get(key, 0) + 1
        self.attempts[key] = attempts
        reason = f"{error} (record {topic}[{partition}]@{offset})"
        if attempts <= self.retries:
            return RecordFailed(f"{reason}, attempt {attempts} of {self.retries + 1}", attempts)
        del self.attempts[key]
        if self.policy is ErrorPolicy.FAIL:
            return RecordFailed(reason, attempts, give_up=True)
        self.to_settle.setdefault((topic, partition), {})[offset] = error
        return RecordFailed(f"{reason}; errors.policy {self.policy.value} takes it", attempts, settled=True)

    def settling(self, part: Partition) -> bool:
        """Whether records of this partition wait to be settled on their next delivery."""
        return bool(self.to_settle.get(part))

    def take_settled(self, part: Partition, offset: int) -> str | None:
        """The error of a record to settle instead of running it (once); None: run it."""
        pending = self.to_settle.get(part)
        return pending.pop(offset, None) if pending else None

    def batch_died(self, part: Partition, last_offset: int) -> None:
        """A batch up to ``last_offset`` failed without naming its record."""
        self.narrowing[part] = last_offset

    def one_at_a_time(self, part: Partition, first_offset: int, count: int) -> bool:
        """Whether a batch must run record by record, to name the record that fails."""
        until = self.narrowing.get(part)
        return until is not None and count > 1 and first_offset <= until

    def ran(self, part: Partition, last_offset: int) -> None:
        """A batch up to ``last_offset`` ran: past the narrowed range, batches are whole again."""
        until = self.narrowing.get(part)
        if until is not None and last_offset >= until:
            del self.narrowing[part]

    def quiet(self, parts: list[Partition]) -> bool:
        """Whether none of these partitions is being settled or narrowed (so they may run in parallel)."""
        return not any(self.to_settle.get(p) or p in self.narrowing for p in parts)


def dead_letter_headers(original: list[tuple[str, bytes | None]] | None, error: str, function: str, topic: str,
                        partition: int, offset: int, node_id: str) -> list[tuple[str, bytes | None]]:
    """A dead letter's headers: the record's own, then why and where it failed."""
    return list(original or []) + [
        ("fs-bus.error", error.encode("utf-8", "replace")[:MAX_ERROR_HEADER_BYTES]),
        ("fs-bus.function", function.encode()),
        ("fs-bus.source.topic", topic.encode()),
        ("fs-bus.source.partition", str(partition).encode()),
        ("fs-bus.source.offset", str(offset).encode()),
        ("fs-bus.node", node_id.encode()),
    ]
