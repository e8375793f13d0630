"""An example's build.sh without its toolchain stops at once, saying what to install:
the tests that build the examples then fail with that message instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bare_path(tmp_path) -> str:
    """A PATH holding only what build.sh needs before it looks for its toolchain."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


def build(example: str, path: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/bash", str(ROOT / "examples" / example / "build.sh")], capture_output=True,
                          text=True, timeout=60, env={"PATH": path, "HOME": os.environ["HOME"], **env})


@pytest.mark.parametrize("example, message", [
    ("c-processor", "zig not found: pip install ziglang"),
    ("zig-processor", "zig not found: pip install ziglang==0.17.0"),
    ("js-processor", "node not found: install Node.js >= 18"),
])
def test_a_missing_toolchain_fails_naming_what_to_install(bare_path, example, message):
    done = build(example, bare_path)
    assert done.returncode == 1 and message in done.stderr, done.stderr


def test_the_zig_example_refuses_another_zig_release_by_name(bare_path):
    (Path(bare_path) / "echo").symlink_to(shutil.which("echo"))
    done = build("zig-processor", bare_path, ZIG="echo 0.16.0")
    assert done.returncode == 1 and "zig is 0.16.0" in done.stderr and "written for 0.17" in done.stderr
