"""upper-fast in Python: every record's value upper-cased, to output 0, keeping its
key, on fs-bus's fast path (world fast-processor, wit/fs-bus/batch.wit), written
with the Python SDK (sdk/python/fs_bus_guest.py), which hides the batch framing."""

from fs_bus_guest import Batch, WitWorld, function  # noqa: F401 - Batch and WitWorld are the component's exports


@function
def process(record):
    # bytes: to output 0 with the input's key; fs_bus_guest.Output chooses target, key and headers
    return None if record.value is None else record.value.upper()
