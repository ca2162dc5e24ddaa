"""Files holding secrets: created owner-only before a byte of the secret is written."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, value: str) -> Path:
    """Write ``value`` to ``path`` with mode 0600 (also when the file already existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value if value.endswith("\n") else value + "\n")
    return path
