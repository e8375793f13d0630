"""One exception hierarchy for everything fs-bus raises.

Every message names what it is about (function, field, topic, offset, file) and,
where there is one, what the user can do about it.
"""

from __future__ import annotations


class FsBusError(Exception):
    """Base of every error fs-bus raises on purpose."""


# --- user input -------------------------------------------------------------


class InvalidConfig(FsBusError):
    """A function configuration is malformed. ``field`` is its dotted path."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class SqlSyntaxError(FsBusError):
    """A SQL statement does not parse; ``position`` is the 0-based offset in the text."""

    def __init__(self, message: str, text: str, position: int):
        self.text = text
        self.position = position
        line = text.count("\n", 0, position) + 1
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        if line_end == -1:
            line_end = len(text)
        column = position - line_start + 1
        self.line, self.column = line, column
        pointer = text[line_start:line_end] + "\n" + " " * (column - 1) + "^"
        super().__init__(f"syntax error at line {line}, column {column}: {message}\n{pointer}")


class InvalidArtifact(FsBusError):
    """The function's code is not what its type says (e.g. not a WebAssembly component)."""


# --- control plane ----------------------------------------------------------


class FunctionNotFound(FsBusError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"function {name!r} does not exist (SHOW FUNCTIONS lists the ones that do)")


class FunctionAlreadyExists(FsBusError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"function {name!r} already exists; DROP FUNCTION {name} first, or pick another name")


class DecodeError(FsBusError):
    """Bytes read from Kafka are not a record this version understands."""


class ArtifactError(FsBusError):
    """An artifact cannot be fetched, or its bytes do not match its manifest."""


class TopicMisconfigured(FsBusError):
    """An fs-bus topic exists with configs that would break the control plane."""


class KafkaUnavailable(FsBusError):
    """The Kafka cluster cannot be reached or refused an operation."""


class AccessDenied(FsBusError):
    """Kafka refused the credentials, or an operation on a topic or group (ACLs).

    ``operation`` (READ, WRITE, DESCRIBE, CREATE, ...), ``resource`` (``topic 'x'``,
    ``group 'g'``) and ``principal`` (``User:alice``) say what was refused to whom.
    """

    def __init__(self, message: str, *, operation: str = "", resource: str = "", principal: str = ""):
        self.operation = operation
        self.resource = resource
        self.principal = principal
        super().__init__(message)


class WaitTimeout(FsBusError):
    """The record is durable, but the nodes did not report the new state in time."""

    def __init__(self, message: str, answered: int = 0, alive: int = 0):
        self.answered = answered
        self.alive = alive
        super().__init__(message)


class NoLiveNodes(WaitTimeout):
    """The record is durable, but no node is alive to act on it."""


class FunctionFailed(FsBusError):
    """A node reported the function FAILED while the client waited for it."""

    def __init__(self, name: str, reasons: dict[str, str]):
        self.name = name
        self.reasons = reasons
        detail = "; ".join(f"node {node}: {why}" for node, why in sorted(reasons.items()))
        super().__init__(f"function {name!r} failed: {detail}")


class UpgradeRefused(FsBusError):
    """A replace asks for what cannot change in place (inputs, group, type); the message says what to do."""


class RolledBack(FunctionFailed):
    """A replace failed on the nodes and they rolled the function back to its previous revision."""

    def __init__(self, name: str, revision: int, reason: str):
        self.revision = revision
        self.reason = reason
        FsBusError.__init__(self, f"function {name!r}: revision {revision} was rolled back ({reason})")
        self.name = name
        self.reasons = {"": reason}


class CallFailed(FsBusError):
    """A call to a function's fs-custom export failed (the function raised, or cannot be called)."""


# --- running user code -------------------------------------------------------


class GuestError(FsBusError):
    """User code failed: a trap, an exception, a call over its time budget."""


class GuestTimeout(GuestError):
    """A call into user code ran past its time budget and was interrupted."""


class RecordFailed(GuestError):
    """User code failed on one known record, for the ``attempts``-th time.

    ``settled``: its error policy takes over from here (skip or dead-letter it on the
    next run); ``give_up``: the policy is fail and the retries are spent.
    """

    def __init__(self, message: str, attempts: int, settled: bool = False, give_up: bool = False):
        self.attempts = attempts
        self.settled = settled
        self.give_up = give_up
        super().__init__(message)


class BatchFailed(GuestError):
    """Record ``index`` of a batch failed; ``done`` holds what the records before it emitted."""

    def __init__(self, message: str, index: int, done: list):
        self.index = index
        self.done = done
        super().__init__(message)


class RecordError(GuestError):
    """User code failed on a record that ``fs_bus.testing`` fed it. The message is the
    node's (a trap, a call past its budget, an exception), naming the record as
    ``topic[partition]@offset``; ``record`` is the input that failed."""

    def __init__(self, message: str, record: object):
        self.record = record
        super().__init__(message)


# --- local development --------------------------------------------------------


class Stalled(FsBusError):
    """The progress watchdog found a function instance stalled (fs_bus.node.watchdog):
    it is restarted from its last commit, or, stalled once too often (``fail``), FAILED."""

    def __init__(self, message: str, fail: bool = False):
        self.fail = fail
        super().__init__(message)


class LocalClusterError(FsBusError):
    """The local broker or node could not be set up (Java missing, port taken, ...)."""
