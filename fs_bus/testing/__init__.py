"""The function author's loop: run a function in process, without Kafka.

    from fs_bus.testing import FunctionHarness

    def test_counts_words():
        with FunctionHarness("build/processor.wasm", "config.yaml") as fn:
            fn.send(b"to be or not to be")
            assert fn.state("counter-store")[b"count:be"] == b"2"

- ``harness``  :class:`FunctionHarness`: feed records, read what each output got, read and
  preset the kv state, call checkpoints, watermarks and ``fs-custom``; the node's own
  runtime code, limits and error messages
- ``lines``    the input and output formats of ``fs-bus test`` (pure)

docs/writing-functions.md walks through it, from ``fs-bus init`` to ``CREATE FUNCTION``.
"""

from fs_bus.errors import GuestError, GuestTimeout, RecordError
from fs_bus.state.kv import ComplexKey
from fs_bus.testing.harness import FunctionHarness, Input, Output, default_cache_dir

__all__ = ["ComplexKey", "FunctionHarness", "GuestError", "GuestTimeout", "Input", "Output", "RecordError", "default_cache_dir"]
