"""The node's identity files: replaced as one unit, also when power is cut midway."""

from __future__ import annotations

import pytest

from agent.identity import EnrollError, IdentityFiles, enroll
from rpfleet import pki


@pytest.fixture
def files(tmp_path) -> IdentityFiles:
    return IdentityFiles.in_dir(tmp_path / "etc")


def _cert_for(key, cn="n1"):
    ca_key = pki.new_key()
    ca = pki.make_ca(ca_key)
    return pki.cert_pem(pki.issue(ca, ca_key, key.public_key(), cn, role=pki.Role.CLIENT)), pki.cert_pem(ca)


def _pair_matches(files: IdentityFiles) -> bool:
    return pki.same_key(pki.load_cert(files.cert.read_bytes()), pki.load_key(files.key.read_bytes()))


def test_write_puts_key_and_certificate_in_place(files):
    key = pki.new_key()
    cert, ca = _cert_for(key)
    files.write(key=key, cert_pem=cert, ca_pem=ca)

    assert _pair_matches(files)
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert files.ca.read_bytes() == ca
    assert sorted(p.name for p in files.directory.iterdir()) == ["ca.crt", "node.crt", "node.key"]


def test_a_replacement_cut_before_its_commit_is_dropped(files):
    old_key = pki.new_key()
    cert, ca = _cert_for(old_key)
    files.write(key=old_key, cert_pem=cert, ca_pem=ca)
    # Power cut while the new files were being written: .new files, no commit marker.
    new_key = pki.new_key()
    (files.directory / "node.key.new").write_bytes(pki.key_pem(new_key))
    (files.directory / "node.crt.new").write_bytes(b"-----BEGIN CERT")

    files.finish_pending()

    assert _pair_matches(files)
    assert pki.load_key(files.key.read_bytes()).public_key() == old_key.public_key()
    assert not list(files.directory.glob("*.new"))


def test_a_replacement_cut_after_its_commit_is_completed(files):
    old_key = pki.new_key()
    cert, ca = _cert_for(old_key)
    files.write(key=old_key, cert_pem=cert, ca_pem=ca)
    # Power cut after the commit marker, with the key already renamed and the certificate not.
    new_key = pki.new_key()
    new_cert, _ = _cert_for(new_key)
    files.key.write_bytes(pki.key_pem(new_key))
    (files.directory / "node.crt.new").write_bytes(new_cert)
    files.commit.write_bytes(b"")
    assert not _pair_matches(files)

    files.finish_pending()

    assert _pair_matches(files)
    assert not files.commit.exists()


@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1:1", "must start with https://"),
    ("https://127.0.0.1:1", "cannot reach"),
], ids=["plain-http", "nobody-listening"])
def test_enroll_says_why_it_cannot_start(files, url, message):
    from rpfleet.enrollment_code import new_code

    code = new_code("ab" * 32)
    with pytest.raises(EnrollError, match=message):
        enroll(str(code), url, files)
    assert not files.directory.exists()


def test_a_mistyped_code_fails_before_any_network(files):
    with pytest.raises(EnrollError, match="check the code"):
        enroll("AAAA-BBBB-CCCC-DDDD-EEEE", "https://192.0.2.1:8443", files)
