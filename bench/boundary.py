"""The `boundary` case: what crossing the guest boundary costs, in process, per host.

No Kafka: a processor per WebAssembly host (native, and wasmtime-py) runs
``bench/guests/kvloop`` (a record of N bytes makes N kv get-state + put-state calls
on one key, then one emit) through ``process_records``, the node's road, on batches
of 500 records. Reported per host:

- ``record_us``: one record through ``fs-process`` with one emit and one kv
  get+put (a 1-byte record);
- ``kv_call_us``: one kv call, from the difference between 1-byte records and
  (1 + K)-byte ones, over 2K calls.

Best of 5 rounds, so a busy machine moves the figures less.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, CaseSkipped, Deadline, log

GUEST = ROOT / "bench" / "guests" / "kvloop"
ROUNDS = 5


def guest_wasm() -> bytes:
    """bench/guests/kvloop built (zig and wasm-tools, as for examples/c-processor)."""
    out = GUEST / "build" / "kvloop.wasm"
    source = GUEST / "kvloop.c"
    if not out.is_file() or out.stat().st_mtime < source.stat().st_mtime:
        done = subprocess.run(["bash", str(GUEST / "build.sh")], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise CaseSkipped(f"skipped: bench/guests/kvloop/build.sh failed: {done.stderr.strip()[-500:]}")
    return out.read_bytes()


def _per_record_us(processor: Any, size: int, records: int) -> float:
    from fs_bus.runtime.framing import Record

    batch = [Record(b"x" * size, None)] * 500
    processor.process_records(0, batch)  # warm: the store is opened, the key cached
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(max(1, records // len(batch))):
            processor.process_records(0, batch)
        best = min(best, (time.perf_counter() - start) / (max(1, records // len(batch)) * len(batch)))
    return best * 1e6


def run_boundary(deadline: Deadline) -> dict[str, Any]:
    from fs_bus.runtime.wasm import HOSTS, WasmEngine, WasmProcessor, _native
    from fs_bus.state.backend import MemoryBackend

    wasm = guest_wasm()
    sha = hashlib.sha256(wasm).hexdigest()
    hosts: dict[str, Any] = {}
    for host in HOSTS:
        if host == "native" and _native is None:
            hosts[host] = {"status": "skipped", "error": "fs_bus._native is not built on this machine"}
            continue
        # The wasmtime-py host is ~100x slower per call: fewer records, fewer extra calls.
        records, extra = (5000, 50) if host == "native" else (500, 5)
        with WasmEngine(host=host) as engine:
            component = engine.load(sha, wasm)
            with WasmProcessor(engine, component, {}, function_name="kvloop", state=MemoryBackend()) as p:
                one = _per_record_us(p, 1, records)
                more = _per_record_us(p, 1 + extra, records)
        hosts[host] = {"status": "ok", "record_us": one, "kv_call_us": (more - one) / (2 * extra)}
        log(f"boundary: {host}: a record with one emit and a kv get+put {one:.2f} us, "
            f"a kv call {hosts[host]['kv_call_us']:.3f} us")
        deadline.check()
    return {"hosts": hosts}
