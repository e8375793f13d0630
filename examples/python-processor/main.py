"""Register the word counter (counter.py) as a ``type: python`` function.

    python3 main.py                        # Kafka at 127.0.0.1:9092, config.yaml beside this file
    python3 main.py --host kafka --port 9092 --namespace fs-bus --config my-config.yaml
    python3 main.py --check                # run the counter here, in memory, on a sample record

It uses the reference FunctionStream client's names (``fs_client.FsClient``,
``create_python_function_from_config``), so a script written for the reference
project runs with only the address changed: host and port are Kafka's. The client
uploads counter.py (and any project module it imports) to the cluster's artifact
topic and writes the function's control record; it returns once every live node
reports the function RUNNING.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # counter.py is a project module, found by the client's import scan

from counter import CounterProcessor  # noqa: E402


def check(config_path: Path) -> None:
    """Process ``hello world hello`` and ``hello`` with an in-memory state, as a node would."""
    import yaml
    from fs_api import Context

    init = {str(k): str(v) for k, v in (yaml.safe_load(config_path.read_text()).get("init_config") or {}).items()}
    ctx, driver = Context(init), CounterProcessor()
    driver.init(ctx, init)
    for record in (b"hello world hello", b"hello"):
        driver.process(ctx, 0, record)
        for _, out in ctx.take_emitted().records:
            print(out.decode())


def register(args: argparse.Namespace) -> None:
    from fs_client import FsClient

    config = args.config.read_text()
    with FsClient(host=args.host, port=args.port, namespace=args.namespace, timeout=args.timeout) as client:
        client.create_python_function_from_config(config, CounterProcessor)
        for f in client.show_functions().functions:
            print(json.dumps({"name": f.name, "type": f.task_type, "status": f.status}))


def main(argv: list[str] | None = None) -> None:
    default_host, _, default_port = os.environ.get("FS_BUS_BOOTSTRAP_SERVERS", "127.0.0.1:9092").partition(":")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=default_host, help="a Kafka bootstrap server's host")
    parser.add_argument("--port", type=int, default=int(default_port or 9092), help="its port")
    parser.add_argument("--namespace", default=os.environ.get("FS_BUS_NAMESPACE", "fs-bus"),
                        help="the fs-bus cluster's topic prefix")
    parser.add_argument("--config", type=Path, default=HERE / "config.yaml", help="the function's config")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the nodes")
    parser.add_argument("--check", action="store_true", help="run the counter locally on a sample, register nothing")
    args = parser.parse_args(argv)
    if args.check:
        check(args.config)
    else:
        register(args)


if __name__ == "__main__":
    main()
