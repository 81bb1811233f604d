"""Unpacking a bundle without trusting its paths.

The bundle's hash was checked against a signed manifest, but an unpacker
that honours ``../``, absolute paths or links would turn one signing
mistake into a write anywhere on the PC: only plain files and directories
under the target are taken. (tarfile's ``filter="data"`` does the same on
Pythons that have it; Python 3.8 before 3.8.17 does not.)
"""
from __future__ import annotations

import os
import posixpath
import shutil
import tarfile


class UnpackError(ValueError):
    """A member the bundle must not hold; str() names it."""


def safe_name(name: str) -> str:
    """``name`` as a relative path inside the target; UnpackError if it leaves it."""
    norm = posixpath.normpath(name)
    if name.startswith("/") or norm == ".." or norm.startswith("../") or "\\" in name \
            or ":" in name.partition("/")[0]:
        raise UnpackError(f"{name!r}: a path outside the bundle")
    return norm


def untar(archive: str, target: str) -> None:
    """Unpack the .tar.gz ``archive`` into the (new, empty) directory ``target``."""
    os.makedirs(target)
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar:
            name = safe_name(m.name)
            if name == ".":
                continue
            dest = os.path.join(target, *name.split("/"))
            if m.isdir():
                os.makedirs(dest, exist_ok=True)
                continue
            if not m.isfile():
                raise UnpackError(f"{m.name!r}: not a plain file or directory")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            src = tar.extractfile(m)
            if src is None:
                raise UnpackError(f"{m.name!r}: unreadable")
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            # Only the owner's execute bit is kept (install.sh): no set-id, no others' write.
            os.chmod(dest, 0o755 if m.mode & 0o100 else 0o644)
