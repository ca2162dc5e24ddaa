"""A node's kind and recent events, and revoking a node, over the HTTP API on SQLite and
PostgreSQL; revoking with a real fleet PKI (its CRL read back) and without one."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from fastapi.testclient import TestClient

from fleet_server import enrollment
from fleet_server.api import tokens
from fleet_server.api.app import create_app
from fleet_server.schema import events, node_certificates
from provisioning.fleet_dir import FleetDir
from rpfleet import pki
from tests.fleet_server.api.conftest import bearer
from tests.fleet_server.api.fleet_data import T0, seed


@pytest.fixture(scope="module")
def fleet_pki(tmp_path_factory: pytest.TempPathFactory) -> FleetDir:
    return FleetDir.create(tmp_path_factory.mktemp("pki") / "pki")


@pytest.fixture
def seeded(engine):
    with engine.begin() as conn:
        seed(conn)
    return engine


def enroll(engine, fleet: FleetDir, node_id: str, counter: str, kind: str) -> str:
    """Enrolls ``node_id`` at hk-01's ``counter`` as ``kind``, as a technician's code does;
    returns its certificate's serial (hex)."""
    with engine.begin() as conn:
        made = enrollment.create_code(conn, fleet, site_id="hk-01", counter=counter, kind=kind,
                                      created_by="tester", ttl=dt.timedelta(hours=1),
                                      node_id=node_id)
        done = enrollment.redeem(conn, fleet, code_text=str(made.code),
                                 csr_pem=pki.make_csr(pki.new_key()).decode())
    return format(pki.load_cert(done.certificate).serial_number, "x")


def http(engine, pki_dir: Path | None = None) -> TestClient:
    return TestClient(create_app(engine, pki_dir=pki_dir))


def operator(engine, name: str = "anh.it") -> dict[str, str]:
    with engine.begin() as conn:
        return bearer(tokens.create(conn, name))


def live_certificates(engine, node_id: str) -> list[str]:
    with engine.connect() as conn:
        return [c.serial for c in enrollment.certificates(conn, node_id) if c.revoked_at is None]


def crl_serials(fleet: FleetDir) -> set[int]:
    crl = x509.load_pem_x509_crl(fleet.crl.read_bytes())
    return {entry.serial_number for entry in crl}


# ---- kind ----------------------------------------------------------------------


def test_a_node_shows_the_kind_it_last_enrolled_as(seeded, fleet_pki):
    enroll(seeded, fleet_pki, "hk-01-c1", "1", "counter")
    enroll(seeded, fleet_pki, "hk-01-c1", "1", "rating")  # the board replaced by a pad-only one
    enroll(seeded, fleet_pki, "hk-01-c2", "2", "soundbox")
    headers = operator(seeded)
    with http(seeded) as client:
        listed = client.get("/api/v1/nodes", headers=headers).json()["items"]
        one = client.get("/api/v1/nodes/hk-01-c1", headers=headers).json()
        site = client.get("/api/v1/sites/hk-01", headers=headers).json()

    assert {n["id"]: n["kind"] for n in listed} == {
        "hk-01-c1": "rating", "hk-01-c2": "soundbox",
        "hk-02-c1": None, "n-free": None, "n-gone": None,  # registered without enrollment
    }
    assert one["kind"] == "rating"
    assert {n["id"]: n["kind"] for n in site["nodes"]} == {"hk-01-c1": "rating",
                                                           "hk-01-c2": "soundbox"}


# ---- events --------------------------------------------------------------------


@pytest.fixture
def with_events(seeded):
    """hk-01-c1 gets a scan a minute after its two seeded taps (e0, e1 at T0), and a
    tap after that whose clock was not synchronised."""
    with seeded.begin() as conn:
        conn.execute(events.insert(), [
            {"node_id": "hk-01-c1", "event_id": "s1", "seq": 7, "kind": "scan",
             "at": T0 + dt.timedelta(minutes=1), "received_at": T0 + dt.timedelta(minutes=2),
             "counter": "1", "clock_synced": True,
             "detail": {"kind": "scan", "symbology": "qr", "redacted": True}},
            {"node_id": "hk-01-c1", "event_id": "t9", "seq": 9, "kind": "rating-tap",
             "at": T0 + dt.timedelta(minutes=3), "received_at": T0 + dt.timedelta(minutes=3),
             "counter": "1", "clock_synced": False, "rating": 5, "scale": 5, "suspect": False,
             "detail": {"kind": "rating-tap", "pad": "p", "rating": 5, "scale": 5}},
        ])
    return seeded


def test_a_nodes_events_come_newest_first_with_their_detail(with_events):
    with http(with_events) as client:
        page = client.get("/api/v1/nodes/hk-01-c1/events", headers=operator(with_events)).json()

    assert [e["id"] for e in page["items"]] == ["t9", "s1", "e1", "e0"]  # e1, e0: same at, by seq
    assert page["total"] == 4 and page["limit"] == 100 and page["offset"] == 0
    scan = page["items"][1]
    assert scan == {
        "id": "s1", "seq": 7, "kind": "scan", "at": "2025-03-03T08:01:00Z",
        "received_at": "2025-03-03T08:02:00Z", "clock_synced": True, "counter": "1",
        "detail": {"kind": "scan", "symbology": "qr", "redacted": True},
    }
    assert page["items"][0]["clock_synced"] is False


