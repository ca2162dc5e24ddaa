"""The fleet's PKI directory, made by ``rpfleet provision init DIR``.

    ca.crt       the fleet CA; every node and the broker trust it
    ca.key       the CA's private key (0600): whoever holds it can mint nodes
    broker.crt   the broker's TLS server certificate (+ broker.key)
    server.crt   the fleet server's identity: its MQTT client certificate and the
                 enrollment endpoint's TLS certificate (+ server.key)
    crl.pem      revoked certificates; the broker refuses them after a reload

Private keys are created owner-only before a byte is written and are never
printed or logged. The directory itself is made 0700.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning.mosquitto import SERVER_USERNAME
from provisioning.secret_files import write_secret
from rpfleet import pki

DEFAULT_NAMES = ("localhost", "127.0.0.1")


class FleetDirError(RuntimeError):
    pass


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key, as files."""

    cert: Path
    key: Path


class FleetDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    ca_cert = property(lambda self: self.path / "ca.crt")
    ca_key = property(lambda self: self.path / "ca.key")
    crl = property(lambda self: self.path / "crl.pem")
    broker = property(lambda self: Identity(self.path / "broker.crt", self.path / "broker.key"))
    server = property(lambda self: Identity(self.path / "server.crt", self.path / "server.key"))

    def exists(self) -> bool:
        return self.ca_cert.is_file() and self.ca_key.is_file()

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        broker_names: Sequence[str] = DEFAULT_NAMES,
        server_names: Sequence[str] = DEFAULT_NAMES,
        now: dt.datetime | None = None,
    ) -> "FleetDir":
        """A new CA with the broker's and the fleet server's identities and an empty CRL.

        Refuses a directory that already holds a CA: replacing it would cut
        every enrolled node off.
        """
        fleet = cls(path)
        if fleet.ca_key.exists() or fleet.ca_cert.exists():
            raise FleetDirError(f"{path} already holds a fleet CA; refusing to replace it")
        fleet.path.mkdir(parents=True, exist_ok=True)
        os.chmod(fleet.path, 0o700)
        ca_key = pki.new_key()
        ca_cert = pki.make_ca(ca_key, now=now)
        write_secret(fleet.ca_key, pki.key_pem(ca_key).decode())
        fleet.ca_cert.write_bytes(pki.cert_pem(ca_cert))
        fleet._issue_to(fleet.broker, "rpfleet-broker", pki.Role.SERVER, broker_names, now)
        fleet._issue_to(fleet.server, SERVER_USERNAME, pki.Role.CLIENT_AND_SERVER, server_names, now)
        fleet.write_crl([])
        return fleet

    def load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if not self.exists():
            raise FleetDirError(f"{self.path} holds no fleet CA: run `rpfleet provision init {self.path}`")
        return pki.load_cert(self.ca_cert.read_bytes()), pki.load_key(self.ca_key.read_bytes())

    def ca_fingerprint(self) -> str:
        return pki.fingerprint(pki.load_cert(self.ca_cert.read_bytes()))

    def sign(
        self,
        public_key: ec.EllipticCurvePublicKey,
        cn: str,
        *,
        role: pki.Role = pki.Role.CLIENT,
        names: Sequence[str] = (),
        days: int = pki.NODE_DAYS,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        ca_cert, ca_key = self.load_ca()
        return pki.issue(ca_cert, ca_key, public_key, cn, role=role, names=names, days=days, now=now)

    def issue_identity(
        self,
        target: Identity,
        cn: str,
        *,
        days: int = pki.NODE_DAYS,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """A client key and certificate for ``cn`` written to ``target`` (tests, the demo).

        A real node makes its own key at enrollment; this is for identities the
        fleet operator holds, such as test clients.
        """
        return self._issue_to(target, cn, pki.Role.CLIENT, (), now, days)

    def write_crl(self, revoked: Iterable[tuple[int, dt.datetime]]) -> None:
        ca_cert, ca_key = self.load_ca()
        tmp = self.crl.with_suffix(".tmp")
        tmp.write_bytes(pki.make_crl(ca_cert, ca_key, revoked))
        tmp.chmod(0o644)  # the broker re-reads it as its own user, whatever our umask
        tmp.replace(self.crl)

    def _issue_to(
        self,
        target: Identity,
        cn: str,
        role: pki.Role,
        names: Sequence[str],
        now: dt.datetime | None,
        days: int = pki.IDENTITY_DAYS,
    ) -> x509.Certificate:
        key = pki.new_key()
        cert = self.sign(key.public_key(), cn, role=role, names=names, days=days, now=now)
        write_secret(target.key, pki.key_pem(key).decode())
        target.cert.parent.mkdir(parents=True, exist_ok=True)
        target.cert.write_bytes(pki.cert_pem(cert))
        return cert
