"""Reports how many inputs the fuzz suite fed, per target (and into $FS_BUS_FUZZ_REPORT as JSON)."""

from __future__ import annotations

import json
import os

from tests.fuzz.cases import CASES


def pytest_terminal_summary(terminalreporter) -> None:
    if not CASES:
        return
    total = sum(CASES.values())
    detail = ", ".join(f"{target} {n}" for target, n in sorted(CASES.items()))
    terminalreporter.write_line(f"fuzz: {total} cases ({detail})")
    report = os.environ.get("FS_BUS_FUZZ_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump({"total": total, "targets": dict(CASES)}, f, indent=1, sort_keys=True)
