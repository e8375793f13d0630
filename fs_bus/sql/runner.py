"""Runs parsed SQL statements against an ``FsClient`` and renders their results."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fs_bus.client import FsClient
from fs_bus.client.models import FunctionDescription, ShowFunctionsResult
from fs_bus.errors import FsBusError, FunctionNotFound
from fs_bus.sql.parser import (
    CreateFunction, DescribeFunction, DropFunction, DropShadow, PromoteFunction, RollbackFunction, ShowDiff,
    ShowFunctions, ShowHistory, StartFunction, Statement, StopFunction,
)
from fs_bus.sql.upgrades import render_diff, render_history

CREATE_PROPERTIES = ("function_path", "config_path")
OPTIONAL_PROPERTIES = ("mode",)  # 'mode'='shadow': CREATE OR REPLACE runs the new revision beside the live one
MODES = ("replace", "shadow")


class StatementError(FsBusError):
    """A statement is well-formed SQL but cannot be run as written."""


@dataclass
class SqlRunner:
    client: FsClient
    console: Console
    wait: bool = True
    timeout: float | None = None
    # "table": sentences and tables for a person; "json": one JSON object per statement
    # on its own line, for scripts (`fs-bus sql -o json -e "SHOW FUNCTIONS" | jq`).
    output: str = "table"

    def run(self, stmt: Statement) -> None:
        if isinstance(stmt, CreateFunction):
            self._create(stmt)
        elif isinstance(stmt, StartFunction):
            self.client.start_function(stmt.name, wait=self.wait, timeout=self.timeout, start_from=stmt.start_from)
            where = f" from {stmt.start_from} with empty state" if stmt.start_from else ""
            doc = {"start_from": str(stmt.start_from)} if stmt.start_from else {}
            self._say(f"started {stmt.name}{where}", statement="START FUNCTION", function=stmt.name,
                      result="started", **doc)
        elif isinstance(stmt, StopFunction):
            self.client.stop_function(stmt.name, wait=self.wait, timeout=self.timeout)
            self._say(f"stopped {stmt.name}", statement="STOP FUNCTION", function=stmt.name, result="stopped")
        elif isinstance(stmt, DropFunction):
            try:
                self.client.drop_function(stmt.name, wait=self.wait, timeout=self.timeout)
                self._say(f"dropped {stmt.name}", statement="DROP FUNCTION", function=stmt.name, result="dropped")
            except FunctionNotFound:
                if not stmt.if_exists:
                    raise
                self._say(f"{stmt.name} does not exist; nothing to drop", statement="DROP FUNCTION",
                          function=stmt.name, result="absent")
        elif isinstance(stmt, ShowFunctions):
            result = self.client.show_functions(stmt.pattern)
            if self.output == "json":
                self._json({"statement": "SHOW FUNCTIONS", **functions_as_json(result)})
            else:
                self.console.print(render_functions(result))
        elif isinstance(stmt, DescribeFunction):
            description = self.client.describe_function(stmt.name)
            if self.output == "json":
                self._json({"statement": "DESCRIBE FUNCTION", **asdict(description)})
            else:
                for part in render_description(description):
                    self.console.print(part)
        elif isinstance(stmt, RollbackFunction):
            self.client.rollback_function(stmt.name, stmt.revision, wait=self.wait, timeout=self.timeout)
            to = f" to revision {stmt.revision}" if stmt.revision else ""
            self._say(f"rolled back {stmt.name}{to}", statement="ROLLBACK FUNCTION", function=stmt.name,
                      result="rolled back", **({"revision": str(stmt.revision)} if stmt.revision else {}))
        elif isinstance(stmt, PromoteFunction):
            self.client.promote_function(stmt.name, wait=self.wait, timeout=self.timeout)
            self._say(f"promoted the shadow of {stmt.name}", statement="PROMOTE FUNCTION", function=stmt.name,
                      result="promoted")
        elif isinstance(stmt, DropShadow):
            self.client.drop_shadow(stmt.name, wait=self.wait, timeout=self.timeout)
            self._say(f"dropped the shadow of {stmt.name}", statement="DROP SHADOW", function=stmt.name,
                      result="dropped")
        elif isinstance(stmt, ShowHistory):
            history = self.client.function_history(stmt.name)
            if self.output == "json":
                self._json({"statement": "SHOW FUNCTION HISTORY", "function": stmt.name,
                            "revisions": [asdict(r) for r in history]})
            else:
                self.console.print(render_history(stmt.name, history))
        elif isinstance(stmt, ShowDiff):
            diff = self.client.function_diff(stmt.name)
            if self.output == "json":
                self._json({"statement": "SHOW FUNCTION DIFF", "function": stmt.name, **asdict(diff)})
            else:
                for part in render_diff(diff):
                    self.console.print(part)
        else:  # pragma: no cover - the parser makes only the types above
            raise StatementError(f"unsupported statement {stmt!r}")

    def _say(self, text: str, **doc: str) -> None:
        if self.output == "json":
            self._json(doc)
        else:
            self.console.print(text)

    def _json(self, doc: dict) -> None:
        self.console.print(json.dumps(doc, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True)

    def _create(self, stmt: CreateFunction) -> None:
        props = stmt.properties
        what = "CREATE OR REPLACE FUNCTION" if stmt.replace else "CREATE FUNCTION"
        known = CREATE_PROPERTIES + (OPTIONAL_PROPERTIES if stmt.replace else ())
        for key in props:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
                if key in OPTIONAL_PROPERTIES:
                    hint = "; it needs CREATE OR REPLACE FUNCTION"
                raise StatementError(f"{what}: unknown property {key!r}{hint}")
        missing = [k for k in CREATE_PROPERTIES if k not in props]
        if missing:
            raise StatementError(f"{what}: missing property {', '.join(repr(m) for m in missing)}")
        mode = props.get("mode", "replace").lower()
        if mode not in MODES:
            raise StatementError(f"{what}: 'mode' is {props['mode']!r}; use 'replace' (the default) or 'shadow'")
        function_path, config_path = Path(props["function_path"]), Path(props["config_path"])
        name = self.client.create_function(function_path, config_path, wait=self.wait, timeout=self.timeout,
                                           replace=stmt.replace and mode == "replace", shadow=mode == "shadow")
        done = {False: "created", True: "created or replaced"}[stmt.replace] if mode != "shadow" else "shadow started"
        self._say(f"{done} function {name} ({function_path.name}, {config_path})", statement=what,
                  function=name, function_path=str(function_path), config_path=str(config_path), result=done)


def functions_as_json(result: ShowFunctionsResult) -> dict:
    """SHOW FUNCTIONS for scripts: every field of every function and node; times in epoch ms."""
    return {
        "functions": [{**asdict(f), "nodes": list(f.nodes), "partitions": {n: list(p) for n, p in f.partitions.items()}}
                      for f in result.functions],
        "nodes": [asdict(n) for n in result.nodes],
    }


def render_functions(result: ShowFunctionsResult) -> Table:
    table = Table(title=None, header_style="bold", expand=False)
    for col in ("name", "type", "desired", "status", "revision", "updated (UTC)"):
        table.add_column(col, no_wrap=True)
    table.add_column("placement", overflow="fold")
    table.add_column("nodes: partitions", overflow="fold")
    table.add_column("lag", justify="right", no_wrap=True)
    table.add_column("last error", overflow="fold")
    for f in result.functions:
        style = {"RUNNING": "green", "FAILED": "red", "STOPPED": "yellow"}.get(f.status, "")
        nodes = "\n".join(f"{n}: {', '.join(f.partitions.get(n, ())) or '-'}"
                          for n in f.nodes) or "-"
        updated = datetime.fromtimestamp(f.updated_at / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(f.name, f.task_type, f.desired, f"[{style}]{f.status}[/]" if style else f.status,
                      f"{f.revision} (code {f.code_revision})", updated, f.placement or "-", nodes,
                      "?" if f.lag is None else str(f.lag),
                      "\n".join(e for e in (f.error, f.lag_error and f"lag unknown: {f.lag_error}",
                                            _rolled_back(f.reason)) if e))
    alive = sum(1 for n in result.nodes if n.alive)
    table.caption = f"{len(result.functions)} function(s), {alive} live node(s)"
    return table


def _rolled_back(reason: str | None) -> str | None:
    """An auto-rollback stays visible in SHOW FUNCTIONS until the next revision."""
    return reason if reason and reason.startswith("auto-rollback") else None


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _placement(p: dict) -> str:
    """``n1, n2: parallelism 2 of 2 (from input partitions), labels zone=a`` and why fewer, if so."""
    if not p:
        return "-"
    where = ", ".join(p["nodes"]) or "unplaced"
    text = f"{where}: parallelism {p['parallelism']} of {p['wanted']} (from {p['wanted_from']})"
    if p["labels"]:
        text += f", labels {p['labels_text']}"
    return text + (f"; {p['reason']}" if p["reason"] else "")


def render_description(d: FunctionDescription) -> list[object]:
    """DESCRIBE FUNCTION / ``fs-bus describe``: the record, then nodes, then partitions and lag."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    signed = f", signed by {d.signed_by}" if d.signed_by else ""
    for key, value in (
        ("function", f"{d.name} ({d.task_type})"),
        ("desired / observed", f"{d.desired} / {d.status}"),
        ("revision", f"{d.revision}, code revision {d.code_revision}{f' ({d.reason})' if d.reason else ''} "
                     f"(state generation {d.state_generation})"),
        ("updated", f"{_when(d.updated_at)} by {d.updated_by}"),
        ("artifact", f"{d.artifact_kind}, {d.artifact_size} bytes, sha256 {d.artifact_sha256}{signed}"),
        ("group / guarantee", f"{d.group_id} / {d.guarantee}"),
        ("changelogs", ", ".join(d.changelogs)),
        ("placement", _placement(d.placement)),
    ):
        head.add_row(key, value)
    nodes = Table(title="nodes", header_style="bold", title_justify="left")
    for col in ("node", "state", "revision", "code revision", "partitions", "errors", "error"):
        nodes.add_column(col, overflow="fold", justify="right" if col == "errors" else "left")
    for n in d.nodes:
        nodes.add_row(n["node"] + ("" if n["alive"] else " (dead)"), n["state"], str(n["revision"]),
                      str(n.get("code_revision", "")),
                      ", ".join(n["partitions"]) or "-", str(n["errors"]), n["error"] or "")
    lag = Table(title="partitions", header_style="bold", title_justify="left")
    for col in ("topic", "partition", "node", "committed", "end", "lag"):
        lag.add_column(col, justify="right" if col in ("partition", "committed", "end", "lag") else "left")
    for p in d.lag:
        lag.add_row(p["topic"], str(p["partition"]), p["node"] or "-",
                    "-" if p["committed"] is None else str(p["committed"]), str(p["end"]), str(p["lag"]))
    parts: list[object] = [head, nodes, lag]
    if d.lag_error:
        parts.append(f"lag unknown: {d.lag_error}")
    return parts + ["config:", d.config_yaml.rstrip()]
