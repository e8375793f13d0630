"""A guest of the ``processor-runtime`` world that turns each record into one kv call.

Built by ``tests/unit/test_wasm_world.py`` with componentize-py against the repo's
``wit/`` folder. ``fs-process`` reads the record as a JSON command
``{"op": ..., ...}`` (byte strings as hex) and emits the answer on target 0 as JSON:
``{"ok": result}`` or, when the host answered with the kv ``error`` variant,
``{"err": [case, message]}``. The other exports record that they were called, and
the ``report`` command hands the record back.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

import wit_world
from componentize_py_types import Err
# Imported here, not where used: componentize-py bundles only the binding modules
# that are imported while it builds the component.
from wit_world.imports import collector, instance_network, kv, network, tcp_create_socket

# componentize-py makes a fresh WitWorld for every export call: state lives here.
_stores: dict[str, kv.Store] = {}
_kept: list[kv.Iterator] = []
_seen: dict[str, Any] = {"config": None, "checkpoints": [], "watermarks": [], "exec": []}
_healthy = True


def _b(text: str) -> bytes:
    return bytes.fromhex(text)


def _h(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


def _store(cmd: dict[str, Any]) -> kv.Store:
    name = cmd.get("store", "s")
    if name not in _stores:
        _stores[name] = kv.Store(name)
    return _stores[name]


def _ck(parts: list[str]) -> kv.ComplexKey:
    kg, key, ns, uk = (_b(p) for p in parts)
    return kv.ComplexKey(key_group=kg, key=key, namespace=ns, user_key=uk)


def _scan(cmd: dict[str, Any]) -> dict[str, Any]:
    """Walk scan-complex with has-next/next. ``write_every``: every n-th entry, put a
    key right after the current one (it must show up) and delete the one right
    before it (already seen: must not disturb the walk)."""
    store = _store(cmd)
    kg, key, ns = _b(cmd["kg"]), _b(cmd["k"]), _b(cmd["ns"])
    every = cmd.get("write_every", 0)
    digest = hashlib.sha256()
    keys: list[str] = []
    count = 0
    it = store.scan_complex(kg, key, ns)
    if cmd.get("keep"):
        _kept.append(it)  # never dropped until "drop_kept"
        return {"kept": len(_kept)}
    with it:
        while it.has_next():
            item = it.next()
            assert item is not None, "has-next said yes, next said none"
            user_key, value = item
            count += 1
            digest.update(len(user_key).to_bytes(4, "big") + user_key + value)
            if cmd.get("keys"):
                keys.append(user_key.hex())
            if every and count % every == 0:
                store.put(kv.ComplexKey(kg, key, ns, user_key + b"\x00"), b"inserted")
        after_end = it.next()
    return {"count": count, "sha256": digest.hexdigest(), "keys": keys, "after_end": _h(after_end and after_end[0])}


def _connect(ip: str, port: int) -> dict[str, Any]:
    """Open a TCP connection through wasi:sockets (componentize-py's Python has
    no socket module) and send a few bytes."""
    try:
        with tcp_create_socket.create_tcp_socket(network.IpAddressFamily.IPV4) as sock:
            address = tuple(int(part) for part in ip.split("."))
            remote = network.IpSocketAddress_Ipv4(network.Ipv4SocketAddress(port=port, address=address))
            with instance_network.instance_network() as net:
                sock.start_connect(net, remote)
            with sock.subscribe() as ready:
                ready.block()
            rx, tx = sock.finish_connect()
            with rx, tx:
                tx.blocking_write_and_flush(b"hello from the guest")
        return {"connected": True}
    except Err as e:
        return {"error": repr(e.value)}


def _run(cmd: dict[str, Any]) -> Any:
    global _healthy
    op = cmd["op"]
    if op == "put_state":
        return _store(cmd).put_state(_b(cmd["key"]), _b(cmd["value"]))
    if op == "get_state":
        return _h(_store(cmd).get_state(_b(cmd["key"])))
    if op == "delete_state":
        return _store(cmd).delete_state(_b(cmd["key"]))
    if op == "list_states":
        return [_h(k) for k in _store(cmd).list_states(_b(cmd["start"]), _b(cmd["end"]))]
    if op == "put":
        return _store(cmd).put(_ck(cmd["ck"]), _b(cmd["value"]))
    if op == "get":
        return _h(_store(cmd).get(_ck(cmd["ck"])))
    if op == "delete":
        return _store(cmd).delete(_ck(cmd["ck"]))
    if op == "merge":
        return _store(cmd).merge(_ck(cmd["ck"]), _b(cmd["value"]))
    if op == "delete_prefix":
        return _store(cmd).delete_prefix(_ck(cmd["ck"]))
    if op == "list_complex":
        args = (_b(cmd[f]) for f in ("kg", "k", "ns", "start", "end"))
        return [_h(k) for k in _store(cmd).list_complex(*args)]
    if op == "fill":
        # n complex entries: user key = i as 4 bytes big-endian, value = str(i)
        store, kg, key, ns = _store(cmd), _b(cmd["kg"]), _b(cmd["k"]), _b(cmd["ns"])
        for i in range(cmd["n"]):
            store.put(kv.ComplexKey(kg, key, ns, i.to_bytes(4, "big")), str(i).encode())
        return cmd["n"]
    if op == "scan":
        return _scan(cmd)
    if op == "drop_kept":
        while _kept:
            _kept.pop().__exit__(None, None, None)
        return 0
    if op == "drop_store":
        _stores.pop(cmd.get("store", "s")).__exit__(None, None, None)
        return None
    if op == "print":
        print(cmd["text"])
        if "stderr" in cmd:
            sys.stderr.write(cmd["stderr"] + "\n")
            sys.stderr.flush()
        return None
    if op == "read_file":
        try:
            with open(cmd["path"], "rb") as f:
                return {"read": len(f.read())}
        except OSError as e:
            return {"error": f"{type(e).__name__}: {e}"}
    if op == "list_dir":
        try:
            return {"entries": os.listdir(cmd["path"])}
        except OSError as e:
            return {"error": f"{type(e).__name__}: {e}"}
    if op == "connect":
        return _connect(cmd["ip"], cmd["port"])
    if op == "env":
        return dict(os.environ)
    if op == "heartbeat":
        _healthy = cmd["healthy"]
        return None
    if op == "report":
        return _seen
    if op == "trap":
        raise RuntimeError("asked to fail")
    raise ValueError(f"unknown op {op!r}")


class WitWorld(wit_world.WitWorld):
    def fs_init(self, config: list[tuple[str, str]]) -> None:
        _seen["config"] = dict(config)

    def fs_process(self, source_id: int, data: bytes) -> None:
        cmd = json.loads(data)
        try:
            answer: dict[str, Any] = {"ok": _run(cmd)}
        except Err as e:
            # the kv error variant: Error_NotFound, Error_IoError(value), Error_Other(value)
            answer = {"err": [type(e.value).__name__, getattr(e.value, "value", None)]}
        collector.emit(0, json.dumps(answer).encode())

    def fs_process_watermark(self, source_id: int, watermark: int) -> None:
        _seen["watermarks"].append([source_id, watermark])
        collector.emit_watermark(source_id, watermark)

    def fs_take_checkpoint(self, checkpoint_id: int) -> None:
        _seen["checkpoints"].append(checkpoint_id)
        collector.emit(1, f"checkpoint {checkpoint_id}".encode())

    def fs_check_heartbeat(self) -> bool:
        return _healthy

    def fs_close(self) -> None:
        pass

    def fs_exec(self, class_name: str, modules: list[tuple[str, bytes]]) -> None:
        _seen["exec"].append([class_name, [[name, code.decode()] for name, code in modules]])

    def fs_custom(self, payload: bytes) -> bytes:
        return b"custom:" + payload[::-1]
