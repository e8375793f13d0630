"""YAML text to Python data, with libyaml's speed where it is safe.

A fresh node parses every function's config while it replays the control log:
10 000 configs took 7.5 s with PyYAML's pure-Python loader and about a tenth of
that with libyaml (``yaml.CSafeLoader``). But libyaml recurses in C and crashes
the process (SIGSEGV) on deeply nested input (``[[[[...`` ten thousand deep),
where the Python loader raises ``RecursionError``; anyone can write the control
topic. So text whose nesting *could* be deep goes to the Python loader, and only
text with a small bound on its depth to libyaml. Pure.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# libyaml survived 10 000 levels here; the Python constructor gives up near 300.
# Far below the first, at the second: deeper text is refused either way.
C_LOADER_MAX_DEPTH = 500
_C_LOADER = getattr(yaml, "CSafeLoader", None)
_INDENT = re.compile(r"^[ \t]*", re.MULTILINE)


def nesting_bound(text: str) -> int:
    """An upper bound on how deeply ``text`` can nest, cheap to compute (no loop in Python).

    Flow collections nest at most once per ``[`` or ``{``, block collections at most
    once per column of indentation or per ``-``, ``?`` or ``:`` (``- - x`` nests on one
    line). Quoted characters only make the bound looser."""
    if len(text) <= C_LOADER_MAX_DEPTH:
        return len(text)  # every level takes at least one character
    indent = max(map(len, _INDENT.findall(text)), default=0)
    return (text.count("[") + text.count("{") + indent
            + text.count("-") + text.count("?") + text.count(":") + 1)


def load(text: str) -> Any:
    """``yaml.safe_load(text)``, through libyaml when it is there and the text cannot nest deeply.

    Raises what ``yaml.safe_load`` raises (``yaml.YAMLError``, ``RecursionError``, ``ValueError``)."""
    if _C_LOADER is not None and nesting_bound(text) <= C_LOADER_MAX_DEPTH:
        return yaml.load(text, Loader=_C_LOADER)  # noqa: S506 - CSafeLoader is the safe loader, in C
    return yaml.safe_load(text)
