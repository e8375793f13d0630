"""Signed artifacts: the client signs what it asks nodes to run, nodes run only what
keys they trust signed.

The signature (ed25519) covers the function's name, its artifact's kind and sha256,
and the sha256 of its config text, so a signed artifact cannot be re-used under
another name or with another config (the config decides what a component may reach)
by anyone who can merely write the control topic. ``signed_by`` is the key id: the
first 16 hex digits of the sha256 of the raw public key.

Keys are PEM files as OpenSSL writes them::

    openssl genpkey -algorithm ed25519 -out signing.pem          # the client's
    openssl pkey -in signing.pem -pubout -out signing.pub.pem    # for the nodes
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from fs_bus.control.records import ArtifactManifest
from fs_bus.errors import ArtifactError, FsBusError

_CONTEXT = b"fs-bus signed function v1\n"


class ArtifactNotTrusted(ArtifactError):
    """A node configured with trusted keys refuses an artifact not signed by one of them."""


def signed_message(name: str, config_yaml: str, manifest: ArtifactManifest) -> bytes:
    config_sha = hashlib.sha256(config_yaml.encode("utf-8", "surrogatepass")).hexdigest()
    return _CONTEXT + "\n".join((name, manifest.kind.value, manifest.sha256, config_sha)).encode("utf-8", "surrogatepass")


def _raw(public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key) -> str:
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise FsBusError(f"cannot read the {what} {str(path)!r}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class SigningKey:
    """An ed25519 private key that signs function records before they are written."""

    private_key: object
    key_id: str

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(_read(path, "signing key"), password=None)
        except (ValueError, TypeError) as exc:
            raise FsBusError(f"signing key {str(path)!r} is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise FsBusError(f"signing key {str(path)!r} is a {type(key).__name__}, not an ed25519 key "
                             "(openssl genpkey -algorithm ed25519 -out KEY.pem)")
        return cls(key, key_id(key.public_key()))

    def sign(self, name: str, config_yaml: str, manifest: ArtifactManifest) -> tuple[bytes, str]:
        """``(signature, signed_by)`` for the function record."""
        return self.private_key.sign(signed_message(name, config_yaml, manifest)), self.key_id  # type: ignore[attr-defined]


class TrustedKeys:
    """The public keys a node accepts signatures from; refuses everything else."""

    def __init__(self, public_keys: Iterable[object]):
        self.keys = {key_id(k): k for k in public_keys}

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> TrustedKeys:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        keys = []
        for path in paths:
            try:
                key = load_pem_public_key(_read(path, "trusted key"))
            except (ValueError, TypeError) as exc:
                raise FsBusError(f"trusted key {str(path)!r} is not a PEM public key: {exc}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise FsBusError(f"trusted key {str(path)!r} is a {type(key).__name__}, not an ed25519 public key")
            keys.append(key)
        return cls(keys)

    def verify(self, name: str, config_yaml: str, manifest: ArtifactManifest) -> str:
        """Return the id of the key that signed it, or raise ``ArtifactNotTrusted`` saying why not."""
        from cryptography.exceptions import InvalidSignature

        if manifest.signature is None or manifest.signed_by is None:
            raise ArtifactNotTrusted(
                f"function {name!r}: its artifact is not signed, and this node runs only artifacts signed by a "
                f"trusted key ({', '.join(sorted(self.keys))}); create it with a signing key (--signing-key)")
        key = self.keys.get(manifest.signed_by)
        if key is None:
            raise ArtifactNotTrusted(
                f"function {name!r}: its artifact is signed by key {manifest.signed_by!r}, which this node does not "
                f"trust (trusted: {', '.join(sorted(self.keys))})")
        try:
            key.verify(manifest.signature, signed_message(name, config_yaml, manifest))  # type: ignore[attr-defined]
        except InvalidSignature:
            raise ArtifactNotTrusted(
                f"function {name!r}: the signature by key {manifest.signed_by!r} does not verify: the artifact, "
                "its config or its name changed after signing; refusing to run it") from None
        return manifest.signed_by
