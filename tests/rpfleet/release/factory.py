"""Real release artifacts for tests: built from the working tree, signed with keys
made in a temp dir. Other test packages (the node's installer, the server's
rollouts) may import these helpers too.

A build without dependencies takes a few seconds (one ``pip wheel`` of the tree);
build what a test session needs once (session-scoped fixtures) and copy it.
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rpfleet.release import keys
from rpfleet.release.artifact import Manifest
from rpfleet.release.build import build_artifact
from rpfleet.release.signing import sign_artifact


@dataclass(frozen=True)
class ReleaseKey:
    """A release key pair on disk (``release-<id>.key`` / ``.pub``) and as objects."""

    key_id: str
    private_path: Path
    public_path: Path

    @property
    def private(self) -> Ed25519PrivateKey:
        return keys.load_private_key(self.private_path)

    @property
    def public(self) -> Ed25519PublicKey:
        return keys.load_public_key(self.public_path)


def make_key(directory: Path) -> ReleaseKey:
    return ReleaseKey(*keys.generate_key_pair(directory))


def build(directory: Path, version: str, *, architecture: str | None = None,
          with_deps: bool = False) -> tuple[Path, Manifest]:
    """An unsigned artifact ``rpfleet-<version>-<arch>.tar`` in ``directory``, from the working tree."""
    out = Path(directory) / f"rpfleet-{version}-{architecture or ('deps' if with_deps else 'any')}.tar"
    return out, build_artifact(out, version=version, architecture=architecture, with_deps=with_deps)


def signed_copy(artifact: Path, directory: Path, *signers: ReleaseKey) -> Path:
    """A copy of ``artifact`` in ``directory`` signed by each of ``signers`` (none: unsigned)."""
    copy = Path(directory) / artifact.name
    shutil.copyfile(artifact, copy)
    for key in signers:
        sign_artifact(copy, key.private)
    return copy


def member_offset(artifact: Path, name: str) -> tuple[int, int]:
    """Where a member's data starts in the file, and its size."""
    with tarfile.open(artifact, "r:") as tar:
        member = tar.getmember(name)
        return member.offset_data, member.size


def flip_byte(path: Path, offset: int, mask: int = 0x01) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ mask]))
