"""Power-cut-safe file and link writes: a temp name, fsync, ``os.replace``, fsync the directory.

An SD card losing power keeps either the old file or the new one, never a torn mix,
because ``rename(2)`` over an existing name is atomic and both the data and the
directory entry are flushed before the call returns.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries (a rename or a new link in it) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step; the parent directory must exist."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def point_link_atomic(link: Path, target: Path) -> None:
    """Make ``link`` a symlink to ``target``, replacing any old link in one step.

    The new link is made under a temp name and renamed over ``link``: a reader (systemd
    resolving ``ExecStart=``) sees the old target or the new one, never no link at all.
    """
    temporary = link.with_name(f".{link.name}.{os.getpid()}.new")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(target, temporary)
    os.replace(temporary, link)
    fsync_directory(link.parent)
