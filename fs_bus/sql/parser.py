"""The SQL dialect of ``fs-bus sql``. Pure: text in, statements out.

    CREATE FUNCTION WITH ('function_path'='upper.wasm', 'config_path'='config.yaml');
    START FUNCTION name;  STOP FUNCTION name;  DROP FUNCTION [IF EXISTS] name;
    START FUNCTION name FROM EARLIEST | LATEST | OFFSET n | TIMESTAMP '2026-11-30T00:00:00Z';
    SHOW FUNCTIONS [[LIKE] 'pattern' | name];  DESCRIBE FUNCTION name;
    CREATE OR REPLACE FUNCTION WITH (..., ['mode'='shadow']);  ROLLBACK FUNCTION name [TO REVISION n];
    SHOW FUNCTION HISTORY name;  SHOW FUNCTION DIFF name;  PROMOTE FUNCTION name;  DROP SHADOW name;

The upgrade words (REPLACE, ROLLBACK, HISTORY, DIFF, PROMOTE, SHADOW, TO, REVISION) are
read only where they can stand, so they remain usable as function names.

Keywords in any case; identifiers bare (``upper``, ``my-fn``) or quoted (``"My Fn"``,
`` `x` ``); string literals in single quotes with ``''`` for a quote; ``--`` comments.
Errors carry the offset of the token that broke the statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Union

from fs_bus.client.models import StartPosition
from fs_bus.errors import SqlSyntaxError


@dataclass(frozen=True, slots=True)
class CreateFunction:
    properties: dict[str, str] = field(default_factory=dict)
    replace: bool = False  # CREATE OR REPLACE: a new revision of an existing function


@dataclass(frozen=True, slots=True)
class StartFunction:
    name: str
    start_from: StartPosition | None = None  # FROM ...: reprocess with empty state


@dataclass(frozen=True, slots=True)
class StopFunction:
    name: str


@dataclass(frozen=True, slots=True)
class DropFunction:
    name: str
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class ShowFunctions:
    pattern: str | None = None  # a glob (``up*``) over function names; LIKE's % and _ become * and ?


@dataclass(frozen=True, slots=True)
class DescribeFunction:
    name: str


@dataclass(frozen=True, slots=True)
class RollbackFunction:
    name: str
    revision: int | None = None  # TO REVISION n; None: the revision before the current one


@dataclass(frozen=True, slots=True)
class ShowHistory:
    name: str


@dataclass(frozen=True, slots=True)
class ShowDiff:
    name: str


@dataclass(frozen=True, slots=True)
class PromoteFunction:
    name: str


@dataclass(frozen=True, slots=True)
class DropShadow:
    name: str


Statement = Union[CreateFunction, StartFunction, StopFunction, DropFunction, ShowFunctions, DescribeFunction,
                  RollbackFunction, ShowHistory, ShowDiff, PromoteFunction, DropShadow]

KEYWORDS = ("CREATE", "START", "STOP", "DROP", "SHOW", "DESCRIBE", "FUNCTION", "FUNCTIONS", "WITH", "IF", "EXISTS",
            "FROM")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word | string | quoted | punct | end
    text: str  # the value (unquoted for string/quoted)
    pos: int


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+|--[^\n]*)
  | (?P<word>[A-Za-z_](?:[A-Za-z0-9_.]|-(?!-))*)
  | (?P<number>[0-9](?:[A-Za-z0-9_.]|-(?!-))*)
  | (?P<string>'(?:[^']|'')*'(?!'))
  | (?P<dquoted>"(?:[^"]|"")*"(?!"))
  | (?P<bquoted>`(?:[^`]|``)*`(?!`))
  | (?P<punct>[(),;=])
""", re.VERBOSE)


def tokenize(text: str) -> Iterator[Token]:
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch in "'\"`":
                raise SqlSyntaxError(f"unterminated quoted text starting with {ch}", text, pos)
            raise SqlSyntaxError(f"unexpected character {ch!r}", text, pos)
        kind = m.lastgroup
        raw = m.group()
        if kind == "string":
            yield Token("string", raw[1:-1].replace("''", "'"), pos)
        elif kind == "dquoted":
            yield Token("quoted", raw[1:-1].replace('""', '"'), pos)
        elif kind == "bquoted":
            yield Token("quoted", raw[1:-1].replace("``", "`"), pos)
        elif kind in ("word", "number"):
            yield Token("word", raw, pos)
        elif kind == "punct":
            yield Token("punct", raw, pos)
        pos = m.end()
    yield Token("end", "", len(text))


