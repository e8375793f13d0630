"""`fs-bus init`'s checks and what it writes (no toolchain runs here; the projects are
built and tested in tests/integration/test_init_projects.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fs_bus.scaffold import LANGUAGES, ScaffoldError, init_project

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_project_has_source_config_test_and_readme_without_placeholders(tmp_path, lang):
    project = init_project("word-count", lang, tmp_path / "p")
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert {"config.yaml", "test_function.py", "README.md", ".gitignore"} <= files
    for path in project.rglob("*"):
        if path.is_file() and path.suffix != ".wit":
            assert "@" + "NAME" not in path.read_text(), path
    readme = (project / "README.md").read_text()
    assert "python3 -m pytest -q" in readme and "fs-bus test" in readme
    if LANGUAGES[lang].component:
        assert "build.sh" in files and (project / "build.sh").stat().st_mode & 0o111
        assert (project / "wit" / "processor.wit").read_bytes() == (ROOT / "wit" / "processor.wit").read_bytes()
        assert "CREATE FUNCTION" in readme
        script = (project / "build.sh").read_text()
        assert "../" not in "".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    else:
        assert "class WordCountProcessor(FSProcessorDriver)" in (project / "processor.py").read_text()


def test_a_non_empty_directory_is_not_overwritten(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    with pytest.raises(ScaffoldError, match="taken exists and is not empty"):
        init_project("taken", "go", tmp_path / "taken")
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize("name", ["-x", "a b", "", "ü"])
def test_a_name_no_function_can_have_is_refused(tmp_path, name):
    with pytest.raises(ScaffoldError, match="cannot name a function"):
        init_project(name, "python", tmp_path / "p")


def test_an_unknown_language_is_named_with_the_known_ones(tmp_path):
    with pytest.raises(ScaffoldError, match="unknown language 'cobol'; one of python, go, rust, c, js"):
        init_project("x", "cobol", tmp_path / "p")
