"""Fixtures shared by the unit tests of the author's loop (fs_bus.testing, `fs-bus test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guests import build


@pytest.fixture(scope="module")
def go_counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/go-processor built (cached by its sources), as a file."""
    path = tmp_path_factory.mktemp("go") / "processor.wasm"
    path.write_bytes(build.example("go-processor"))
    return path
