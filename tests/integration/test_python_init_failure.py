"""A Python function whose init raises fails its CREATE, every time (issue 17, point 6):
a node reports RUNNING only once its first assignment's workers exist, init included."""

from __future__ import annotations

import pytest

from fs_bus.client import FsClient
from fs_bus.errors import FunctionFailed
from tests.integration.test_python_functions import counter_config, project  # noqa: F401 - a fixture

BROKEN = '''
from fs_api import FSProcessorDriver, Context


class CounterProcessor(FSProcessorDriver):
    def init(self, ctx: Context, config: dict) -> None:
        import fs_bus_no_such_module  # noqa: F401

    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        pass
'''


def test_a_create_whose_init_raises_import_error_fails_each_time(bootstrap_servers, namespace, nodes, project):  # noqa: F811
    nodes("n1")
    driver = project("broken_init_driver", BROKEN).CounterProcessor
    config = counter_config(bootstrap_servers, namespace, name="broken")
    with FsClient(bootstrap_servers=bootstrap_servers, namespace=namespace, timeout=60) as client:
        for attempt in range(2):
            with pytest.raises(FunctionFailed, match="fs_bus_no_such_module"):
                client.create_python_function_from_config(config, driver)
            client.drop_function("broken")
