"""The fleet's X.509 pieces, checked with cryptography and with OpenSSL's own verifier."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from rpfleet import pki

NOW = dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def ca():
    key = pki.new_key()
    return pki.make_ca(key, now=NOW), key


def _verify(tmp_path: Path, ca_cert, cert, purpose: str, crl: bytes | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "ca.pem").write_bytes(pki.cert_pem(ca_cert))
    (tmp_path / "leaf.pem").write_bytes(pki.cert_pem(cert))
    command = ["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), "-purpose", purpose,
               "-attime", str(int((NOW + dt.timedelta(days=1)).timestamp()))]
    if crl is not None:
        (tmp_path / "crl.pem").write_bytes(crl)
        command += ["-crl_check", "-CRLfile", str(tmp_path / "crl.pem")]
    return subprocess.run([*command, str(tmp_path / "leaf.pem")], capture_output=True, text=True)


def test_a_node_certificate_verifies_as_a_tls_client(ca, tmp_path):
    ca_cert, ca_key = ca
    node_key = pki.new_key()
    cert = pki.issue(ca_cert, ca_key, node_key.public_key(), "pv-bach-dang-1", role=pki.Role.CLIENT, now=NOW)

    assert _verify(tmp_path, ca_cert, cert, "sslclient").returncode == 0
    assert _verify(tmp_path, ca_cert, cert, "sslserver").returncode != 0
    assert pki.common_name(cert) == "pv-bach-dang-1"
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=pki.NODE_DAYS)
    assert cert.not_valid_before_utc < NOW  # a node whose clock lags a little still accepts it


def test_a_server_certificate_names_its_hosts(ca, tmp_path):
    ca_cert, ca_key = ca
    cert = pki.issue(ca_cert, ca_key, pki.new_key().public_key(), "broker", role=pki.Role.SERVER,
                     names=["mqtt.hcc.hanoi.gov.vn", "10.1.2.3"], now=NOW)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["mqtt.hcc.hanoi.gov.vn"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert _verify(tmp_path, ca_cert, cert, "sslserver").returncode == 0


def test_a_server_certificate_without_names_is_refused(ca):
    ca_cert, ca_key = ca
    with pytest.raises(pki.PkiError, match="needs the host names"):
        pki.issue(ca_cert, ca_key, pki.new_key().public_key(), "broker", role=pki.Role.SERVER)


def test_the_fleet_server_identity_is_client_and_server(ca):
    ca_cert, ca_key = ca
    cert = pki.issue(ca_cert, ca_key, pki.new_key().public_key(), "_fleet-server",
                     role=pki.Role.CLIENT_AND_SERVER, names=["localhost"], now=NOW)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}


def test_no_certificate_outlives_the_ca(ca):
    ca_cert, ca_key = ca
    cert = pki.issue(ca_cert, ca_key, pki.new_key().public_key(), "n", role=pki.Role.CLIENT,
                     now=NOW, days=pki.CA_DAYS + 100)
    assert cert.not_valid_after_utc == ca_cert.not_valid_after_utc


def test_only_p256_keys_get_certificates(ca):
    ca_cert, ca_key = ca
    with pytest.raises(pki.PkiError, match="P-256"):
        pki.issue(ca_cert, ca_key, ec.generate_private_key(ec.SECP384R1()).public_key(), "n",
                  role=pki.Role.CLIENT)
    with pytest.raises(pki.PkiError, match="P-256"):
        pki.issue(ca_cert, ca_key, rsa.generate_private_key(65537, 2048).public_key(), "n",
                  role=pki.Role.CLIENT)


def test_a_csr_gives_its_key_when_its_signature_holds():
    key = pki.new_key()
    assert pki.csr_public_key(pki.make_csr(key)) == key.public_key()


def test_a_tampered_csr_is_refused():
    from cryptography.hazmat.primitives.serialization import Encoding

    csr = x509.load_pem_x509_csr(pki.make_csr(pki.new_key()))
    der = bytearray(csr.public_bytes(Encoding.DER))
    der[-10] ^= 0xFF  # a byte of the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(Encoding.PEM)
    with pytest.raises(pki.PkiError):
        pki.csr_public_key(tampered)
    with pytest.raises(pki.PkiError, match="not a PEM certificate signing request"):
        pki.csr_public_key("hello")


def test_a_certificate_from_another_ca_is_told_apart(ca):
    ca_cert, ca_key = ca
    other_key = pki.new_key()
    other_ca = pki.make_ca(other_key, now=NOW)
    cert = pki.issue(other_ca, other_key, pki.new_key().public_key(), "n", role=pki.Role.CLIENT, now=NOW)
    with pytest.raises(pki.PkiError, match="not issued by the fleet CA"):
        pki.check_issued(ca_cert, cert)
    pki.check_issued(other_ca, cert)


def test_a_revoked_certificate_fails_verification_with_the_crl(ca, tmp_path):
    ca_cert, ca_key = ca
    cert = pki.issue(ca_cert, ca_key, pki.new_key().public_key(), "stolen", role=pki.Role.CLIENT, now=NOW)
    empty = pki.make_crl(ca_cert, ca_key, [], now=NOW)
    revoked = pki.make_crl(ca_cert, ca_key, [(cert.serial_number, NOW)], now=NOW)

    assert _verify(tmp_path, ca_cert, cert, "sslclient", crl=empty).returncode == 0
    result = _verify(tmp_path, ca_cert, cert, "sslclient", crl=revoked)
    assert result.returncode != 0 and "revoked" in result.stdout + result.stderr


def test_the_crl_lasts_as_long_as_the_ca(ca):
    ca_cert, ca_key = ca
    crl = x509.load_pem_x509_crl(pki.make_crl(ca_cert, ca_key, [], now=NOW))
    assert crl.next_update_utc == ca_cert.not_valid_after_utc
    assert crl.is_signature_valid(ca_cert.public_key())


def test_the_fingerprint_is_of_the_key_not_the_certificate(ca):
    ca_cert, ca_key = ca
    reissued = pki.make_ca(ca_key, now=NOW + dt.timedelta(days=1))
    assert pki.fingerprint(reissued) == pki.fingerprint(ca_cert)
    assert pki.fingerprint(pki.make_ca(pki.new_key(), now=NOW)) != pki.fingerprint(ca_cert)


def test_renewal_is_due_within_the_margin():
    key = pki.new_key()
    ca_cert = pki.make_ca(key, now=NOW)
    cert = pki.issue(ca_cert, key, pki.new_key().public_key(), "n", role=pki.Role.CLIENT, now=NOW, days=60)
    assert not pki.expires_within(cert, pki.RENEW_BEFORE, now=NOW)
    assert pki.expires_within(cert, pki.RENEW_BEFORE, now=NOW + dt.timedelta(days=31))
