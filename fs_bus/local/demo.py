"""``fs-bus local demo``: the main job end to end on the local cluster.

Starts the broker and a node if they are not running, deploys ``examples/upper``,
sends a few records to ``upper-input`` and prints what arrives on ``upper-output``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

from fs_bus.client import FsClient
from fs_bus.errors import FunctionAlreadyExists, LocalClusterError
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "upper"


def run(directory: Path, *, port: int, say: Callable[[str], None], lines: list[str] | None = None) -> list[str]:
    from fs_bus.local import cluster

    if not (EXAMPLE / "upper.wasm").is_file():
        raise LocalClusterError(f"the example is missing: {EXAMPLE / 'upper.wasm'} (run from a clone of fs-bus)")
    bootstrap = cluster.up(directory, port=port, say=say)
    config = (EXAMPLE / "config.yaml").read_text().replace("127.0.0.1:9092", bootstrap)
    with FsClient(bootstrap_servers=bootstrap) as client:
        try:
            client.create_function_from_bytes((EXAMPLE / "upper.wasm").read_bytes(), config)
            say("deployed function 'upper' (examples/upper/upper.wasm): upper-input -> upper-output")
        except FunctionAlreadyExists:
            client.start_function("upper")
            say("function 'upper' already deployed; it is running")
    run_id = uuid.uuid4().hex[:6]
    lines = lines or ["hello", "fs-bus runs functions over kafka", "wasm components in python"]
    settings = KafkaSettings(bootstrap)  # the local broker: plaintext, whatever FS_BUS_KAFKA_* says
    producer = clients.producer(settings, "demo")
    keys = []
    for i, line in enumerate(lines):
        key = f"{run_id}-{i}"
        keys.append(key.encode())
        producer.produce("upper-input", key=key, value=line.encode())
        say(f"  -> upper-input   {key}: {line}")
    producer.flush(30)
    consumer = clients.demo_consumer(settings, f"fs-bus-demo-{run_id}")
    consumer.subscribe(["upper-output"])
    got: dict[bytes, str] = {}
    deadline = time.monotonic() + 60
    try:
        while len(got) < len(keys) and time.monotonic() < deadline:
            for m in consumer.consume(100, 0.5):
                if m.error() is None and m.key() in keys and m.key() not in got:
                    got[m.key()] = m.value().decode(errors="replace")
                    say(f"  <- upper-output  {m.key().decode()}: {got[m.key()]}")
    finally:
        consumer.close()
    if len(got) < len(keys):
        raise LocalClusterError(f"only {len(got)} of {len(keys)} records came out within 60 s; "
                                f"see {directory / 'node.log'}")
    say("done: try `fs-bus sql` (SHOW FUNCTIONS; STOP FUNCTION upper; ...) or "
        "`fs-bus produce upper-input hi` and `fs-bus consume upper-output`")
    say(f"the broker ({bootstrap}), node local-1 and the console keep running in the background; "
        "`fs-bus local down` stops them (`--purge` also deletes their data)")
    return [got[k] for k in keys]
