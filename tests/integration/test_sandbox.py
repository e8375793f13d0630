"""On a live node, user code that misbehaves fails alone: a WebAssembly memory bomb stops at
its instance's memory limit, an endless loop at its time budget, a Python memory bomb at its
process's limit; another function on the same node keeps running."""

from __future__ import annotations

import textwrap

from tests.integration.harness import (
    UPPER_WASM, OutputReader, function_state, misbehaving_upper_wasm, produce, upper_config, wait_until,
)

HOG = textwrap.dedent("""\
    from fs_api import FSProcessorDriver

    class Hog(FSProcessorDriver):
        def process(self, ctx, source_id, data):
            hog = []
            while True:
                hog.append(bytearray(16 << 20))
    """).encode()


def _limited(config: str, **limits: int) -> str:
    keys = "".join(f"  {k.replace('_', '-')}: {v}\n" for k, v in limits.items())
    return config + "processor-runtime:\n" + keys


def test_memory_bombs_and_endless_loops_fail_alone_on_a_live_node(bootstrap_servers, namespace, client, nodes):
    node = nodes("n1")
    t = lambda s: f"{namespace}-{s}"  # noqa: E731
    bad = misbehaving_upper_wasm()
    client.create_function_from_bytes(bad, _limited(upper_config(bootstrap_servers, "bomb", t("b"), t("bo")),
                                                    memory_limit_mb=16))
    client.create_function_from_bytes(bad, _limited(upper_config(bootstrap_servers, "spin", t("s"), t("so")),
                                                    control_timeout_ms=500))
    python = _limited(upper_config(bootstrap_servers, "hog", t("h"), t("ho")).replace("type: processor", "type: python"),
                      memory_limit_mb=200)
    client.create_python_function("Hog", [("hog", HOG)], python)
    client.create_function_from_bytes(UPPER_WASM.read_bytes(), upper_config(bootstrap_servers, "sturdy", t("i"), t("o")))
    produce(bootstrap_servers, t("b"), [(b"k", b"+grow")])
    produce(bootstrap_servers, t("s"), [(b"k", b"~spin")])
    produce(bootstrap_servers, t("h"), [(b"k", b"eat")])

    def failed(name: str):
        return (f := function_state(client, name)) and f.status == "FAILED" and f
    assert "its memory is limited to 16 MiB" in wait_until(lambda: failed("bomb"), 60, "bomb FAILED").error
    assert "ran past its 0.5 s budget" in wait_until(lambda: failed("spin"), 60, "spin FAILED").error
    assert "MemoryError" in wait_until(lambda: failed("hog"), 60, "hog FAILED").error

    out = OutputReader(bootstrap_servers, t("o"))
    produce(bootstrap_servers, t("i"), [(b"k", b"fine")])
    assert out.wait_for(1) == [(b"k", b"FINE")]
    assert node.proc.poll() is None and function_state(client, "sturdy").status == "RUNNING"
    out.close()
