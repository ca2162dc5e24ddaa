"""Real artifacts from the working tree: what a node accepts, what it refuses and why."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rpfleet.release import keys
from rpfleet.release.artifact import (
    MANIFEST_NAME,
    PAYLOAD_DIR,
    SIGNATURE_NAME,
    ArtifactRefused,
    extract_payload,
    interpreter_tag,
    machine_architecture,
    read_manifest,
    verify_artifact,
)
from rpfleet.release.signing import sign_artifact
from tests.rpfleet.release.factory import flip_byte, member_offset, signed_copy

NODE = dict(installed_version="0.1.0", architecture="x86_64")


def refused(path: Path, trusted, **kwargs) -> ArtifactRefused:
    with pytest.raises(ArtifactRefused) as caught:
        verify_artifact(path, trusted, **{**NODE, **kwargs})
    return caught.value


def wheel_name(manifest) -> str:
    return next(f.path for f in manifest.files if f.path.startswith("rpfleet-"))


def test_a_signed_build_of_the_tree_is_accepted(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    manifest = verify_artifact(artifact, [key_a.public], **NODE)
    assert manifest == builds.v020_manifest
    assert (manifest.version, manifest.architecture, manifest.python_tag) == ("0.2.0", "any", "py3")
    assert wheel_name(manifest) == "rpfleet-0.2.0-py3-none-any.whl"
    assert manifest.total_size == sum(f.size for f in manifest.files) > 100_000
    assert manifest.requirement == "rpfleet[agent]==0.2.0"
    # Trusted keys may come as PEM bytes or raw bytes as well as key objects.
    assert verify_artifact(artifact, [key_a.public_path.read_bytes()], **NODE) == manifest
    assert verify_artifact(artifact, [keys.raw_public_bytes(key_a.public)], **NODE) == manifest


def test_the_version_is_stamped_into_the_wheel_not_the_tree(builds, tmp_path):
    assert extract_payload(builds.v020, tmp_path / "out").version == "0.2.0"
    with zipfile.ZipFile(tmp_path / "out" / "rpfleet-0.2.0-py3-none-any.whl") as wheel:
        init = wheel.read("rpfleet/__init__.py").decode()
        assert '__version__ = "0.2.0"' in init
        assert "Version: 0.2.0" in wheel.read("rpfleet-0.2.0.dist-info/METADATA").decode()
        assert "agent/node.py" in wheel.namelist()
    assert builds.tree_after == builds.tree_before


def test_unsigned_is_refused(builds, key_a):
    assert refused(builds.v020, [key_a.public]).reason == "unsigned"


def test_a_key_that_is_not_trusted_is_refused(builds, key_a, key_b, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_b)
    error = refused(artifact, [key_a.public])
    assert error.reason == "unknown-key"
    assert key_b.key_id in error.message and key_a.key_id in error.message


def test_a_rotated_key_is_accepted_when_trusted(builds, key_a, key_b, tmp_path):
    only_new = signed_copy(builds.v020, tmp_path, key_b)
    assert verify_artifact(only_new, [key_a.public, key_b.public], **NODE).version == "0.2.0"
    (tmp_path / "both").mkdir()
    both = signed_copy(builds.v020, tmp_path / "both", key_a, key_b)
    # Signed with the old and the new key: nodes on either trust list accept it.
    assert verify_artifact(both, [key_a.public], **NODE).version == "0.2.0"
    assert verify_artifact(both, [key_b.public], **NODE).version == "0.2.0"
    entries = keys.decode_signatures(tarfile.open(both).extractfile(SIGNATURE_NAME).read())
    assert [e["key_id"] for e in entries] == [key_a.key_id, key_b.key_id]


def test_signing_twice_with_one_key_keeps_one_signature(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a, key_a)
    entries = keys.decode_signatures(tarfile.open(artifact).extractfile(SIGNATURE_NAME).read())
    assert [e["key_id"] for e in entries] == [key_a.key_id]


def test_one_byte_flipped_in_the_payload_is_tampered(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    name = wheel_name(builds.v020_manifest)
    start, size = member_offset(artifact, PAYLOAD_DIR + name)
    flip_byte(artifact, start + size // 2)
    error = refused(artifact, [key_a.public])
    assert error.reason == "tampered"
    assert name in error.message and "sha256" in error.message


def test_one_byte_flipped_in_the_manifest_breaks_the_signature(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    start, size = member_offset(artifact, MANIFEST_NAME)
    text = Path(artifact).read_bytes()[start:start + size]
    flip_byte(artifact, start + text.index(b'"0.2.0"') + 3)  # 0.2.0 -> 0.3.0: a "newer" release
    assert refused(artifact, [key_a.public]).reason == "bad-signature"


def test_one_byte_flipped_in_the_signature_is_a_bad_signature(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    start, size = member_offset(artifact, SIGNATURE_NAME)
    document = Path(artifact).read_bytes()[start:start + size]
    value = document.index(b'"signature": "') + len(b'"signature": "')
    at = next(i for i in range(value, value + 80) if chr(document[i]).isalpha())
    flip_byte(artifact, start + at, mask=0x20)  # a base64 letter changes case: still base64
    assert refused(artifact, [key_a.public]).reason == "bad-signature"


@pytest.mark.parametrize(
    "installed, allow, reason",
    [("0.2.0", False, "not-newer"), ("0.2.0", True, "not-newer"), ("0.3.0", False, "downgrade"),
     ("0.2.1.dev1", False, "downgrade")],
    ids=["same", "same-even-as-rollback", "older", "older-than-a-dev-build"],
)
def test_versions_not_newer_are_refused(builds, key_a, tmp_path, installed, allow, reason):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    error = refused(artifact, [key_a.public], installed_version=installed, allow_downgrade=allow)
    assert error.reason == reason


def test_an_explicit_rollback_may_go_back(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    manifest = verify_artifact(artifact, [key_a.public], installed_version="0.3.0", architecture="aarch64",
                               allow_downgrade=True)
    assert manifest.version == "0.2.0"


def test_wrong_architecture_is_refused(builds, manifest_v030_arm, key_a, tmp_path):
    assert manifest_v030_arm.architecture == "aarch64"  # --arch arm64, normalised
    artifact = signed_copy(builds.v030_arm, tmp_path, key_a)
    error = refused(artifact, [key_a.public], architecture="x86_64")
    assert error.reason == "wrong-architecture"
    assert "aarch64" in error.message and "x86_64" in error.message
    assert verify_artifact(artifact, [key_a.public], installed_version="0.2.0", architecture="arm64") \
        .version == "0.3.0"


def test_wrong_python_is_refused_for_compiled_payloads_only(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)  # pure wheels: py3 fits any Python
    assert verify_artifact(artifact, [key_a.public], **NODE, python_tag="cp313").python_tag == "py3"


@pytest.mark.parametrize(
    "cut", ["empty", "inside-first-header", "inside-the-wheel", "inside-a-header", "before-end-blocks"],
)
def test_truncated_is_refused(builds, key_a, tmp_path, cut):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    start, size = member_offset(artifact, PAYLOAD_DIR + wheel_name(builds.v020_manifest))
    length = {
        "empty": 0,
        "inside-first-header": 300,
        "inside-the-wheel": start + size // 3,
        "inside-a-header": start - 200,
        "before-end-blocks": start + size + 100,
    }[cut]
    with open(artifact, "r+b") as handle:
        handle.truncate(length)
    assert refused(artifact, [key_a.public]).reason == "truncated"
    with pytest.raises(ArtifactRefused, match="truncated"):
        extract_payload(artifact, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def _tar(path: Path, members: list[tuple[str, bytes]], *, symlink: str | None = None) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def _manifest_json(builds, **changes) -> dict:
    document = json.loads(builds.v020_manifest.encode())
    document.update(changes)
    return document


def _signed_members(key, document: dict, payload: dict[str, bytes]) -> list[tuple[str, bytes]]:
    data = json.dumps(document).encode()
    sig = keys.encode_signatures([keys.signature_entry(key.private, data)])
    return [(MANIFEST_NAME, data), (SIGNATURE_NAME, sig), *((PAYLOAD_DIR + n, b) for n, b in payload.items())]


@pytest.mark.parametrize(
    "name", ["payload/../../evil.whl", "../evil.whl", "/tmp/evil.whl", "payload/sub/evil.whl", "evil.whl"],
)
def test_members_outside_the_payload_are_refused(builds, key_a, tmp_path, name):
    good = _manifest_json(builds)
    members = _signed_members(key_a, good, {}) + [(name, b"#!/bin/sh\nrm -rf /\n")]
    artifact = _tar(tmp_path / "evil.tar", members)
    error = refused(artifact, [key_a.public])
    assert error.reason == "malformed" and repr(name) in error.message
    with pytest.raises(ArtifactRefused, match="malformed"):
        extract_payload(artifact, tmp_path / "x" / "out")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["evil.tar", "x", "x/out"]


def test_a_link_in_the_payload_is_refused(builds, key_a, tmp_path):
    artifact = _tar(tmp_path / "link.tar", _signed_members(key_a, _manifest_json(builds), {}),
                    symlink="payload/rpfleet-0.2.0-py3-none-any.whl")
    error = refused(artifact, [key_a.public])
    assert error.reason == "malformed" and "not a regular file" in error.message


def test_a_signed_manifest_naming_a_path_outside_is_refused(builds, key_a, tmp_path):
    data = b"not a wheel"
    entry = {"path": "../../evil.whl", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    document = _manifest_json(builds, files=[entry], total_size=len(data))
    artifact = _tar(tmp_path / "evil.tar", _signed_members(key_a, document, {}))
    error = refused(artifact, [key_a.public])
    assert error.reason == "malformed" and "files.0.path" in error.message
    with pytest.raises(ArtifactRefused, match="malformed"):
        extract_payload(artifact, tmp_path / "out")
    assert not (tmp_path.parent / "evil.whl").exists()


def test_a_payload_file_outside_the_manifest_is_tampered(builds, key_a, tmp_path):
    (tmp_path / "src").mkdir()
    source = signed_copy(builds.v020, tmp_path / "src", key_a)
    with tarfile.open(source) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    extra = _tar(tmp_path / "extra.tar", [*members, (PAYLOAD_DIR + "evil-1.0-py3-none-any.whl", b"zip")])
    assert refused(extra, [key_a.public]).reason == "tampered"
    missing = _tar(tmp_path / "missing.tar", members[:2])
    error = refused(missing, [key_a.public])
    assert error.reason == "tampered" and "missing" in error.message


@pytest.mark.parametrize("content", [b"\x1f\x8b\x08\x00" + b"\x00" * 2000, b"hello " * 400],
                         ids=["gzip", "text"])
def test_a_file_that_is_no_artifact_is_malformed(key_a, tmp_path, content):
    path = tmp_path / "odd.tar"
    path.write_bytes(content)
    assert refused(path, [key_a.public]).reason == "malformed"


def test_a_signed_manifest_that_does_not_validate_names_the_field(builds, key_a, tmp_path):
    document = _manifest_json(builds, version="two", total_size=1)
    artifact = _tar(tmp_path / "bad.tar", _signed_members(key_a, document, {}))
    error = refused(artifact, [key_a.public])
    assert error.reason == "malformed"
    assert "version: 'two' is not a PEP 440 version" in error.message


def test_extraction_writes_the_payload_with_its_hashes(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    verified = verify_artifact(artifact, [key_a.public], **NODE)
    out = tmp_path / "releases" / "0.2.0" / "wheels"
    assert extract_payload(artifact, out, expected=verified) == verified
    assert sorted(p.name for p in out.iterdir()) == sorted(f.path for f in verified.files)
    for entry in verified.files:
        data = (out / entry.path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry.size, entry.sha256)
    with pytest.raises(FileExistsError, match="not empty"):
        extract_payload(artifact, out)


def test_extraction_refuses_a_flipped_byte_and_leaves_nothing(builds, tmp_path):
    artifact = tmp_path / "a.tar"
    shutil.copyfile(builds.v020, artifact)
    start, size = member_offset(artifact, PAYLOAD_DIR + wheel_name(builds.v020_manifest))
    flip_byte(artifact, start + size - 1)
    out = tmp_path / "out"
    with pytest.raises(ArtifactRefused) as caught:
        extract_payload(artifact, out)
    assert caught.value.reason == "tampered"
    assert list(out.iterdir()) == []


def test_extraction_refuses_a_file_swapped_after_verification(builds, key_a, tmp_path):
    artifact = signed_copy(builds.v030_arm, tmp_path, key_a)
    verified_earlier = read_manifest(builds.v020)
    with pytest.raises(ArtifactRefused) as caught:
        extract_payload(artifact, tmp_path / "out", expected=verified_earlier)
    assert caught.value.reason == "tampered" and "changed since it was verified" in caught.value.message
    assert list((tmp_path / "out").iterdir()) == []


def test_a_damaged_artifact_is_never_signed(builds, key_a, tmp_path):
    artifact = tmp_path / "a.tar"
    shutil.copyfile(builds.v020, artifact)
    start, size = member_offset(artifact, PAYLOAD_DIR + wheel_name(builds.v020_manifest))
    flip_byte(artifact, start + 10)
    before = artifact.read_bytes()
    with pytest.raises(ArtifactRefused, match="tampered"):
        sign_artifact(artifact, key_a.private)
    assert artifact.read_bytes() == before
    assert not list(tmp_path.glob("*.part"))


def test_a_wheel_set_with_dependencies_installs_offline_and_runs(builds, key_a, tmp_path):
    manifest = builds.v021_deps_manifest
    assert (manifest.architecture, manifest.python_tag, manifest.bundles_dependencies) == (
        machine_architecture(), interpreter_tag(), True)
    names = {f.path.split("-")[0].lower() for f in manifest.files}
    assert {"rpfleet", "paho_mqtt", "cryptography", "pydantic", "evdev", "packaging"} <= names
    artifact = signed_copy(builds.v021_deps, tmp_path, key_a)
    verified = verify_artifact(artifact, [key_a.public], installed_version="0.2.0",
                               architecture=machine_architecture(), python_tag=interpreter_tag())
    wheels = tmp_path / "releases" / "0.2.1" / "wheels"
    extract_payload(artifact, wheels, expected=verified)
    venv = tmp_path / "releases" / "0.2.1" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
         "--no-index", "--find-links", str(wheels), verified.requirement],
        capture_output=True, text=True, timeout=180,
    )
    assert install.returncode == 0, install.stderr
    version = subprocess.run([str(venv / "bin" / "rpfleet"), "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.stdout.strip() == "rpfleet 0.2.1"
    agent = subprocess.run([str(venv / "bin" / "python"), "-c", "import agent.node, agent.link; print('ok')"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert agent.stdout.strip() == "ok", agent.stderr
