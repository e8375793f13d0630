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


def test_each_example_has_topics_of_its_own():
    """Examples that shared topics and read from earliest counted each other's records,
    so the counts the docs promise came out wrong after the README's demo."""
    import yaml

    owners: dict[str, str] = {}
    for config in sorted((ROOT / "examples").glob("*/config.yaml")):
        doc = yaml.safe_load(config.read_text())
        topics = [i["topic"] for g in doc["input-groups"] for i in g["inputs"]] + [o["topic"] for o in doc["outputs"]]
        for topic in topics:
            assert topic not in owners, f"{config.parent.name} and {owners[topic]} both use topic {topic!r}"
            owners[topic] = config.parent.name


def test_the_exit_code_lists_name_every_code_that_fs_bus_help_lists():
    from fs_bus.cli.main import EXIT_CODES_HELP

    codes = re.findall(r"^  (\d)  ", EXIT_CODES_HELP, re.M)
    assert codes == ["0", "1", "2", "3", "4", "5"]
    for page in ("docs/cli.md", "docs/sql.md"):
        listed = re.findall(r"^\| (\d) \|", (ROOT / page).read_text(), re.M)
        assert listed == codes, f"{page} lists exit codes {listed}"
    readme = (ROOT / "README.md").read_text()
    for passage in re.findall(r"Exit codes[^.]*?`0` success.*?(?:\n\n|\n-)", readme, re.S):
        assert all(f"`{c}`" in passage for c in codes), f"README's exit codes stop short: {passage!r}"


def test_the_docs_do_not_call_built_things_missing():
    text = "\n".join(p.read_text() for p in PAGES)
    for stale in ("(scale-out issue)", "no test runs against an authorizing", "until an error policy exists"):
        assert stale not in text, f"the docs still say {stale!r}"
