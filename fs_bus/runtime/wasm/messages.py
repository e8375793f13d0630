"""wasmtime's error texts, made readable for the messages both hosts raise."""

from __future__ import annotations

_INTERRUPT = "wasm trap: interrupt"  # wasmtime's message for an epoch deadline


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _cause(text: str) -> str:
    """wasmtime errors read "error while executing at wasm backtrace: ... Caused by: X";
    X is what a user wants to see first."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if "Caused by:" in lines:
        rest = [line for line in lines[lines.index("Caused by:") + 1 :] if line]
        if rest:
            # Nested causes are numbered "0: ...", "1: ..."; keep them on one line.
            return "; ".join(r.split(": ", 1)[1] if r[:1].isdigit() and ": " in r else r for r in rest)
    return _first_line(text)
