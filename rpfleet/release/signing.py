"""Signing an artifact: the offline step, on the machine that holds the release key."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rpfleet.release import keys as release_keys
from rpfleet.release.artifact import (
    MAX_MANIFEST_BYTES,
    PAYLOAD_DIR,
    SIGNATURE_NAME,
    ArtifactRefused,
    _Archive,
    _manifest_of,
    write_artifact,
)


def sign_artifact(path: Path | str, private_key: Ed25519PrivateKey) -> str:
    """Add ``private_key``'s signature over the artifact's manifest; returns the key id.

    The payload is checked against the manifest first: a damaged artifact is never
    signed (`ArtifactRefused`). Signatures by other keys stay (so an artifact can be
    signed with the old and the new key during a rotation); signing again with the
    same key replaces its signature. The file is rewritten atomically.
    """
    path = Path(path)
    with _Archive(path) as archive:
        manifest_bytes, manifest = _manifest_of(archive)
        archive.check_payload(manifest)
        existing = archive.read(SIGNATURE_NAME, MAX_MANIFEST_BYTES)
        try:
            entries = release_keys.decode_signatures(existing) if existing is not None else []
        except ValueError as exc:
            raise ArtifactRefused("malformed", str(exc)) from None
        entry = release_keys.signature_entry(private_key, manifest_bytes)
        entries = [e for e in entries if e["key_id"] != entry["key_id"]] + [entry]
        payload = [
            (f.path, (lambda name=PAYLOAD_DIR + f.path: archive.open_member(name)), f.size)
            for f in manifest.files
        ]
        write_artifact(path, manifest_bytes, release_keys.encode_signatures(entries), payload,
                       mtime=manifest.created_at)
    return entry["key_id"]
