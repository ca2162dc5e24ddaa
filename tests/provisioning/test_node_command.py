"""`rpfleet provision node add|list|revoke` against a real TLS broker: a revoked
node is refused by the broker once it has re-read the CRL."""

from __future__ import annotations

import re

import pytest

from agent.identity import IdentityFiles, enroll
from fleet_server.schema import counters
from fleet_server.settings import EnrollmentSettings
from fleet_server.store import add_site, connect
from provisioning.cli import main as provision
from tests.conftest import eventually, tls_broker
from tests.fleet_server.enrollment.conftest import Endpoint
from tests.mqtt import Probe

SITE = "pv-cua-nam"


@pytest.fixture
def fleet_setup(tmp_path):
    with tls_broker(tmp_path) as broker:
        db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
        engine = connect(db)
        with engine.begin() as conn:
            add_site(conn, SITE, "Phường Cửa Nam", "commune")
            conn.execute(counters.insert(), [{"site_id": SITE, "id": c} for c in ("1", "2")])
        endpoint = Endpoint(engine, broker.fleet, EnrollmentSettings())
        endpoint.service.start()
        yield broker, db, endpoint
        endpoint.service.stop()
        engine.dispose()


def _add(db, broker, capsys, counter="1") -> str:
    assert provision(["node", "add", "--db", db, "--pki", str(broker.fleet.path), "--site", SITE,
                      "--counter", counter, "--by", "Trần Thị Bình"]) == 0
    return re.search(r"enrollment code:\s+(\S+)", capsys.readouterr().out).group(1)


def test_add_prints_a_code_and_the_command_for_the_node(fleet_setup, capsys):
    broker, db, _ = fleet_setup
    assert provision(["node", "add", "--db", db, "--pki", str(broker.fleet.path), "--site", SITE,
                      "--counter", "2", "--server-url", "https://fleet.example:8443"]) == 0
    out = capsys.readouterr().out
    code = re.search(r"enrollment code:\s+(\S+)", out).group(1)
    assert re.fullmatch(r"([0-9A-Z]{4}-){4}[0-9A-Z]{4}", code)
    assert f"rpfleet agent enroll {code} --server https://fleet.example:8443" in out
    assert "node pv-cua-nam-2: site pv-cua-nam, counter 2, kind counter" in out


@pytest.mark.parametrize("args, message", [
    (["--site", "nowhere", "--counter", "1"], "no site 'nowhere' is registered"),
    (["--site", SITE, "--counter", "9"], "has no counter '9'"),
    (["--site", SITE, "--counter", "1", "--kind", "toaster"], "no node kind 'toaster'"),
    (["--site", SITE, "--counter", "1", "--valid", "soon"], "--valid"),
], ids=["unknown-site", "unknown-counter", "unknown-kind", "bad-duration"])
def test_add_refuses_what_it_cannot_do(fleet_setup, capsys, args, message):
    broker, db, _ = fleet_setup
    assert provision(["node", "add", "--db", db, "--pki", str(broker.fleet.path), *args]) == 2
    assert message in capsys.readouterr().err


def test_add_without_a_pki_says_how_to_make_one(fleet_setup, tmp_path, capsys, monkeypatch):
    _, db, _ = fleet_setup
    monkeypatch.delenv("RPFLEET_SERVER_ENROLLMENT__PKI_DIR", raising=False)
    assert provision(["node", "add", "--db", db, "--site", SITE, "--counter", "1"]) == 1
    assert "pass --pki DIR" in capsys.readouterr().err
    assert provision(["node", "add", "--db", db, "--pki", str(tmp_path / "none"),
                      "--site", SITE, "--counter", "1"]) == 1
    assert "rpfleet provision init" in capsys.readouterr().err


def test_a_revoked_node_is_refused_once_the_broker_reloads(fleet_setup, tmp_path, capsys):
    broker, db, endpoint = fleet_setup
    files = IdentityFiles.in_dir(tmp_path / "node")
    node = enroll(_add(db, broker, capsys), endpoint.url, files).node_id
    Probe(broker.host, broker.port, tls=_tls(files)).connect().close()

    assert provision(["node", "list", "--db", db, "--pki", str(broker.fleet.path), "--site", SITE]) == 0
    listing = capsys.readouterr().out
    assert re.search(rf"{node}\s+{SITE}\s+1\s+certificate\s+valid", listing)
    assert re.search(rf"{node}\s+{SITE}\s+1\s+code\s+used .*Trần Thị Bình", listing)

    assert provision(["node", "revoke", node, "--db", db, "--pki", str(broker.fleet.path),
                      "--reason", "stolen", "--reload", f"kill -HUP {broker.pid}"]) == 0
    assert f"{node} is refused from now on" in capsys.readouterr().out

    def refused() -> bool:
        try:
            Probe(broker.host, broker.port, tls=_tls(files)).connect().close()
        except ConnectionRefusedError:
            return True
        return False

    eventually(refused, timeout=15)
    assert provision(["node", "list", "--db", db, "--pki", str(broker.fleet.path)]) == 0
    assert re.search(rf"{node}.*certificate\s+revoked.*stolen", capsys.readouterr().out)
    assert provision(["node", "revoke", node, "--db", db, "--pki", str(broker.fleet.path)]) == 2
    assert "no certificate that is not revoked already" in capsys.readouterr().err


def _tls(files: IdentityFiles):
    from tests.mqtt import TlsFiles

    return TlsFiles(files.ca, files.cert, files.key)
