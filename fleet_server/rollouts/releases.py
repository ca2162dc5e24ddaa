"""Adding a release: an artifact whose signature one of the operator's trusted
release keys made (rpfleet.release.artifact checks it, and every payload byte),
copied into the server's releases directory and recorded with its size, sha256
and signature file, as each node's ``down/update`` will name them.

The server never holds a private key: it checks with public keys only, as the
nodes do. It does not check the architecture or an installed version: it keeps
artifacts for every node.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Sequence

import sqlalchemy as sa

from fleet_server.rollouts import store
from rpfleet.release.artifact import ArtifactRefused, verify_signed

MAX_SIGNATURE_CHARS = 1024  # as UpdateDesired.signature allows


class ReleaseError(ValueError):
    """A release that cannot be added; ``field`` names what is at fault."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _signature_text(path: Path, signer: str) -> str:
    """The artifact's signature file as compact JSON (what ``down/update`` carries);
    only the signer's key id when the file is too long for the message."""
    with tarfile.open(path, mode="r:") as tar:
        member = tar.extractfile("manifest.sig")
        data = json.loads(member.read()) if member is not None else {}
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= MAX_SIGNATURE_CHARS else f"ed25519:{signer}"


def add_release(engine: sa.Engine, artifact: Path, trusted_keys: Sequence[bytes], releases_dir: Path,
                *, by: str, now: datetime) -> store.Release:
    """Verify ``artifact`` against ``trusted_keys``, copy it to
    ``releases_dir/<version>.rpa`` and record it; the stored release.

    Raises ReleaseError: the artifact is refused (its reason and why), or its
    version is already a release (a version is never replaced: nodes may hold it).
    """
    artifact = Path(artifact)
    try:
        manifest, signer = verify_signed(artifact, list(trusted_keys), installed_version=None,
                                         architecture=None)
    except ArtifactRefused as exc:
        raise ReleaseError(f"{artifact}: refused ({exc.reason}): {exc.message}") from None
    except OSError as exc:
        raise ReleaseError(f"{artifact}: {exc.strerror or exc}") from None
    with engine.connect() as conn:
        if store.get_release(conn, manifest.version) is not None:
            raise ReleaseError(f"version {manifest.version} is already a release; "
                               "a release is never replaced", "version")
    releases_dir = Path(releases_dir).resolve()
    releases_dir.mkdir(parents=True, exist_ok=True)
    kept = releases_dir / f"{manifest.version}.rpa"
    part = kept.with_name(kept.name + ".part")
    shutil.copyfile(artifact, part)
    with open(part, "rb") as stream:
        os.fsync(stream.fileno())
    os.replace(part, kept)
    release = store.Release(
        version=manifest.version, architecture=manifest.architecture, size=kept.stat().st_size,
        sha256=_sha256(kept), signature=_signature_text(kept, signer),
        manifest=json.loads(manifest.model_dump_json()), path=str(kept),
        download_key=secrets.token_hex(16), added_at=now, added_by=by)
    try:
        with engine.begin() as conn:
            store.insert_release(conn, release)
    except sa.exc.IntegrityError:
        raise ReleaseError(f"version {manifest.version} is already a release", "version") from None
    return release