def test_a_nodes_events_filter_by_kind_and_come_in_pages(with_events):
    headers = operator(with_events)
    url = "/api/v1/nodes/hk-01-c1/events"
    with http(with_events) as client:
        taps = client.get(url, params={"kind": "rating-tap"}, headers=headers).json()
        first = client.get(url, params={"limit": 3}, headers=headers).json()
        rest = client.get(url, params={"limit": 3, "offset": 3}, headers=headers).json()
        too_many = client.get(url, params={"limit": 1001}, headers=headers)
        other = client.get("/api/v1/nodes/hk-02-c1/events", headers=headers).json()

    assert [e["id"] for e in taps["items"]] == ["t9", "e1", "e0"] and taps["total"] == 3
    assert [e["id"] for e in first["items"] + rest["items"]] == ["t9", "s1", "e1", "e0"]
    assert (first["total"], rest["total"]) == (4, 4)
    assert too_many.status_code == 422
    assert [e["id"] for e in other["items"]] == ["e4"], "only that node's events"


def test_events_of_a_node_without_any_are_empty_and_of_an_unknown_node_404(seeded):
    headers = operator(seeded)
    with http(seeded) as client:
        quiet = client.get("/api/v1/nodes/n-free/events", headers=headers)
        unknown = client.get("/api/v1/nodes/nobody/events", headers=headers)

    assert quiet.status_code == 200 and quiet.json()["items"] == [] and quiet.json()["total"] == 0
    assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]


# ---- revoke --------------------------------------------------------------------


def test_revoking_a_node_revokes_its_certificates_rewrites_the_crl_and_keeps_who(
        seeded, fleet_pki, caplog):
    replaced = enroll(seeded, fleet_pki, "hk-01-c1", "1", "counter")
    serial = enroll(seeded, fleet_pki, "hk-01-c1", "1", "counter")  # revokes `replaced`
    other = enroll(seeded, fleet_pki, "hk-01-c2", "2", "counter")
    caplog.set_level(logging.INFO, logger="fleet_server.revocation")

    with http(seeded, fleet_pki.path) as client:
        answer = client.post("/api/v1/nodes/hk-01-c1/revoke", json={"reason": "stolen 25/11"},
                             headers=operator(seeded, "anh.it"))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["node_id"] == "hk-01-c1" and body["revoked"] == [serial]
    assert body["by"] == "anh.it" and body["reason"] == "stolen 25/11 (by anh.it)"
    assert body["state"] == "online", "the node is not retired"
    assert "reload" in body["broker"] and "restart" in body["broker"]
    assert live_certificates(seeded, "hk-01-c1") == []
    assert live_certificates(seeded, "hk-01-c2") == [other]
    with seeded.connect() as conn:
        kept = conn.execute(sa.select(node_certificates.c.revoke_reason)
                            .where(node_certificates.c.serial == serial)).scalar_one()
    assert kept == "stolen 25/11 (by anh.it)"
    assert crl_serials(fleet_pki) >= {int(serial, 16), int(replaced, 16)}
    assert int(other, 16) not in crl_serials(fleet_pki)
    assert "node hk-01-c1: 1 certificate(s) revoked by anh.it (stolen 25/11)" in caplog.text


def test_a_node_with_no_live_certificate_is_409_and_the_crl_is_left_alone(seeded, fleet_pki):
    enroll(seeded, fleet_pki, "hk-01-c1", "1", "counter")
    headers = operator(seeded)
    with http(seeded, fleet_pki.path) as client:
        assert client.post("/api/v1/nodes/hk-01-c1/revoke", headers=headers).status_code == 200
        crl = fleet_pki.crl.read_bytes()
        again = client.post("/api/v1/nodes/hk-01-c1/revoke", headers=headers)
        never = client.post("/api/v1/nodes/n-free/revoke", headers=headers)
        unknown = client.post("/api/v1/nodes/nobody/revoke", headers=headers)

    assert again.status_code == 409 and "all 1 revoked earlier" in again.json()["detail"]
    assert never.status_code == 409 and "never enrolled" in never.json()["detail"]
    assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]
    assert fleet_pki.crl.read_bytes() == crl


def test_without_a_pki_revoking_is_409_and_nothing_is_revoked(seeded, fleet_pki, tmp_path):
    serial = enroll(seeded, fleet_pki, "hk-01-c1", "1", "counter")
    headers = operator(seeded)
    with http(seeded) as client:
        no_pki = client.post("/api/v1/nodes/hk-01-c1/revoke", headers=headers)
    with http(seeded, tmp_path / "empty") as client:
        empty = client.post("/api/v1/nodes/hk-01-c1/revoke", headers=headers)

    assert no_pki.status_code == 409
    assert "no PKI directory" in no_pki.json()["detail"]
    assert "rpfleet provision node revoke" in no_pki.json()["detail"]
    assert empty.status_code == 409 and "holds no fleet CA" in empty.json()["detail"]
    assert live_certificates(seeded, "hk-01-c1") == [serial]


def test_revoking_takes_an_operator_token_and_a_printable_reason(seeded, fleet_pki):
    serial = enroll(seeded, fleet_pki, "hk-01-c1", "1", "counter")
    with seeded.begin() as conn:
        queue = bearer(tokens.create(conn, "queue-vendor", role=tokens.QUEUE, sites=["hk-01"]))
    url = "/api/v1/nodes/hk-01-c1/revoke"
    with http(seeded, fleet_pki.path) as client:
        anonymous = client.post(url)
        integration = client.post(url, headers=queue)
        bad_reason = client.post(url, json={"reason": "a\nforged log line"},
                                 headers=operator(seeded))

    assert anonymous.status_code == 401
    assert integration.status_code == 403
    assert bad_reason.status_code == 422 and bad_reason.json()["detail"][0]["loc"] == [
        "body", "reason"]
    assert live_certificates(seeded, "hk-01-c1") == [serial]
