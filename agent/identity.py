"""The node's identity: its key (made here, never sent anywhere), its certificate
and the fleet CA, and the two calls that obtain a certificate from the fleet's
enrollment endpoint (`rpfleet.enrollment_api`).

Enrollment trusts nothing it has not checked: the CA is fetched first over an
unverified connection and accepted only if its key fingerprint matches the pin
inside the technician's code; everything after that goes over TLS verified
against that CA, and the certificate that comes back must be the CA's, for this
node's key.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ValidationError

from rpfleet import enrollment_api as api
from rpfleet import pki
from rpfleet.enrollment_code import CodeError, parse_code

TIMEOUT_S = 20


class EnrollError(RuntimeError):
    """Enrollment or renewal failed; the message tells the technician what to do."""


@dataclass(frozen=True)
class IdentityFiles:
    """Where the node keeps its identity (``/etc/rpfleet/node.key`` and so on)."""

    key: Path
    cert: Path
    ca: Path

    @classmethod
    def in_dir(cls, directory: Path) -> "IdentityFiles":
        return cls(directory / "node.key", directory / "node.crt", directory / "ca.crt")

    @property
    def directory(self) -> Path:
        return self.key.parent

    commit = property(lambda self: self.directory / "identity.commit")

    def write(self, *, key: ec.EllipticCurvePrivateKey, cert_pem: bytes, ca_pem: bytes | None = None) -> None:
        """Replace the identity as one unit, also across a power cut.

        Every file is first written in full beside its target (``.new``); a
        commit marker then says the set is complete, and only then are the files
        renamed into place. `finish_pending` completes or discards an
        interrupted replacement, so a key never ends up beside another key's
        certificate.
        """
        for target in (self.key, self.cert, self.ca):
            target.parent.mkdir(parents=True, exist_ok=True)
        for target, data, mode in (
            (self.key, pki.key_pem(key), 0o600),
            (self.cert, cert_pem, 0o644),
            *([(self.ca, ca_pem, 0o644)] if ca_pem is not None else []),
        ):
            _write_synced(_pending(target), data, mode)
        self._sync_dirs()
        _write_synced(self.commit, b"", 0o600)
        _sync_dir(self.directory)
        self.finish_pending()

    def finish_pending(self) -> None:
        """Install a committed replacement, or drop an uncommitted one."""
        committed = self.commit.exists()
        for target in (self.key, self.cert, self.ca):
            pending = _pending(target)
            if pending.exists():
                if committed:
                    pending.replace(target)
                else:
                    pending.unlink()
        self._sync_dirs()
        self.commit.unlink(missing_ok=True)
        _sync_dir(self.directory)

    def _sync_dirs(self) -> None:
        for directory in {self.key.parent, self.cert.parent, self.ca.parent}:
            _sync_dir(directory)


def _pending(target: Path) -> Path:
    return target.with_name(target.name + ".new")


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fetch_ca(server_url: str) -> bytes:
    """The CA the endpoint presents, unverified: the caller checks it against the code's pin."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _call("GET", server_url + api.CA_PATH, context=context)


def enroll(
    code_text: str,
    server_url: str,
    files: IdentityFiles,
    *,
    site: str | None = None,
    hostname: str | None = None,
) -> api.Enrollment:
    """Make a key, trade the code for a certificate, and store the identity in ``files``.

    Raises EnrollError with a message for the technician; nothing is written then.
    """
    try:
        code = parse_code(code_text)
    except CodeError as exc:
        raise EnrollError(f"check the code: {exc}") from None
    server_url = server_url.rstrip("/")
    ca_pem = fetch_ca(server_url)
    try:
        ca_cert = pki.load_cert(ca_pem)
    except pki.PkiError:
        raise EnrollError(f"{server_url} did not send a CA certificate; is it the fleet server?") from None
    if not code.pins(pki.fingerprint(ca_cert)):
        raise EnrollError(
            f"{server_url} does not hold the fleet CA this code was made for, so it may be an "
            "impostor: nothing was sent. Check the server address; if it is right, call IT support."
        )
    key = pki.new_key()
    request = api.EnrollRequest(
        code=str(code), csr=pki.make_csr(key).decode("ascii"), site=site, hostname=hostname
    )
    answer = _post(server_url + api.ENROLL_PATH, request, api.Enrollment, ca_pem)
    cert = _check_certificate(answer.certificate, ca_cert, key, answer.node_id)
    files.write(key=key, cert_pem=pki.cert_pem(cert), ca_pem=ca_pem)
    return answer


def renew(server_url: str, files: IdentityFiles) -> None:
    """Replace the node's key and certificate, proving the current ones; raises EnrollError."""
    ca_pem = files.ca.read_bytes()
    ca_cert = pki.load_cert(ca_pem)
    current_key = pki.load_key(files.key.read_bytes())
    current = pki.load_cert(files.cert.read_bytes())
    node_id = pki.common_name(current)
    key = pki.new_key()
    csr = pki.make_csr(key, node_id or "rpfleet-node")
    signature = current_key.sign(csr, ec.ECDSA(hashes.SHA256()))
    request = api.RenewRequest(
        certificate=files.cert.read_text(encoding="ascii"), csr=csr.decode("ascii"),
        signature=base64.b64encode(signature).decode("ascii"),
    )
    answer = _post(server_url.rstrip("/") + api.RENEW_PATH, request, api.Renewal, ca_pem)
    cert = _check_certificate(answer.certificate, ca_cert, key, node_id)
    files.write(key=key, cert_pem=pki.cert_pem(cert))


def _check_certificate(
    pem: str, ca_cert: Any, key: ec.EllipticCurvePrivateKey, node_id: str | None
) -> Any:
    try:
        cert = pki.load_cert(pem.encode("ascii"))
        pki.check_issued(ca_cert, cert)
    except pki.PkiError as exc:
        raise EnrollError(f"the server sent an unusable certificate: {exc}") from None
    if not pki.same_key(cert, key):
        raise EnrollError("the server sent a certificate for another key")
    if pki.common_name(cert) != node_id:
        raise EnrollError(f"the certificate names {pki.common_name(cert)!r}, not {node_id!r}")
    return cert


def _post(url: str, body: BaseModel, answer: type[BaseModel], ca_pem: bytes) -> Any:
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    raw = _call("POST", url, context=context, body=body.model_dump_json().encode())
    try:
        return answer.model_validate_json(raw)
    except ValidationError as exc:
        raise EnrollError(f"the server's answer is not an enrollment: {exc.error_count()} error(s)") from None


def _call(method: str, url: str, *, context: ssl.SSLContext, body: bytes | None = None) -> bytes:
    if not url.startswith("https://"):
        raise EnrollError(f"the enrollment address must start with https:// (got {url!r})")
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise EnrollError(f"the server refused: {_refusal(exc)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise EnrollError(f"the server's certificate is not the fleet's for this address: {exc.verify_message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EnrollError(f"cannot reach {url}: {reason}") from None


def _refusal(error: urllib.error.HTTPError) -> str:
    try:
        refusal = api.Refusal.model_validate(json.loads(error.read() or b"{}"))
    except (ValueError, ValidationError):
        return f"HTTP {error.code}"
    return f"{refusal.detail} ({refusal.reason})"
