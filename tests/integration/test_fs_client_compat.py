"""A script written for the reference project's Python client runs against fs-bus, unchanged but for the address."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.harness import UPPER_WASM, OutputReader, produce


def test_reference_client_imports_resolve_to_one_client():
    import fs_client
    import fs_client.client
    from fs_bus.client import FsClient as BusClient
    from fs_client import FsClient
    from fs_client.client import FsClient as FsClient2
    from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder  # noqa: F401

    assert FsClient is FsClient2
    assert issubclass(FsClient, BusClient)
    assert fs_client.WasmTaskBuilder is WasmTaskBuilder
    assert fs_client.client.FunctionInfo.__module__ == "fs_bus.client.models"


def test_builder_defaults_to_python_as_the_reference_does():
    from fs_client.config import WasmTaskBuilder

    config = WasmTaskBuilder().build()
    assert config.task_type == "python"
    assert config.task_name == "default-processor"
    assert yaml.safe_load(config.to_yaml())["type"] == "python"


def _reference_script_config(bootstrap: str, src: str, dst: str, group: str):
    from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder

    kafka_input = KafkaInput(bootstrap, src, group)
    kafka_input.data["auto.offset.reset"] = "earliest"
    return (WasmTaskBuilder()
            .set_name("upper")
            .set_type("processor")
            .add_init_config("k", "v")
            .add_input_group([kafka_input])
            .add_output(KafkaOutput(bootstrap, dst, 0))
            .build())


def test_reference_client_script_runs_unchanged_but_for_the_address(bootstrap_servers, namespace, nodes):
    from fs_client import FsClient
    from fs_client.client import FunctionInfo

    nodes("n1")
    src, dst, group = f"{namespace}-in", f"{namespace}-out", f"{namespace}-group"
    host, port = bootstrap_servers.rsplit(":", 1)
    config = _reference_script_config(bootstrap_servers, src, dst, group)
    parsed = yaml.safe_load(config.to_yaml())
    assert parsed["type"] == "processor" and parsed["init_config"] == {"k": "v"}
    assert parsed["input-groups"][0]["inputs"][0]["auto.offset.reset"] == "earliest"

    out = OutputReader(bootstrap_servers, dst)
    try:
        with FsClient(host=host, port=int(port), namespace=namespace) as client:
            assert client.create_function_from_bytes(UPPER_WASM.read_bytes(), config.to_yaml()) is True

            produce(bootstrap_servers, src, [(b"key-1", b"hello")])
            assert out.wait_for(1) == [(b"key-1", b"HELLO")]

            functions = client.show_functions().functions
            expected = [FunctionInfo(name="upper", task_type="processor", status="RUNNING")]
            assert [(f.name, f.task_type, f.status) for f in functions] == \
                   [(f.name, f.task_type, f.status) for f in expected]
            assert repr(functions[0]) == "FunctionInfo(name='upper', task_type='processor', status='RUNNING')"

            assert client.stop_function("upper") is True
            assert [(f.name, f.status) for f in client.show_functions().functions] == [("upper", "STOPPED")]
            assert client.start_function("upper") is True
            assert [(f.name, f.status) for f in client.show_functions().functions] == [("upper", "RUNNING")]
            assert client.drop_function("upper") is True
            assert client.show_functions().functions == []
    finally:
        out.close()


def test_python_type_with_a_wasm_file_is_refused_before_anything_is_written(bootstrap_servers, namespace):
    from fs_bus.errors import InvalidArtifact
    from fs_client import FsClient
    from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder

    host, port = bootstrap_servers.rsplit(":", 1)
    config = (WasmTaskBuilder().set_name("py-fn")  # no set_type: the reference default, python
              .add_input_group([KafkaInput(bootstrap_servers, f"{namespace}-in", f"{namespace}-g")])
              .add_output(KafkaOutput(bootstrap_servers, f"{namespace}-out"))
              .build())
    with FsClient(host=host, port=int(port), namespace=namespace) as client:
        with pytest.raises(InvalidArtifact) as info:
            client.create_function_from_bytes(UPPER_WASM.read_bytes(), config.to_yaml())
        message = str(info.value)
        assert "'py-fn'" in message and "type 'python'" in message and "type: processor" in message
        assert client.show_functions().functions == []


def test_python_type_error_advises_no_method_that_does_not_exist(bootstrap_servers, namespace):
    import re

    from fs_bus.errors import InvalidArtifact
    from fs_client import FsClient
    from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder

    config = (WasmTaskBuilder().set_name("py-fn")
              .add_input_group([KafkaInput(bootstrap_servers, f"{namespace}-in", f"{namespace}-g")])
              .add_output(KafkaOutput(bootstrap_servers, f"{namespace}-out"))
              .build())
    with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace) as client:
        with pytest.raises(InvalidArtifact) as info:
            client.create_function_from_bytes(UPPER_WASM.read_bytes(), config.to_yaml())
    advised = re.findall(r"\bcreate_\w+", str(info.value))
    assert all(hasattr(FsClient, name) for name in advised), advised
