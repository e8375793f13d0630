"""Access control on a real broker: signed artifacts, and SASL/PLAIN with ACLs.

Signing runs on the session's broker. The ACL tests get a broker of their own with a
SASL/PLAIN listener and KRaft's StandardAuthorizer, where every principal holds only
the ACLs that docs/operations/security.md lists (from ``fs_bus.kafka.acls``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from fs_bus.client import FsClient
from fs_bus.control.store import write_record
from fs_bus.errors import AccessDenied, FunctionFailed
from fs_bus.kafka import acls, clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import Topics, ensure_topics
from fs_bus.local.broker import BrokerSpec, LocalBroker, SaslListener, free_port, resolve_kafka_classpath
from tests.integration.harness import (
    ROOT, UPPER_WASM, NodeProcess, OutputReader, create_topic, function_state, produce, upper_config, wait_until,
)


def _keypair(directory, name: str):
    key = Ed25519PrivateKey.generate()
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return private, public


def test_a_node_with_trusted_keys_runs_only_what_they_signed(bootstrap_servers, namespace, nodes, tmp_path):
    trusted, trusted_pub = _keypair(tmp_path, "trusted")
    other, _ = _keypair(tmp_path, "other")
    nodes("n1", args=("--trusted-key", str(trusted_pub)))
    wasm = UPPER_WASM.read_bytes()
    cfg = lambda name: upper_config(bootstrap_servers, name, f"{namespace}-{name}-in", f"{namespace}-{name}-out")  # noqa: E731

    with FsClient(bootstrap_servers, namespace=namespace, timeout=60, signing_key=trusted) as signed:
        signed.create_function_from_bytes(wasm, cfg("signed"))  # returns once RUNNING
    with FsClient(bootstrap_servers, namespace=namespace, timeout=60) as unsigned:
        with pytest.raises(FunctionFailed, match="its artifact is not signed"):
            unsigned.create_function_from_bytes(wasm, cfg("unsigned"))
    with FsClient(bootstrap_servers, namespace=namespace, timeout=60, signing_key=other) as stranger:
        with pytest.raises(FunctionFailed, match="signed by key '[0-9a-f]{16}', which this node does not trust"):
            stranger.create_function_from_bytes(wasm, cfg("stranger"))
        # A signed record re-written with another config (more WASI grants, say) no longer verifies.
        record = stranger._read_control().table.get("signed")
        forged = dataclasses.replace(record, name="forged", config_yaml=cfg("forged"), revision=1)
        write_record(clients.producer(KafkaSettings(bootstrap_servers), "test"), Topics(namespace).control, forged)
        info = wait_until(lambda: (f := function_state(stranger, "forged")) and f.status == "FAILED" and f, 60,
                          "forged FAILED")
        assert "does not verify" in info.error
        assert function_state(stranger, "signed").status == "RUNNING"


# --- SASL/PLAIN and ACLs ---------------------------------------------------------------------------------------------

USERS = {"operator": "operator-pw", "alice": "alice-pw", "viewer": "viewer-pw", "worker": "worker-pw"}


def sasl(user: str) -> dict[str, str]:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": user,
            "sasl.password": USERS[user]}


def env(user: str) -> dict[str, str]:
    return {f"FS_BUS_KAFKA_{k.upper().replace('.', '_')}": v for k, v in sasl(user).items()}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A broker whose SASL port enforces ACLs; its PLAINTEXT port (a super user) is for set-up."""
    spec = BrokerSpec(data_dir=tmp_path_factory.mktemp("kafka-sasl"), port=free_port(),
                      sasl=SaslListener(free_port(), USERS, super_users=("operator",)))
    broker = LocalBroker(spec, classpath=resolve_kafka_classpath())
    broker.start(wait_timeout=120.0)
    try:
        yield broker, f"{spec.host}:{spec.sasl.port}"
    finally:
        broker.stop()


def test_each_principal_can_do_what_its_acls_allow_and_no_more(secured, namespace, tmp_path, compiled_cache):
    broker, sasl_servers = secured
    topics = Topics(namespace)
    src, dst, group = f"{namespace}-in", f"{namespace}-out", f"{namespace}-group"
    # The operator (a super user) makes the namespace's topics and the function's.
    ensure_topics(clients.admin(KafkaSettings(sasl_servers, sasl("operator"))), topics)
    create_topic(broker.bootstrap_servers, src)
    create_topic(broker.bootstrap_servers, dst)
    admin = clients.admin(KafkaSettings(broker.bootstrap_servers))
    grants = (acls.user_acls("User:alice", topics) + acls.node_acls("User:worker", topics)
              + acls.function_acls("User:worker", [src], [dst], group)
              + [b for b in acls.user_acls("User:viewer", topics)
                 if b.name in (topics.control, topics.status) and b.operation != acls.AclOperation.WRITE])
    for future in admin.create_acls(grants).values():
        future.result()
    alice_admin = clients.admin(KafkaSettings(sasl_servers, sasl("alice")))
    wait_until(lambda: topics.control in alice_admin.list_topics(timeout=5).topics, 30, "the ACLs to apply")

    node = NodeProcess(sasl_servers, namespace, "n1", tmp_path, compiled_cache, env=env("worker"),
                       client_config=sasl("alice")).start()
    try:
        node.wait_alive()
        with FsClient(sasl_servers, namespace=namespace, timeout=60, kafka_config=sasl("alice")) as alice:
            alice.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                             upper_config(sasl_servers, "upper", src, dst, group=group))
            # The node's principal runs the function with exactly the listed ACLs.
            out = OutputReader(broker.bootstrap_servers, dst)
            produce(broker.bootstrap_servers, src, [(b"k", b"secured")])
            assert out.wait_for(1) == [(b"k", b"SECURED")]
            out.close()

            # A principal that may read but not write the control topic can look, not act.
            with FsClient(sasl_servers, namespace=namespace, timeout=30, kafka_config=sasl("viewer")) as viewer:
                assert [f.name for f in viewer.show_functions().functions] == ["upper"]
                with pytest.raises(AccessDenied) as denied:
                    viewer.stop_function("upper")
            assert denied.value.operation == "WRITE" and denied.value.resource == f"topic {topics.control!r}"
            assert "User:viewer" in str(denied.value)
            cli = subprocess.run(
                [sys.executable, "-m", "fs_bus", "sql", "-b", sasl_servers, "--namespace", namespace,
                 *(x for k, v in sasl("viewer").items() for x in ("-X", f"{k}={v}")), "-e", "DROP FUNCTION upper"],
                capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert cli.returncode == 5, cli.stderr
            assert "denied WRITE on topic" in cli.stderr and topics.control in cli.stderr
            assert function_state(alice, "upper").status == "RUNNING"

            # Wrong credentials are named as such, not as an unreachable broker.
            with pytest.raises(AccessDenied, match="refused the credentials"):
                with FsClient(sasl_servers, namespace=namespace, timeout=10,
                              kafka_config={**sasl("viewer"), "sasl.password": "wrong"}) as wrong:
                    wrong.show_functions()
    finally:
        node.close()
