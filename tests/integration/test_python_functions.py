"""type: python functions end to end: registered from the client, run by a node in their own processes."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest

from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder
from tests.integration.harness import OutputReader, function_state, produce, wait_until

COUNTER = '''
import json
from fs_api import FSProcessorDriver, Context


class CounterProcessor(FSProcessorDriver):
    def init(self, ctx: Context, config: dict) -> None:
        self.skip_blank = config.get("skip_blank") == "yes"

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        if self.skip_blank and not data.strip():
            return
        if data == b"boom":
            raise ValueError("cannot count boom")
        if data == b"exit":
            import os
            os._exit(3)
        if data == b"spin":
            while True:
                pass
        store = ctx.getOrCreateKVStore("counter-store")
        n = int(store.get_state(data) or b"0") + 1
        store.put_state(data, str(n).encode())
        ctx.emit(json.dumps({"word": data.decode(), "count": n}).encode(), 0)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project directory on sys.path: write modules into it, import them."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    written = []

    def write(module: str, source: str):
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        written.append(module)
        importlib.invalidate_caches()
        return importlib.import_module(module)
    yield write
    for m in written:
        sys.modules.pop(m, None)


def counter_config(bootstrap, namespace, name="counter", timeout_ms=None, **init):
    b = (WasmTaskBuilder().set_name(name).set_type("python").add_init_config("class_name", "CounterProcessor"))
    for k, v in init.items():
        b.add_init_config(k, v)
    src = KafkaInput(bootstrap, f"{namespace}-words", f"{namespace}-counter-group")
    src.data["auto.offset.reset"] = "earliest"
    config = b.add_input_group([src]).add_output(KafkaOutput(bootstrap, f"{namespace}-counts", 0)).build()
    text = config.to_yaml()
    if timeout_ms:
        text += f"processor-runtime:\n  control-timeout-ms: {timeout_ms}\n"
    return text


def counts(out, n, timeout=60):
    return [(json.loads(v)["word"], json.loads(v)["count"]) for _, v in out.wait_for(n, timeout)]


def words(bootstrap, namespace, *ws):
    produce(bootstrap, f"{namespace}-words", [(w.encode(), w.encode()) for w in ws])


def test_counter_counts_exactly_in_order_and_keeps_counting_across_stop_start(
        bootstrap_servers, namespace, client, nodes, project):
    nodes("n1")
    module = project("counter_fn", COUNTER)
    assert client.create_python_function_from_config(counter_config(bootstrap_servers, namespace),
                                                     module.CounterProcessor)
    info = function_state(client, "counter")
    assert (info.task_type, info.status) == ("python", "RUNNING")
    out = OutputReader(bootstrap_servers, f"{namespace}-counts")
    words(bootstrap_servers, namespace, "apple", "pear", "apple", "fig", "apple")
    assert counts(out, 5) == [("apple", 1), ("pear", 1), ("apple", 2), ("fig", 1), ("apple", 3)]
    assert [k for k, _ in out.records] == [b"apple", b"pear", b"apple", b"fig", b"apple"]  # keys kept

    client.stop_function("counter")
    client.start_function("counter")
    words(bootstrap_servers, namespace, "pear", "apple")
    assert counts(out, 7)[5:] == [("pear", 2), ("apple", 4)]  # the state outlived the process
    assert len(out.poll()) == 7
    out.close()


def test_500_records_keep_their_order_and_totals_and_blank_records_are_skipped_by_the_class(
        bootstrap_servers, namespace, client, nodes, project):
    nodes("n1")
    module = project("counter_fn2", COUNTER)
    client.create_python_function_from_config(counter_config(bootstrap_servers, namespace, skip_blank="yes"),
                                              module.CounterProcessor)
    out = OutputReader(bootstrap_servers, f"{namespace}-counts")
    vocabulary = [f"w{i}" for i in range(10)]
    sent = [vocabulary[i % 10] for i in range(500)]
    words(bootstrap_servers, namespace, "", "   ", *sent, "\t")
    got = counts(out, 500)
    assert [w for w, _ in got] == sent
    assert [c for _, c in got] == [i // 10 + 1 for i in range(500)]
    words(bootstrap_servers, namespace, "last")
    assert counts(out, 501)[-1] == ("last", 1) and len(out.poll()) == 501  # nothing for the blank ones
    out.close()


def test_a_module_graph_of_two_local_files(bootstrap_servers, namespace, client, nodes, project):
    nodes("n1")
    project("shouting", '''
        def shout(data: bytes) -> bytes:
            return data.upper() + b"!"
    ''')
    module = project("shout_fn", '''
        from fs_api import FSProcessorDriver
        from shouting import shout

        class Shout(FSProcessorDriver):
            def process(self, ctx, source_id, data):
                ctx.emit(shout(data))
    ''')
    config = counter_config(bootstrap_servers, namespace, name="shout")
    client.create_python_function_from_config(config, module.Shout)
    out = OutputReader(bootstrap_servers, f"{namespace}-counts")
    words(bootstrap_servers, namespace, "hey")
    assert out.wait_for(1) == [(b"hey", b"HEY!")]
    out.close()


@pytest.mark.parametrize("poison, reason", [
    ("boom", "ValueError: cannot count boom"),
    ("exit", "exited with code 3"),
    ("spin", "budget"),
])
def test_user_code_that_fails_leaves_the_node_up_and_says_why(
        bootstrap_servers, namespace, client, nodes, project, poison, reason):
    node = nodes("n1")
    module = project(f"counter_{poison}", COUNTER)
    client.create_python_function_from_config(counter_config(bootstrap_servers, namespace, timeout_ms=1000),
                                              module.CounterProcessor)
    out = OutputReader(bootstrap_servers, f"{namespace}-counts")
    words(bootstrap_servers, namespace, "before", poison, "after")
    assert counts(out, 1) == [("before", 1)]
    info = wait_until(lambda: (f := function_state(client, "counter")) and f.status == "FAILED" and f, 60,
                      "counter FAILED")
    assert reason in info.error and f"{namespace}-words[0]@1" in info.error
    assert node.proc.poll() is None
    # The node keeps serving: another function deploys and runs beside the failing one.
    echo = project(f"echo_{poison}", '''
        from fs_api import FSProcessorDriver
        class Echo(FSProcessorDriver):
            def process(self, ctx, source_id, data):
                ctx.emit(data)
    ''')
    src = KafkaInput(bootstrap_servers, f"{namespace}-e-in", f"{namespace}-e-group")
    src.data["auto.offset.reset"] = "earliest"
    config = (WasmTaskBuilder().set_name("echo").add_input_group([src])
              .add_output(KafkaOutput(bootstrap_servers, f"{namespace}-e-out")).build())
    client.create_python_function_from_config(config, echo.Echo)
    echoed = OutputReader(bootstrap_servers, f"{namespace}-e-out")
    produce(bootstrap_servers, f"{namespace}-e-in", [(b"k", b"still up")])
    assert echoed.wait_for(1) == [(b"k", b"still up")]
    out.close()
    echoed.close()


def test_declared_requirements_are_installed_into_an_environment_or_refused(
        bootstrap_servers, namespace, client, nodes, project):
    nodes("n1")
    # tabulate is not installed on the node: only the function's environment has it.
    module = project("tab_fn", '''
        from fs_api import FSProcessorDriver

        class Table(FSProcessorDriver):
            def process(self, ctx, source_id, data):
                import tabulate
                ctx.emit(tabulate.__version__.encode())
    ''')
    config = counter_config(bootstrap_servers, namespace, name="tab") + "requirements:\n  - tabulate==0.10.0\n"
    client.create_python_function_from_config(config, module.Table, timeout=300)
    out = OutputReader(bootstrap_servers, f"{namespace}-counts")
    words(bootstrap_servers, namespace, "v")
    assert out.wait_for(1) == [(b"v", b"0.10.0")]

    broken = counter_config(bootstrap_servers, namespace, name="broken").replace(
        f"{namespace}-words", f"{namespace}-w2") + "requirements:\n  - fs-bus-no-such-package-xyz==0.0.1\n"
    with pytest.raises(Exception) as info:
        client.create_python_function_from_config(broken, module.Table, timeout=300)
    assert "installing requirements" in str(info.value) and "fs-bus-no-such-package-xyz" in str(info.value)
    out.close()


def test_a_python_function_in_the_wasm_runtime_gets_its_modules_through_fs_exec(
        bootstrap_servers, namespace, client, nodes, project):
    """python-runtime: wasm runs the same class inside the Python runtime component:
    the node hands it the artifact's modules with the world's fs-exec."""
    node = nodes("n1")
    project("wordnorm", '''
        def norm(data: bytes) -> bytes:
            return data.strip().lower()
    ''')
    module = project("sandboxed_counter", '''
        import json
        from fs_api import FSProcessorDriver
        from wordnorm import norm

        class SandboxedCounter(FSProcessorDriver):
            def process(self, ctx, source_id, data):
                word = norm(data)
                store = ctx.getOrCreateKVStore("counter-store")
                n = int(store.get_state(word) or b"0") + 1
                store.put_state(word, str(n).encode())
                ctx.emit(json.dumps({"word": word.decode(), "count": n}).encode(), 0)
    ''')
    config = counter_config(bootstrap_servers, namespace, name="sandboxed") + "python-runtime: wasm\n"
    client.create_python_function_from_config(config, module.SandboxedCounter, timeout=300)
    out = OutputReader(bootstrap_servers, f"{namespace}-counts")
    words(bootstrap_servers, namespace, "Apple", "pear ", "APPLE")
    assert counts(out, 3) == [("apple", 1), ("pear", 1), ("apple", 2)]
    # It runs as a component inside the node: no Python process was started for it.
    assert not _children(node.proc.pid)
    client.stop_function("sandboxed")
    client.start_function("sandboxed", timeout=300)
    words(bootstrap_servers, namespace, "apple")
    assert counts(out, 4)[3] == ("apple", 3)  # state kept across STOP/START
    out.close()


def _children(pid: int) -> list[str]:
    from pathlib import Path

    return [c for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]
