"""Files that survive a power cut: data fsync'd before a rename, the rename
itself made durable by an fsync of its directory. Used by the agent (its
kept settings), the collector's spool and ``netroom release``."""
from __future__ import annotations

import os


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make the renames and creations in ``folder`` durable (POSIX; Windows
    has no directory handles to flush, and NTFS journals its renames)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes) -> None:
    """``data`` into ``path`` whole or not at all (OSError)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(folder)
