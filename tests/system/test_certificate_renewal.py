"""A running agent renews its certificate before it expires and uses the new one
from its next connection on, with no technician (docs/provisioning.md)."""

from __future__ import annotations

import datetime as dt

from agent.identity import IdentityFiles
from agent.settings import AgentSettings, BrokerSettings, TlsSettings
from fleet_server import enrollment
from fleet_server.settings import EnrollmentSettings
from fleet_server.store import connect, utc_now
from rpfleet import pki
from tests.conftest import AgentThread, eventually, tls_broker
from tests.fleet_server.enrollment.conftest import Endpoint

NODE = "renewing-node"


def test_an_agent_renews_and_reconnects_with_the_new_certificate(tmp_path):
    with tls_broker(tmp_path) as broker:
        fleet = broker.fleet
        engine = connect(f"sqlite:///{tmp_path / 'fleet.sqlite'}")
        endpoint = Endpoint(engine, fleet, EnrollmentSettings())
        endpoint.service.start()
        files = IdentityFiles.in_dir(tmp_path / "identity")
        key = pki.new_key()
        # 25 days left of 365: due for renewal the moment the agent starts.
        old = fleet.sign(key.public_key(), NODE, now=utc_now() - dt.timedelta(days=340))
        files.write(key=key, cert_pem=pki.cert_pem(old), ca_pem=fleet.ca_cert.read_bytes())
        with engine.begin() as conn:
            enrollment.record_certificate(conn, NODE, old, "enrolled", utc_now())
        settings = AgentSettings(
            node_id=NODE, state_dir=tmp_path / "state", enrollment_url=endpoint.url,
            broker=BrokerSettings(
                host=broker.host, port=broker.port, reconnect_min=0.1, reconnect_max=1,
                tls=TlsSettings(ca_file=files.ca, cert_file=files.cert, key_file=files.key),
            ),
        )
        agent = AgentThread(settings).start()
        try:
            def renewed() -> bool:
                cert = pki.load_cert(files.cert.read_bytes())
                return cert.serial_number != old.serial_number

            eventually(renewed, timeout=30)
            assert not pki.expires_within(pki.load_cert(files.cert.read_bytes()), pki.RENEW_BEFORE)
            # Lock the old certificate out, and drop every connection: only a
            # handshake with the renewed certificate can bring the agent back.
            fleet.write_crl([(old.serial_number, utc_now())])
            broker.restart()
            eventually(lambda: agent.agent.link.connects >= 2, timeout=30)
        finally:
            agent.stop()
            endpoint.service.stop()
            engine.dispose()
