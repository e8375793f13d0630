"""A fast-path guest (world fs-bus:batch/fast-processor) built with the Python SDK,
for the tests: it shows each record's metadata back in what it emits.

- ``fail``: raises (the record fails; the records before it count);
- ``drop``: emits nothing; ``twice``: emits two records;
- ``to:N ...``: emits to output N;
- otherwise: the value upper-cased, with the input's key, and headers carrying
  the record's offset, partition, timestamp, source id, its own headers and the
  ``greeting`` from init_config.
"""

from fs_bus_guest import Batch, Output, WitWorld, function, init  # noqa: F401 - Batch, WitWorld: the exports

greeting = b""


@init
def setup(config: dict) -> None:
    global greeting
    greeting = config.get("greeting", "").encode()


@function
def process(record):
    value = record.value or b""
    if value == b"fail":
        raise ValueError("asked to fail")
    if value == b"drop":
        return None
    if value == b"twice":
        return [b"one", Output(b"two", key=b"k2")]
    if value.startswith(b"to:"):
        return Output(value, target=int(value[3:].split()[0]), key=None)
    meta = [("offset", str(record.offset).encode()), ("partition", str(record.partition).encode()),
            ("timestamp", str(record.timestamp).encode()), ("source", str(record.source_id).encode()),
            ("greeting", greeting)]
    return Output(value.upper(), headers=meta + [("in-" + n, v) for n, v in record.headers])
