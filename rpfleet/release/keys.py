"""Release keys: Ed25519 key pairs, their short ids, and the signature file.

The private key signs offline (on the release manager's machine, never on the
server or a node); nodes and the server hold only public keys. A key id is the
first 16 hex digits of the sha256 of the raw 32-byte public key, so a node that
trusts several keys (an old and a new one during a rotation) knows which one a
signature claims without trying them all.

``manifest.sig`` is UTF-8 JSON::

    {"format": 1, "signatures": [{"key_id": "3f9a…", "signature": "<base64>"}]}

Each signature is Ed25519 over the exact bytes of ``manifest.json``. An artifact
may carry several (signed with the old and the new key while nodes move over).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FORMAT = 1

TrustedKey = Union[bytes, Ed25519PublicKey]
"""A trusted key: an `Ed25519PublicKey`, its raw 32 bytes, or a PEM public key file's bytes."""


class ReleaseKeyError(ValueError):
    """A key file or key bytes that are not an Ed25519 key; the message names the source."""


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The key's short id: 16 hex digits of sha256(raw public key)."""
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()[:16]


def public_key(data: TrustedKey, source: str = "key") -> Ed25519PublicKey:
    """An `Ed25519PublicKey` from a key object, raw 32 bytes or PEM bytes.

    Raises `ReleaseKeyError` naming ``source`` when ``data`` is none of them.
    """
    if isinstance(data, Ed25519PublicKey):
        return data
    if isinstance(data, (bytes, bytearray)):
        if len(data) == 32:
            return Ed25519PublicKey.from_public_bytes(bytes(data))
        try:
            key = serialization.load_pem_public_key(bytes(data))
        except ValueError:
            raise ReleaseKeyError(f"{source}: not an Ed25519 public key (PEM or 32 raw bytes)") from None
        if isinstance(key, Ed25519PublicKey):
            return key
        raise ReleaseKeyError(f"{source}: a {type(key).__name__}, not an Ed25519 public key")
    raise ReleaseKeyError(f"{source}: expected bytes or an Ed25519PublicKey, got {type(data).__name__}")


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The public key in a PEM file (``release-<id>.pub``); `ReleaseKeyError` names the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ReleaseKeyError(f"{path}: {exc.strerror}") from None
    return public_key(data, source=str(path))


_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every public key in a PEM file: one key (``release-<id>.pub``) or a bundle of
    several concatenated (a node's ``release-keys.pem`` during a rotation).

    Raises `ReleaseKeyError` naming the file (and the key's place in it) when the file
    holds no public key or one that is not Ed25519.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ReleaseKeyError(f"{path}: {exc.strerror}") from None
    blocks = _PEM_BLOCK.findall(data)
    if not blocks:
        raise ReleaseKeyError(f"{path}: no PEM public key (-----BEGIN PUBLIC KEY-----) in it")
    return [public_key(block, source=f"{path} (key #{n + 1})") for n, block in enumerate(blocks)]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The private key in a PEM (PKCS#8, unencrypted) file; `ReleaseKeyError` names the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ReleaseKeyError(f"{path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ReleaseKeyError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseKeyError(f"{path}: a {type(key).__name__}, not an Ed25519 release key")
    return key


def generate_key_pair(directory: Path) -> tuple[str, Path, Path]:
    """Make a new release key pair in ``directory``: ``release-<id>.key`` (private,
    mode 0600, created exclusively: never overwrites) and ``release-<id>.pub``.

    Returns ``(key_id, private_path, public_path)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    kid = key_id(private.public_key())
    private_path = directory / f"release-{kid}.key"
    public_path = directory / f"release-{kid}.pub"
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # O_EXCL with 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return kid, private_path, public_path


def signature_entry(private: Ed25519PrivateKey, manifest_bytes: bytes) -> dict[str, str]:
    return {
        "key_id": key_id(private.public_key()),
        "signature": base64.b64encode(private.sign(manifest_bytes)).decode("ascii"),
    }


def encode_signatures(entries: list[dict[str, str]]) -> bytes:
    return (json.dumps({"format": SIGNATURE_FORMAT, "signatures": entries}, indent=2) + "\n").encode()


def decode_signatures(data: bytes) -> list[dict[str, str]]:
    """The entries of a ``manifest.sig``; `ValueError` says what is wrong with it."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"manifest.sig: not UTF-8 JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != SIGNATURE_FORMAT:
        raise ValueError(f"manifest.sig: format must be {SIGNATURE_FORMAT}")
    entries = document.get("signatures")
    if not isinstance(entries, list) or not entries:
        raise ValueError("manifest.sig: signatures must be a non-empty list")
    for n, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("key_id"), str)
                and isinstance(entry.get("signature"), str)):
            raise ValueError(f"manifest.sig: signatures[{n}] needs key_id and signature strings")
    return entries


def signature_matches(key: Ed25519PublicKey, entry: dict[str, str], manifest_bytes: bytes) -> bool:
    try:
        signature = base64.b64decode(entry["signature"], validate=True)
        key.verify(signature, manifest_bytes)
    except (ValueError, InvalidSignature):
        return False
    return True
