"""How ``SHOW FUNCTION HISTORY`` and ``SHOW FUNCTION DIFF`` look in a terminal."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.table import Table

from fs_bus.client.models import RevisionInfo
from fs_bus.control.shadow import ShadowDiff


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def render_history(name: str, revisions: list[RevisionInfo]) -> Table:
    """One row per code revision, oldest first; the current one marked with ``*``."""
    table = Table(title=f"history of {name}", header_style="bold", title_justify="left")
    for col in ("revision", "when (UTC)", "by", "artifact sha256", "config digest"):
        table.add_column(col, no_wrap=True)
    table.add_column("what changed", overflow="fold")
    table.add_column("reason", overflow="fold")
    for r in revisions:
        table.add_row(f"{r.rev}{' *' if r.current else ''}", _when(r.created_at), r.created_by,
                      r.artifact_sha256[:16], r.config_digest[:16], r.changes, r.reason or "")
    table.caption = f"{len(revisions)} revision(s); * the current one"
    return table


def render_diff(diff: ShadowDiff) -> list[object]:
    """The counts, then the first few input records the two revisions answered differently."""
    counts = Table(title=f"{diff.name}: live revision {diff.live_revision} vs shadow revision "
                         f"{diff.shadow_revision}", header_style="bold", title_justify="left")
    for col in ("identical", "different", "only live", "only shadow"):
        counts.add_column(col, justify="right")
    counts.add_row(str(diff.identical), str(diff.different), str(diff.only_live), str(diff.only_shadow))
    parts: list[object] = [counts]
    if diff.examples:
        examples = Table(title="first differences", header_style="bold", title_justify="left")
        for col in ("input record", "offset", "old output", "new output"):
            examples.add_column(col, overflow="fold")
        for e in diff.examples:
            examples.add_row(e["source"], str(e["offset"]), "\n".join(map(str, e["old"])),
                             "\n".join(map(str, e["new"])))
        parts.append(examples)
    return parts
