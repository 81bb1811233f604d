"""Ed25519 signatures of release manifests (netroom.release), by python-ecdsa.

python-ecdsa is pure Python: it runs wherever the agent runs (Python 3.8,
LoongArch, no compiler), and its Ed25519 is RFC 8032's, so OpenSSL verifies
what it signs (tests/test_release.py). Importing it costs 4.5 MB: the agent
imports this module only in its update process (agent/update/).
"""
from __future__ import annotations

import base64
from typing import Sequence

from ecdsa import Ed25519, SigningKey, VerifyingKey
from ecdsa.der import UnexpectedDER
from ecdsa.errors import MalformedPointError
from ecdsa.keys import BadSignatureError

from netroom import release


def keygen() -> tuple[bytes, str]:
    """A new key: (private key as PKCS#8 PEM, public key's line)."""
    sk = SigningKey.generate(curve=Ed25519)
    public = base64.b64encode(sk.get_verifying_key().to_string()).decode()
    return sk.to_pem(format="pkcs8"), public


def load_private(pem: bytes) -> SigningKey:
    """A private key from its PEM; ReleaseError."""
    try:
        sk = SigningKey.from_pem(pem)
    except (ValueError, AssertionError, UnexpectedDER) as exc:
        raise release.ReleaseError(f"not an Ed25519 private key (PEM): {exc}") from None
    if sk.curve != Ed25519:
        raise release.ReleaseError(f"not an Ed25519 private key: {sk.curve.name}")
    return sk


def public_line(sk: SigningKey) -> str:
    """The public key's line of a private key."""
    return base64.b64encode(sk.get_verifying_key().to_string()).decode()


def sign(data: bytes, sk: SigningKey) -> bytes:
    """The signature file's content for ``data``: base64 and a newline."""
    return base64.b64encode(sk.sign(data)) + b"\n"


def verify(data: bytes, signature: bytes, keys: Sequence[str]) -> release.Manifest:
    """The manifest ``data`` when ``signature`` (the .sig file's content) is
    valid under one of ``keys`` (public keys' lines; a line that is no key is
    passed over); ReleaseError otherwise."""
    if not keys:
        raise release.ReleaseError("no release key to check it with")
    sig = release.decode_signature(signature)
    for key in keys:
        try:
            vk = VerifyingKey.from_string(release.decode_key(key), curve=Ed25519)
        except (release.ReleaseError, MalformedPointError):
            continue
        try:
            vk.verify(sig, data)
        except (BadSignatureError, MalformedPointError):
            continue
        return release.decode(data)
    raise release.ReleaseError(f"{release.MANIFEST}: the signature is not valid under any "
                               "trusted release key")
