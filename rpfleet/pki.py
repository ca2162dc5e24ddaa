"""The fleet's certificates, built with `cryptography` (nothing hand-rolled).

Pure functions over keys and certificates, no files: a CA (ECDSA P-256), the
identities it issues (broker, fleet server, nodes), CSR checks, the revocation
list, and the CA fingerprint that enrollment codes pin. `provisioning.fleet_dir`
(the fleet's side) and `agent.identity` (the node's side) keep them on disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from enum import Enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
IDENTITY_DAYS = 825
NODE_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
"""A node asks for a new certificate once its current one has less than this left."""

BACKDATE = dt.timedelta(minutes=5)
"""Certificates start a little in the past, so a node whose clock lags still accepts them."""

ORGANIZATION = "rpfleet"


class PkiError(ValueError):
    """A key, CSR or certificate that is not what the fleet expects; the message says why."""


class Role(Enum):
    """What a certificate may be used for (its extended key usage)."""

    CLIENT = (ExtendedKeyUsageOID.CLIENT_AUTH,)
    SERVER = (ExtendedKeyUsageOID.SERVER_AUTH,)
    CLIENT_AND_SERVER = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("the private key is not an EC key")
    return key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate: {exc}") from None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's public key (SubjectPublicKeyInfo), in hex.

    Pinning the key rather than the whole certificate (as ``kubeadm join`` does)
    keeps a pin valid when the CA certificate is re-issued with the same key.
    """
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def common_name(cert: x509.Certificate | x509.CertificateSigningRequest) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; anything else only signs its TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca,
        crl_sign=ca, encipher_only=False, decipher_only=False,
    )


def make_ca(
    key: ec.EllipticCurvePrivateKey,
    name: str = "rpfleet fleet CA",
    *,
    now: dt.datetime | None = None,
    days: int = CA_DAYS,
) -> x509.Certificate:
    now = now or utcnow()
    subject = _name(name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _alt_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    cn: str,
    *,
    role: Role,
    names: Sequence[str] = (),
    now: dt.datetime | None = None,
    days: int = NODE_DAYS,
) -> x509.Certificate:
    """A certificate for ``public_key`` with common name ``cn``, signed by the CA.

    ``names`` (DNS names or IP addresses) become subjectAltNames, which a TLS
    client checks against the host it dialled; a server role needs at least one.
    """
    if role is not Role.CLIENT and not names:
        raise PkiError(f"a server certificate for {cn!r} needs the host names it is reached by")
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
        raise PkiError("the fleet issues certificates for ECDSA P-256 keys only")
    now = now or utcnow()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(role.value)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def make_csr(key: ec.EllipticCurvePrivateKey, cn: str = "rpfleet-node") -> bytes:
    """A PEM certificate signing request: proof that the sender holds ``key``."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_public_key(pem: bytes | str) -> ec.EllipticCurvePublicKey:
    """The public key of a CSR whose signature checks out; raises PkiError otherwise.

    The subject the node wrote is ignored: the server names the certificate.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate signing request: {exc}") from None
    if not csr.is_signature_valid:
        raise PkiError("the CSR's signature does not match its key")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise PkiError("the CSR's key is not ECDSA P-256")
    return key


def check_issued(ca_cert: x509.Certificate, cert: x509.Certificate) -> None:
    """Raise PkiError unless ``cert`` was signed by ``ca_cert``'s key."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PkiError(f"the certificate was not issued by the fleet CA ({exc or 'bad signature'})") from None


def same_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    return cert.public_key() == key.public_key()


def make_crl(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    revoked: Iterable[tuple[int, dt.datetime]],
    *,
    now: dt.datetime | None = None,
) -> bytes:
    """A PEM revocation list of ``(serial, revoked_at)`` pairs.

    Its next update is the CA's own expiry: the broker treats an expired CRL as
    "refuse everyone", and nothing re-signs it on a schedule, so a short
    validity would lock the fleet out the day it lapsed. Every revoke writes a
    fresh one.
    """
    now = now or utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - BACKDATE)
        .next_update(ca_cert.not_valid_after_utc)
    )
    for serial, at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build()
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def expires_within(cert: x509.Certificate, margin: dt.timedelta, now: dt.datetime | None = None) -> bool:
    return cert.not_valid_after_utc - (now or utcnow()) <= margin
