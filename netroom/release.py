"""Agent releases: the manifest both sides read, and the text of a release key.

A release is a directory ``<releases>/<version>/`` served over the fleet's
own network (the collector's speed-test server, ``/releases``)::

    manifest.json       {"schema": 1, "version": "1.5.0", "created": 1796342400.0,
                         "files": {"linux": {"name": "netroom-agent-1.5.0-linux.tar.gz",
                                             "sha256": "<64 hex>", "size": 16777216},
                                   "windows-amd64": {...}}}
    manifest.json.sig   the Ed25519 signature of manifest.json's bytes, base64, one line
    netroom-agent-1.5.0-linux.tar.gz ...

The agent trusts a manifest only when its signature verifies under a key in
its own config (``agent.update_keys``), then a bundle only when its size and
SHA-256 are the manifest's. Keys are Ed25519 (RFC 8032); a public key is
written as the base64 of its 32 bytes, one short line for a YAML file.
Signing and verifying live in netroom.signing: its library costs 4.5 MB
of memory, which an agent pays only while it updates.

Pure: no I/O here.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any, Mapping, NamedTuple

SCHEMA = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_MANIFEST_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
# The bundles a release may hold, as their file names end: deploy/linux/build-bundle.sh
# (one for every Linux PC), deploy/windows/build-bundle.sh (one per architecture).
PLATFORMS = ("linux", "windows-amd64", "windows-win32")
# Whole strings only (fullmatch): "1.5.0\n" is not a version.
VERSION_RE = re.compile(r"[0-9][0-9A-Za-z.+_-]{0,31}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_SHA_RE = re.compile(r"[0-9a-f]{64}")


class ReleaseError(ValueError):
    """A manifest, signature or key that is not what it must be; str() is why."""


class File(NamedTuple):
    """One bundle of a release: its file name, SHA-256 (hex) and size (bytes)."""

    name: str
    sha256: str
    size: int


class Manifest(NamedTuple):
    version: str
    created: float  # s since the epoch
    files: Mapping[str, File]  # by platform


def decode_key(text: str) -> bytes:
    """A public key's line -> its 32 bytes; ReleaseError."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ReleaseError("not base64") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ReleaseError(f"must be {PUBLIC_KEY_BYTES} bytes of base64, got {len(raw)}")
    return raw


def public_key_error(text: str) -> str:
    """Why ``text`` is not a public key's line, "" if it is one."""
    try:
        decode_key(text)
    except ReleaseError as exc:
        return f"not a release public key: {exc}"
    return ""


def decode_signature(text: bytes) -> bytes:
    """The signature file's content -> 64 bytes; ReleaseError."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ReleaseError(f"{SIGNATURE}: not base64") from None
    if len(raw) != SIGNATURE_BYTES:
        raise ReleaseError(f"{SIGNATURE}: must hold a {SIGNATURE_BYTES}-byte signature, "
                           f"got {len(raw)}")
    return raw


def encode(manifest: Manifest) -> bytes:
    """The manifest's bytes, as signed and served."""
    files = {p: {"name": f.name, "sha256": f.sha256, "size": f.size}
             for p, f in sorted(manifest.files.items())}
    doc = {"schema": SCHEMA, "version": manifest.version, "created": manifest.created,
           "files": files}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def decode(data: bytes) -> Manifest:
    """Parse and check a manifest's bytes (whose signature was verified); ReleaseError."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ReleaseError(f"{MANIFEST}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ReleaseError(f"{MANIFEST}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ReleaseError(f"{MANIFEST}: not a schema {SCHEMA} manifest")
    version, created, files = doc.get("version"), doc.get("created"), doc.get("files")
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise ReleaseError(f"{MANIFEST}: version: not a release version: {version!r}")
    if not isinstance(created, (int, float)) or isinstance(created, bool) \
            or not math.isfinite(created):
        raise ReleaseError(f"{MANIFEST}: created: must be a number")
    if not isinstance(files, dict) or not files:
        raise ReleaseError(f"{MANIFEST}: files: must name at least one bundle")
    return Manifest(version, float(created), {p: _file(p, f) for p, f in files.items()})


def _file(platform: Any, f: Any) -> File:
    where = f"{MANIFEST}: files.{platform}"
    if platform not in PLATFORMS:
        raise ReleaseError(f"{where}: unknown platform, expected one of {', '.join(PLATFORMS)}")
    if not isinstance(f, dict):
        raise ReleaseError(f"{where}: must be a mapping")
    name, sha, size = f.get("name"), f.get("sha256"), f.get("size")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ReleaseError(f"{where}.name: not a plain file name: {name!r}")
    if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
        raise ReleaseError(f"{where}.sha256: must be 64 lower-case hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_BUNDLE_BYTES:
        raise ReleaseError(f"{where}.size: must be 1-{MAX_BUNDLE_BYTES} bytes")
    return File(name, sha, size)