def parse(text: str) -> list[Statement]:
    """Parse a script of statements separated by ``;`` (empty statements are ignored)."""
    return _Parser(text).script()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = list(tokenize(text))
        self.i = 0

    # -- token stream --
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def error(self, message: str, tok: Token | None = None) -> SqlSyntaxError:
        t = tok or self.tok
        found = "end of input" if t.kind == "end" else repr(t.text)
        return SqlSyntaxError(f"{message}, found {found}", self.text, t.pos)

    def is_keyword(self, word: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.upper() == word

    def keyword(self, word: str) -> None:
        if not self.is_keyword(word):
            raise self.error(f"expected {word}")
        self.advance()

    def punct(self, p: str) -> None:
        if not (self.tok.kind == "punct" and self.tok.text == p):
            raise self.error(f"expected {p!r}")
        self.advance()

    def identifier(self) -> str:
        t = self.tok
        if t.kind == "quoted":
            if not t.text:
                raise self.error("expected a function name, not an empty quoted name")
            self.advance()
            return t.text
        if t.kind == "word" and t.text.upper() not in KEYWORDS:
            self.advance()
            return t.text
        raise self.error("expected a function name")

    # -- grammar --
    def script(self) -> list[Statement]:
        out: list[Statement] = []
        while self.tok.kind != "end":
            if self.tok.kind == "punct" and self.tok.text == ";":
                self.advance()
                continue
            out.append(self.statement())
            if self.tok.kind != "end":
                self.punct(";")
        return out

    def statement(self) -> Statement:
        t = self.tok
        verb = t.text.upper() if t.kind == "word" else ""
        if verb == "CREATE":
            self.advance()
            replace = self.is_keyword("OR")
            if replace:
                self.advance()
                self.keyword("REPLACE")
            self.keyword("FUNCTION")
            self.keyword("WITH")
            return CreateFunction(self.properties(), replace)
        if verb == "ROLLBACK":
            self.advance()
            self.keyword("FUNCTION")
            name = self.identifier()
            if not self.is_keyword("TO"):
                return RollbackFunction(name)
            self.advance()
            self.keyword("REVISION")
            n = self.tok
            if n.kind != "word" or not n.text.isdigit() or int(n.text) < 1:
                raise self.error("expected a revision number (1, 2, ...) after TO REVISION")
            self.advance()
            return RollbackFunction(name, int(n.text))
        if verb == "PROMOTE":
            self.advance()
            self.keyword("FUNCTION")
            return PromoteFunction(self.identifier())
        if verb in ("START", "STOP"):
            self.advance()
            self.keyword("FUNCTION")
            name = self.identifier()
            if verb == "START" and self.is_keyword("FROM"):
                self.advance()
                return StartFunction(name, self.start_position())
            return StartFunction(name) if verb == "START" else StopFunction(name)
        if verb == "DROP":
            self.advance()
            if self.is_keyword("SHADOW"):
                self.advance()
                return DropShadow(self.identifier())
            if not self.is_keyword("FUNCTION"):
                raise self.error("expected FUNCTION or SHADOW")
            self.advance()
            if_exists = False
            if self.is_keyword("IF"):
                self.advance()
                self.keyword("EXISTS")
                if_exists = True
            return DropFunction(self.identifier(), if_exists)
        if verb == "SHOW":
            self.advance()
            if self.is_keyword("FUNCTION"):
                self.advance()
                if self.is_keyword("HISTORY"):
                    self.advance()
                    return ShowHistory(self.identifier())
                if self.is_keyword("DIFF"):
                    self.advance()
                    return ShowDiff(self.identifier())
                raise self.error("expected HISTORY or DIFF after SHOW FUNCTION")
            self.keyword("FUNCTIONS")
            like = self.is_keyword("LIKE")
            if like:
                self.advance()
            t = self.tok
            if t.kind == "string" or (t.kind in ("word", "quoted") and not like and
                                      (t.kind == "quoted" or t.text.upper() not in KEYWORDS)):
                self.advance()
                pattern = t.text.replace("%", "*").replace("_", "?") if like else t.text
                return ShowFunctions(pattern)
            if like:
                raise self.error("expected a pattern in single quotes after LIKE, like 'up%'")
            return ShowFunctions()
        if verb == "DESCRIBE":
            self.advance()
            self.keyword("FUNCTION")
            return DescribeFunction(self.identifier())
        raise self.error("expected a statement (CREATE, START, STOP, DROP, SHOW, DESCRIBE, ROLLBACK or PROMOTE)")

    def start_position(self) -> StartPosition:
        t = self.tok
        word = t.text.upper() if t.kind == "word" else ""
        if word in ("EARLIEST", "LATEST"):
            self.advance()
            return StartPosition(word.lower())
        if word == "OFFSET":
            self.advance()
            n = self.tok
            if n.kind != "word" or not n.text.isdigit():
                raise self.error("expected an offset (a whole number) after OFFSET")
            self.advance()
            return StartPosition("offset", int(n.text))
        if word == "TIMESTAMP":
            self.advance()
            s = self.tok
            if s.kind != "string":
                raise self.error("expected a time in single quotes after TIMESTAMP, like '2026-11-30T00:00:00Z'")
            try:
                position = StartPosition.parse(s.text)
            except ValueError:
                raise self.error("expected an ISO 8601 time like '2026-11-30T00:00:00Z'") from None
            if position.kind != "timestamp":
                raise self.error("expected an ISO 8601 time like '2026-11-30T00:00:00Z'")
            self.advance()
            return position
        raise self.error("expected EARLIEST, LATEST, OFFSET n or TIMESTAMP '...' after FROM")

    def properties(self) -> dict[str, str]:
        self.punct("(")
        props: dict[str, str] = {}
        while True:
            key_tok = self.tok
            if key_tok.kind != "string":
                raise self.error("expected a property name in single quotes")
            self.advance()
            self.punct("=")
            if self.tok.kind != "string":
                raise self.error(f"expected a value in single quotes for {key_tok.text!r}")
            if key_tok.text in props:
                raise self.error(f"property {key_tok.text!r} is given twice", key_tok)
            props[key_tok.text] = self.advance().text
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                continue
            self.punct(")")
            return props
