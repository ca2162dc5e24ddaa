"""Resumable artifact download: HTTP Range into ``<name>.part``, size and sha256 checked.

A ``.part`` file left by a power cut or a dropped link is continued from its length
(``Range: bytes=N-``); a server that ignores Range (200 instead of 206) gets the file
read from the start again. Only a complete file with the announced size and hash is
renamed to its final name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

CHUNK = 64 * 1024


class DownloadError(Exception):
    """``kind``: ``transient`` (network, server error: try again), ``refused`` (the file is
    not what was announced: size or hash) or ``failed`` (the node cannot take it: disk space)."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_disk_space(directory: Path, needed: int) -> None:
    """Raise `DownloadError` (not transient) when ``directory``'s file system has fewer
    than ``needed`` bytes free."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise DownloadError(f"not enough disk space: {free} bytes free in {directory}, "
                            f"{needed} needed (artifact plus install headroom)", kind="failed")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, size: int, sha256: str, *, timeout: float = 30,
             on_chunk: Callable[[int], None] = lambda done: None) -> Path:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``); returns ``dest``.

    Raises `DownloadError`. A complete ``dest`` with the right hash is returned at once.
    """
    if dest.exists() and dest.stat().st_size == size and sha256_of(dest) == sha256:
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    if have < size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                mode = "ab" if have and response.status == 206 else "wb"
                if mode == "wb":
                    have = 0
                with open(part, mode) as f:
                    while block := response.read(CHUNK):
                        have += len(block)
                        if have > size:
                            break
                        f.write(block)
                        on_chunk(have)
                    f.flush()
                    os.fsync(f.fileno())
        except urllib.error.HTTPError as e:
            if e.code == 416:  # asked beyond the end: the .part is not what we think
                part.unlink(missing_ok=True)
            # even a 404 may be a mirror not yet filled: tried again until the state's deadline
            raise DownloadError(f"download of {url}: HTTP {e.code}", kind="transient") from e
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise DownloadError(f"download of {url} interrupted after {have} of {size} bytes: {e}",
                                kind="transient") from e
    got = part.stat().st_size
    if got > size:
        part.unlink()
        raise DownloadError(f"artifact larger than announced: more than {size} bytes", kind="refused")
    if got < size:
        raise DownloadError(f"download of {url} ended after {got} of {size} bytes", kind="transient")
    actual = sha256_of(part)
    if actual != sha256:
        part.unlink()
        raise DownloadError(f"artifact sha256 {actual} is not the announced {sha256}", kind="refused")
    os.replace(part, dest)
    return dest
