"""The docs hold together: every relative link resolves, and every example that builds
from source has what the issue asks of it and is walked through in docs/examples.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").glob("*/README.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
BUILT_FROM_SOURCE = sorted(p.parent.name for p in (ROOT / "examples").glob("*/build.sh"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    for target, _ in LINK.findall(page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def test_the_docs_cover_what_the_issue_names():
    names = {p.stem for p in (ROOT / "docs").glob("*.md")}
    assert {"concepts", "function-config", "wit", "sql", "python-client", "operations", "examples",
            "writing-functions"} <= names
    assert "docs/README.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("example", BUILT_FROM_SOURCE)
def test_each_example_has_build_config_readme_and_a_walkthrough(example):
    directory = ROOT / "examples" / example
    for name in ("build.sh", "config.yaml", "README.md"):
        assert (directory / name).is_file(), f"examples/{example}/{name} is missing"
    assert f"## {example}" in (ROOT / "docs" / "examples.md").read_text()
