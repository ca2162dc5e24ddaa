"""The manifest and key formats, without building anything."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rpfleet.release import keys
from rpfleet.release.artifact import (
    ArtifactRefused,
    Manifest,
    check_signature,
    normalize_architecture,
    parse_manifest,
)

WHEEL = {"path": "rpfleet-1.0-py3-none-any.whl", "size": 10, "sha256": "ab" * 32}


def manifest(**changes) -> dict:
    base = dict(format=1, version="1.0", architecture="any", python_tag="py3", min_config_schema="1.5",
                created_at=datetime(2026, 11, 25, tzinfo=timezone.utc), bundles_dependencies=False,
                files=[WHEEL], total_size=10)
    return {**base, **changes}


def test_the_version_is_normalised_and_the_bytes_round_trip():
    model = Manifest(**manifest(version="1.0.0-RC1"))
    assert model.version == "1.0.0rc1"
    assert parse_manifest(model.encode()) == model


@pytest.mark.parametrize(
    "changes, message",
    [({"version": "latest"}, "version: 'latest' is not a PEP 440 version"),
     ({"total_size": 11}, "total_size: 11 but the files add up to 10"),
     ({"files": [WHEEL, WHEEL], "total_size": 20}, "repeated path(s) rpfleet-1.0-py3-none-any.whl"),
     ({"files": [{**WHEEL, "path": "a/b.whl"}]}, "files.0.path"),
     ({"files": [{**WHEEL, "path": ".."}]}, "files.0.path"),
     ({"files": []}, "files"),
     ({"architecture": "x86-64"}, "architecture"),
     ({"python_tag": "cp2"}, "python_tag"),
     ({"format": 2}, "format"),
     ({"created_at": "2026-11-25T00:00:00"}, "created_at"),  # no time zone
     ({"signed_by": "me"}, "signed_by: unknown key")],
    ids=["version", "total", "repeated", "subdir", "dotdot", "no-files", "arch", "python", "format",
         "naive-time", "extra"],
)
def test_a_bad_manifest_is_malformed_and_names_the_field(changes, message):
    document = {**Manifest(**manifest()).model_dump(mode="json"), **changes}
    with pytest.raises(ArtifactRefused) as caught:
        parse_manifest(json.dumps(document).encode())
    assert caught.value.reason == "malformed" and message in caught.value.message


@pytest.mark.parametrize("name, expected", [("amd64", "x86_64"), ("ARM64", "aarch64"), ("armv7l", "armv7l"),
                                            ("any", "any")])
def test_architecture_aliases(name, expected):
    assert normalize_architecture(name) == expected


def test_the_key_id_is_the_hash_of_the_raw_public_key():
    public = Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert keys.key_id(public) == hashlib.sha256(raw).hexdigest()[:16]


def test_a_key_of_another_kind_is_not_trusted():
    pem = generate_private_key(SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(keys.ReleaseKeyError, match="trusted key #1: a .*, not an Ed25519 public key"):
        check_signature(b"{}", keys.encode_signatures([{"key_id": "x", "signature": ""}]), [pem])


def test_no_trusted_key_is_a_programming_error():
    with pytest.raises(ValueError, match="trusted_keys is empty"):
        check_signature(b"{}", keys.encode_signatures([{"key_id": "x", "signature": ""}]), [])


@pytest.mark.parametrize("data", [b"", b"[]", b'{"format": 1, "signatures": []}',
                                  b'{"format": 1, "signatures": [{"key_id": 1}]}', b"\xff"])
def test_an_unreadable_signature_file_is_malformed(data):
    with pytest.raises(ArtifactRefused) as caught:
        check_signature(b"{}", data, [Ed25519PrivateKey.generate().public_key()])
    assert caught.value.reason == "malformed" and "manifest.sig" in caught.value.message


def test_a_bundle_of_public_keys_loads_every_key(tmp_path):
    ids = []
    for name in ("old", "new"):
        kid, _, public = keys.generate_key_pair(tmp_path / name)
        ids.append(kid)
        with open(tmp_path / "release-keys.pem", "ab") as bundle:
            bundle.write(public.read_bytes())
    assert [keys.key_id(k) for k in keys.load_public_keys(tmp_path / "release-keys.pem")] == ids
    (tmp_path / "empty.pem").write_text("nothing here\n")
    with pytest.raises(keys.ReleaseKeyError, match="empty.pem: no PEM public key"):
        keys.load_public_keys(tmp_path / "empty.pem")
