"""Register and start @NAME@ on the fs-bus cluster at --bootstrap-servers.

    python3 deploy.py --bootstrap-servers 127.0.0.1:9092

Uploads processor.py (and the project modules it imports) with config.yaml; the
SQL CLI's CREATE FUNCTION takes .wasm components, a Python class goes through
the client like this.
"""

import argparse
from pathlib import Path

from fs_bus.client import FsClient
from processor import @CLASS@

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    args = parser.parse_args()
    with FsClient(bootstrap_servers=args.bootstrap_servers) as client:
        client.create_python_function_from_config((HERE / "config.yaml").read_text(), @CLASS@)
    print("created @NAME@")
