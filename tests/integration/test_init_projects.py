"""`fs-bus init NAME --lang L` makes a project that builds and whose own test passes,
as a new author runs it: `fs-bus init`, then `./build.sh`, then `python3 -m pytest`
in the project. Every language whose toolchain this machine has (Go, zig, npm,
componentize-py come from `.[test]` and tools/system-packages); a build that
cannot find its toolchain fails with its own message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def init(tmp_path: Path, lang: str) -> Path:
    done = run([sys.executable, "-m", "fs_bus", "init", f"my-{lang}", "--lang", lang], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / f"my-{lang}"


def rust_wasm_target() -> bool:
    try:
        sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        return False
    return (Path(sysroot) / "lib" / "rustlib" / "wasm32-wasip1").is_dir()


@pytest.mark.parametrize("lang", ["python", "go", "c", "js", "python-component", "rust"])
def test_a_new_project_builds_and_its_own_test_passes(tmp_path, lang):
    if lang == "rust" and not rust_wasm_target():
        pytest.skip("Rust's wasm32-wasip1 standard library is not installed (rustup target add wasm32-wasip1; "
                    "it comes from rustup's servers, not from crates.io)")
    project = init(tmp_path, lang)
    if lang != "python":
        built = run(["bash", "build.sh"], cwd=project)
        assert built.returncode == 0, f"{built.stdout}\n{built.stderr}"
        assert (project / "build" / "processor.wasm").is_file()
    tested = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_function.py"], cwd=project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout


def test_fs_bus_test_runs_a_new_python_project_from_the_command_line(tmp_path):
    project = init(tmp_path, "python")
    done = subprocess.run([sys.executable, "-m", "fs_bus", "test", "processor.py", "--config", "config.yaml"],
                          input="apple\npear\napple\n", cwd=project, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[-1] for line in done.stdout.splitlines()] == ["apple=1", "pear=1", "apple=2"]


@pytest.mark.skipif(rust_wasm_target(), reason="the wasm32-wasip1 target is installed: the project builds instead")
def test_a_rust_project_without_the_wasm_target_says_what_to_install_and_its_source_compiles(tmp_path):
    project = init(tmp_path, "rust")
    built = run(["bash", "build.sh"], cwd=project, timeout=120)
    assert built.returncode == 1
    assert "the Rust standard library for wasm32-wasip1 is not installed" in built.stderr
    assert "rustup target add wasm32-wasip1" in built.stderr
    # What can be checked without the target: src/lib.rs against the world's bindings, which
    # wit-bindgen (crates.io) generates from wit/, compiled for this machine. The target
    # directory is kept between runs: the first one compiles wit-bindgen (minutes on 2 cores).
    target_dir = Path.home() / ".cache" / "fs-bus" / "test-cargo-target"
    checked = subprocess.run(["cargo", "check", "--quiet"], cwd=project, capture_output=True, text=True, timeout=1200,
                             env={**os.environ, "CARGO_TARGET_DIR": str(target_dir)})
    assert checked.returncode == 0, checked.stderr
