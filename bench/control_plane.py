"""The ``control-plane`` case: how fast fs-bus acts on commands, moves artifacts and
starts components.

- CREATE -> RUNNING: ``--functions`` copies of upper.wasm (each its own name and
  group, on one empty 1-partition topic) created one after another with
  ``FsClient.create_function_from_bytes(wait=True)`` against one node, each call
  timed; they stay running, so the last is created next to N-1 others. Then each
  is dropped (``drop_function(wait=True)``, also timed).
- REPLACE -> RUNNING: the first function replaced ``REPLACE_REPEATS`` times
  (``create_function_from_bytes(replace=True, wait=True)``, each a new code revision:
  upper.wasm with a custom section naming the round), each call timed, beside a
  STOP then START of the same function (the other way to switch code without DROP,
  which loses the state): their ratio is what a safe upgrade costs over a restart.
- Artifact upload / download of ``--artifact-mb`` MB of random bytes through
  ``fs_bus.artifacts.store.upload`` / ``fetch`` (the client refuses bytes that
  are not a component, the store does not look), on the namespace's artifacts topic.
- Cold start: ``WasmEngine.load`` of a real component with an empty compiled
  cache (compile) and with a warm one (deserialize), each in a fresh engine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, UPPER_WASM, Children, Deadline, Params, create_topics, log, percentile
from bench.node import BenchNode
from bench.throughput import function_config

WARM_REPEATS = 3
REPLACE_REPEATS = 3
ARTIFACT_REPEATS = 3


def _summary(ms: list[float]) -> dict[str, Any]:
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1),
            "mean_ms": round(statistics.fmean(ms), 1), "max_ms": round(max(ms), 1),
            "first_ms": round(ms[0], 1), "last_ms": round(ms[-1], 1)}


def lifecycle(p: Params, deadline: Deadline, children: Children, out: dict[str, Any]) -> None:
    source, sink = f"{p.run_id}-cp-in", f"{p.run_id}-cp-out"
    create_topics(p.bootstrap, [source, sink], 1)
    node = BenchNode(children, p.bootstrap, f"{p.run_id}-cp", "bench-cp", p.workdir)
    wasm = UPPER_WASM.read_bytes()
    creates: list[float] = []
    drops: list[float] = []
    try:
        node.start(deadline.sub(120, "control-plane: node start"))
        with node.client(timeout=120) as client:
            names = []
            for i in range(p.functions):
                deadline.check(f"after creating {i} of {p.functions} functions")
                name = f"cp-{i}"
                config = function_config(p.bootstrap, name, source, sink, f"{p.run_id}-cp-{i}", "processor")
                t = time.perf_counter()
                client.create_function_from_bytes(wasm, config, wait=True, timeout=min(120, deadline.remaining()))
                creates.append((time.perf_counter() - t) * 1000)
                names.append(name)
            out["create_to_running"] = _summary(creates)
            if names:
                config = function_config(p.bootstrap, names[0], source, sink, f"{p.run_id}-cp-0", "processor")
                replacements(client, wasm, names[0], config, deadline, out)
            for name in names:
                deadline.check(f"after dropping {len(drops)} of {len(names)} functions")
                t = time.perf_counter()
                client.drop_function(name, wait=True, timeout=min(120, deadline.remaining()))
                drops.append((time.perf_counter() - t) * 1000)
            out["drop_to_dropped"] = _summary(drops)
    except Exception as e:
        raise node.explain(e) from e
    finally:
        if creates and "create_to_running" not in out:
            out["create_to_running"] = _summary(creates)
            if names:
                config = function_config(p.bootstrap, names[0], source, sink, f"{p.run_id}-cp-0", "processor")
                replacements(client, wasm, names[0], config, deadline, out)
        node.stop()


def _variant(wasm: bytes, n: int) -> bytes:
    """The same component with a custom section (id 0) naming round ``n``: other bytes, same code."""
    name = b"fs-bus-bench"
    body = bytes([len(name)]) + name + b"%d" % n
    assert len(body) < 128  # one LEB128 byte
    return wasm + b"\x00" + bytes([len(body)]) + body


def replacements(client, wasm: bytes, name: str, config: str, deadline: Deadline, out: dict[str, Any]) -> None:
    replaces, restarts = [], []
    for n in range(REPLACE_REPEATS):
        deadline.check(f"after {n} of {REPLACE_REPEATS} replacements")
        t = time.perf_counter()
        client.create_function_from_bytes(_variant(wasm, n), config, replace=True, wait=True,
                                          timeout=min(120, deadline.remaining()))
        replaces.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        client.stop_function(name, wait=True, timeout=min(120, deadline.remaining()))
        client.start_function(name, wait=True, timeout=min(120, deadline.remaining()))
        restarts.append((time.perf_counter() - t) * 1000)
    out["replace_to_running"] = _summary(replaces)
    out["stop_start"] = _summary(restarts)
    out["replace_over_stop_start"] = round(statistics.median(replaces) / statistics.median(restarts), 2)


def artifacts(p: Params, deadline: Deadline, out: dict[str, Any]) -> None:
    from fs_bus.artifacts import store
    from fs_bus.control.records import ArtifactKind
    from fs_bus.kafka import clients
    from fs_bus.kafka.settings import KafkaSettings
    from fs_bus.kafka.topics import Topics, ensure_topics

    settings = KafkaSettings.resolve(p.bootstrap)
    topics = Topics(f"{p.run_id}-art")
    ensure_topics(clients.admin(settings), topics)
    producer = clients.producer(settings, "bench")
    size = p.artifact_mb * 1_000_000
    ups, downs = [], []
    for _ in range(ARTIFACT_REPEATS):
        deadline.check("moving artifacts")
        data = os.urandom(size)
        t = time.perf_counter()
        manifest = store.upload(producer, topics.artifacts, data, ArtifactKind.WASM_COMPONENT,
                                timeout=max(10.0, deadline.remaining()))
        ups.append(time.perf_counter() - t)
        consumer = clients.consumer(settings, "bench")
        try:
            t = time.perf_counter()
            got = store.fetch(consumer, manifest, timeout=max(10.0, deadline.remaining()))
            downs.append(time.perf_counter() - t)
        finally:
            consumer.close()
        assert len(got) == size
    mb = size / 1e6
    out["artifact"] = {
        "mb": p.artifact_mb, "chunks": len(manifest.chunks), "repeats": ARTIFACT_REPEATS,
        "upload_mb_per_s": round(mb / statistics.median(ups), 1),
        "download_mb_per_s": round(mb / statistics.median(downs), 1),
        "upload_seconds": [round(s, 3) for s in ups], "download_seconds": [round(s, 3) for s in downs],
    }


def _guests(p: Params, deadline: Deadline) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    try:
        from tests.guests import build

        work = Path(tempfile.mkdtemp(prefix="kv-probe-", dir=p.workdir))
        found.append(("kv_probe (componentize-py)", build.kv_probe(work)))
    except Exception as e:  # noqa: BLE001 - componentize-py missing, build failed: use what is there
        log(f"cold start: no kv_probe guest ({type(e).__name__}: {str(e)[:200]})")
    go = ROOT / "examples" / "go-processor" / "build" / "processor.wasm"
    if go.is_file():
        found.append(("go-processor (Go)", go.read_bytes()))
    return found


def cold_start(p: Params, deadline: Deadline, out: dict[str, Any]) -> None:
    from fs_bus.runtime.wasm import WasmEngine

    guests = _guests(p, deadline)
    if not guests:
        out["cold_start"] = {"status": "skipped",
                             "error": "no guest: pip install componentize-py==0.25.1, or build examples/go-processor"}
        return
    results = {}
    for label, wasm in guests:
        deadline.check("cold start")
        sha = hashlib.sha256(wasm).hexdigest()
        cache = Path(tempfile.mkdtemp(prefix="compiled-", dir=p.workdir))
        try:
            engine = WasmEngine(cache_dir=cache)
            t = time.perf_counter()
            loaded = engine.load(sha, wasm)
            cold = time.perf_counter() - t
            engine.close()
            assert not loaded.from_cache
            warm = []
            for _ in range(WARM_REPEATS):
                engine = WasmEngine(cache_dir=cache)
                t = time.perf_counter()
                loaded = engine.load(sha, wasm)
                warm.append(time.perf_counter() - t)
                engine.close()
                assert loaded.from_cache, "the warm load compiled instead of reading the cache"
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        results[label] = {"mb": round(len(wasm) / 1e6, 2), "cold_ms": round(cold * 1000, 1),
                          "warm_ms": round(statistics.median(warm) * 1000, 1),
                          "speedup": round(cold / statistics.median(warm), 1)}
    out["cold_start"] = results


def run_control_plane(p: Params, deadline: Deadline, children: Children) -> dict[str, Any]:
    """Runs the three parts; one that fails is reported in ``errors``, the others still run."""
    out: dict[str, Any] = {}
    errors = {}
    for part, fn in (("lifecycle", lambda: lifecycle(p, deadline, children, out)),
                     ("artifact", lambda: artifacts(p, deadline, out)),
                     ("cold_start", lambda: cold_start(p, deadline, out))):
        log(f"control-plane: {part}")
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - reported
            errors[part] = f"{type(e).__name__}: {e}"[:2000]
    if errors:
        out["errors"] = errors
    return out
