"""Artifact signatures: what they cover, and every way a node refuses one."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from fs_bus.artifacts.signing import ArtifactNotTrusted, SigningKey, TrustedKeys
from fs_bus.control.records import ArtifactKind, ArtifactManifest, ChunkRef
from fs_bus.errors import FsBusError

MANIFEST = ArtifactManifest("ab" * 32, 10, ArtifactKind.WASM_COMPONENT, "fs-bus.artifacts", (ChunkRef(0, 1, 10),))


def _write(tmp_path, name, key):
    private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture
def keys(tmp_path):
    private, public = _write(tmp_path, "k", Ed25519PrivateKey.generate())
    return SigningKey.load(private), TrustedKeys.load([public])


def signed(key: SigningKey, name="f", config="name: f\n", manifest=MANIFEST) -> ArtifactManifest:
    signature, by = key.sign(name, config, manifest)
    return dataclasses.replace(manifest, signature=signature, signed_by=by)


def test_a_signature_verifies_for_its_name_config_and_artifact(keys):
    key, trusted = keys
    assert trusted.verify("f", "name: f\n", signed(key)) == key.key_id


@pytest.mark.parametrize("change", [
    dict(name="g"), dict(config="name: f\nwasi: {dirs: [{host: /, guest: /}]}\n"),
    dict(manifest=dataclasses.replace(MANIFEST, sha256="cd" * 32)),
    dict(manifest=dataclasses.replace(MANIFEST, kind=ArtifactKind.PYTHON_MODULES)),
])
def test_a_signature_covers_name_config_hash_and_kind(keys, change):
    key, trusted = keys
    manifest = signed(key)
    name, config = change.get("name", "f"), change.get("config", "name: f\n")
    moved = change.get("manifest", MANIFEST)
    manifest = dataclasses.replace(moved, signature=manifest.signature, signed_by=manifest.signed_by)
    with pytest.raises(ArtifactNotTrusted, match="does not verify"):
        trusted.verify(name, config, manifest)


def test_unsigned_and_unknown_keys_are_refused(keys, tmp_path):
    key, trusted = keys
    with pytest.raises(ArtifactNotTrusted, match="not signed"):
        trusted.verify("f", "name: f\n", MANIFEST)
    other_private, _ = _write(tmp_path, "other", Ed25519PrivateKey.generate())
    with pytest.raises(ArtifactNotTrusted, match="which this node does not trust"):
        trusted.verify("f", "name: f\n", signed(SigningKey.load(other_private)))


def test_key_files_that_are_not_ed25519_are_refused_with_their_path(tmp_path):
    ec_private, ec_public = _write(tmp_path, "ec", generate_private_key(SECP256R1()))
    with pytest.raises(FsBusError, match="not an ed25519 key"):
        SigningKey.load(ec_private)
    with pytest.raises(FsBusError, match="not an ed25519 public key"):
        TrustedKeys.load([ec_public])
    with pytest.raises(FsBusError, match="cannot read the signing key"):
        SigningKey.load(tmp_path / "missing.pem")
