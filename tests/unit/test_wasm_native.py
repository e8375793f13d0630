"""The native WebAssembly host (fs_bus._native, native/): that it is there where it
can be built, and that choosing it leaves wasmtime-py as it found it. Its semantics
are tested by the runtime tests, which run once per host (tests/wasm_hosts.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fs_bus.runtime.wasm import WasmEngine, wasm_host
from tests.wasm_hosts import AVAILABLE, EXPECT_NATIVE


def test_the_native_host_is_built_where_rust_is() -> None:
    from fs_bus.runtime import wasm

    if EXPECT_NATIVE:
        assert "native" in AVAILABLE, (
            f"cargo is on PATH but fs_bus._native does not import ({wasm._NATIVE_MISSING}): "
            "`pip install -e .` builds it (see pyproject.toml, native/)")
        assert wasm_host() == "native"
    else:
        assert wasm_host() == "python"


def test_the_host_can_be_chosen_and_a_wrong_choice_says_what_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FS_BUS_WASM_HOST", "python")
    assert wasm_host() == "python"
    with WasmEngine() as engine:
        assert engine.host == "python" and engine.describe_host().startswith("python (wasmtime-py")
    monkeypatch.setenv("FS_BUS_WASM_HOST", "wasmer")
    with pytest.raises(ValueError, match="FS_BUS_WASM_HOST='wasmer': expected one of auto, native, python"):
        wasm_host()


@pytest.mark.parametrize("host", AVAILABLE)
def test_only_the_wasmtime_py_host_patches_wasmtime_py(host: str) -> None:
    """The native road uses no private module of wasmtime-py and patches nothing."""
    code = (
        "import sys\n"
        "import wasmtime.component as wc\n"
        "from fs_bus.runtime.wasm import WasmEngine\n"
        f"e = WasmEngine(host={host!r})\n"
        "print(wc.ResultType.convert_to_c.__name__, 'fs_bus.runtime.wasm_bytes' in sys.modules)\n"
        "e.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "FS_BUS_WASM_HOST": "auto"}).stdout.split()
    assert out == (["_lower_result", "True"] if host == "python" else ["convert_to_c", "False"])
