"""Enrollment over real HTTPS: the node's client (agent.identity) against the
server's endpoint, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import pytest
import sqlalchemy as sa

from agent.identity import EnrollError, enroll, fetch_ca
from fleet_server import enrollment
from fleet_server.schema import enrollment_codes, enrollment_failures, node_certificates, nodes
from provisioning.fleet_dir import FleetDir
from rpfleet import pki
from rpfleet.enrollment_code import new_code, parse_code
from tests.fleet_server.enrollment.conftest import OTHER_SITE, SITE


def failures(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(r.source, r.reason) for r in conn.execute(
            sa.select(enrollment_failures).order_by(enrollment_failures.c.id))]


def test_a_good_code_gives_the_node_a_certificate_for_its_own_key(endpoint, make_code, node_dir, engine, fleet):
    made = make_code("2")

    answer = enroll(str(made.code), endpoint.url, node_dir, site=SITE, hostname="pi-test")

    cert = pki.load_cert(node_dir.cert.read_bytes())
    key = pki.load_key(node_dir.key.read_bytes())
    assert answer.node_id == made.node_id == f"{SITE}-2"
    assert (answer.site_id, answer.counter, answer.kind) == (SITE, "2", "counter")
    assert pki.common_name(cert) == made.node_id and pki.same_key(cert, key)
    pki.check_issued(pki.load_cert(fleet.ca_cert.read_bytes()), cert)
    assert node_dir.ca.read_bytes() == fleet.ca_cert.read_bytes()
    assert node_dir.key.stat().st_mode & 0o777 == 0o600
    assert (answer.broker.host, answer.broker.port) == ("127.0.0.1", 8883)
    assert [p["kind"] for p in answer.peripherals] == ["rating-pad", "scanner"]
    with engine.connect() as conn:
        placed = conn.execute(sa.select(nodes.c.site_id, nodes.c.counter).where(nodes.c.id == made.node_id)).one()
        stored = conn.execute(sa.select(node_certificates)).one()
        used = conn.execute(sa.select(enrollment_codes.c.used_at)).scalar_one()
    assert tuple(placed) == (SITE, "2")
    assert stored.serial == format(cert.serial_number, "x") and stored.revoked_at is None
    assert used is not None
    assert failures(engine) == []


def test_a_used_code_is_refused(endpoint, make_code, node_dir, tmp_path, engine):
    from agent.identity import IdentityFiles

    made = make_code()
    enroll(str(made.code), endpoint.url, node_dir)

    with pytest.raises(EnrollError, match=r"used already.*\(used\)"):
        enroll(str(made.code), endpoint.url, IdentityFiles.in_dir(tmp_path / "second"))
    assert not (tmp_path / "second" / "node.key").exists()
    assert failures(engine) == [("127.0.0.1", "used")]


def test_an_expired_code_is_refused(endpoint, make_code, node_dir, engine):
    made = make_code(now=enrollment.store.utc_now() - dt.timedelta(hours=25), ttl_s=24 * 3600)

    with pytest.raises(EnrollError, match=r"expired"):
        enroll(str(made.code), endpoint.url, node_dir)
    assert not node_dir.key.exists()
    assert failures(engine) == [("127.0.0.1", "expired")]


def test_a_code_for_another_site_is_refused_and_stays_usable(endpoint, make_code, node_dir, engine):
    made = make_code(site=OTHER_SITE)

    with pytest.raises(EnrollError, match=r"another site.*wrong_site"):
        enroll(str(made.code), endpoint.url, node_dir, site=SITE)
    assert failures(engine) == [("127.0.0.1", "wrong_site")]

    answer = enroll(str(made.code), endpoint.url, node_dir, site=OTHER_SITE)
    assert answer.site_id == OTHER_SITE


def test_guessing_is_bounded_per_address(endpoint, make_code, node_dir, engine, fleet, endpoint_settings):
    made = make_code()
    guesses = [new_code(fleet.ca_fingerprint()) for _ in range(endpoint_settings.max_failures)]
    for guess in guesses:
        with pytest.raises(EnrollError, match=r"no such enrollment code"):
            enroll(str(guess), endpoint.url, node_dir)

    with pytest.raises(EnrollError, match=r"too many failed attempts.*rate_limited"):
        enroll(str(made.code), endpoint.url, node_dir)
    assert [reason for _, reason in failures(engine)] == ["unknown_code"] * endpoint_settings.max_failures
    with engine.connect() as conn:
        assert conn.execute(sa.select(enrollment_codes.c.used_at)).scalar_one() is None


def test_old_failures_stop_counting(engine, endpoint_settings):
    long_ago = enrollment.store.utc_now() - dt.timedelta(seconds=endpoint_settings.failure_window + 1)
    with engine.begin() as conn:
        for _ in range(endpoint_settings.max_failures):
            enrollment.record_failure(conn, "10.0.0.9", enrollment.Refused("unknown_code", "x"), now=long_ago)
        enrollment.check_rate(conn, "10.0.0.9", endpoint_settings)  # does not raise
        enrollment.record_failure(conn, "10.0.0.9", enrollment.Refused("unknown_code", "x"))
        for _ in range(endpoint_settings.max_failures - 1):
            enrollment.record_failure(conn, "10.0.0.9", enrollment.Refused("unknown_code", "x"))
        with pytest.raises(enrollment.Refused, match="too many"):
            enrollment.check_rate(conn, "10.0.0.9", endpoint_settings)
        enrollment.check_rate(conn, "10.0.0.10", endpoint_settings)  # another address still may


def test_a_fleet_wide_flood_pauses_enrollment(engine):
    from fleet_server.settings import EnrollmentSettings

    limits = EnrollmentSettings(max_failures=100, fleet_max_failures=20)
    with engine.begin() as conn:
        for n in range(20):
            enrollment.record_failure(conn, f"10.0.{n}.1", enrollment.Refused("unknown_code", "x"))
        with pytest.raises(enrollment.Refused, match="paused"):
            enrollment.check_rate(conn, "192.0.2.1", limits)


def test_a_server_without_the_pinned_ca_gets_nothing(endpoint, node_dir, engine, tmp_path):
    """The code pins another CA: the node stops after fetching the CA and sends no CSR."""
    other = FleetDir.create(tmp_path / "impostor-pki")
    code = new_code(other.ca_fingerprint())

    with pytest.raises(EnrollError, match=r"does not hold the fleet CA this code was made for"):
        enroll(str(code), endpoint.url, node_dir)
    assert not node_dir.directory.exists()
    assert failures(engine) == []  # nothing reached the enrollment route


def test_a_code_for_another_fleet_is_refused_by_the_server(endpoint, engine, tmp_path):
    """Sent straight to the route (a node would have stopped first), the server refuses it too."""
    other = FleetDir.create(tmp_path / "other-pki")
    body = {"code": str(new_code(other.ca_fingerprint())), "csr": pki.make_csr(pki.new_key()).decode()}
    answer = _post_json(endpoint, "/v1/enroll", body)
    assert answer == (403, "wrong_fleet")
    assert failures(engine) == [("127.0.0.1", "wrong_fleet")]


@pytest.mark.parametrize("body, reason", [
    ({"code": "AAAA", "csr": "x"}, "malformed"),
    ({"csr": "x"}, None),
], ids=["short-code", "no-code"])
def test_malformed_requests_get_a_clear_400(endpoint, body, reason):
    status, got = _post_json(endpoint, "/v1/enroll", body)
    assert status in (400, 422)
    if reason:
        assert got == reason


def test_a_bad_csr_is_refused_and_the_code_stays_usable(endpoint, make_code, engine, node_dir):
    made = make_code()
    status, reason = _post_json(endpoint, "/v1/enroll", {"code": str(made.code), "csr": "not a csr"})
    assert (status, reason) == (400, "bad_csr")
    assert enroll(str(made.code), endpoint.url, node_dir).node_id == made.node_id


def test_re_enrolling_a_wiped_node_gives_a_new_identity_and_revokes_the_old(
    endpoint, make_code, tmp_path, engine, fleet
):
    from agent.identity import IdentityFiles
    from cryptography import x509

    first_dir, second_dir = IdentityFiles.in_dir(tmp_path / "first"), IdentityFiles.in_dir(tmp_path / "wiped")
    enroll(str(make_code("3").code), endpoint.url, first_dir)
    enroll(str(make_code("3").code), endpoint.url, second_dir)

    first = pki.load_cert(first_dir.cert.read_bytes())
    second = pki.load_cert(second_dir.cert.read_bytes())
    assert pki.common_name(first) == pki.common_name(second) == f"{SITE}-3"
    assert first.serial_number != second.serial_number
    assert first_dir.key.read_bytes() != second_dir.key.read_bytes()
    crl = x509.load_pem_x509_crl(fleet.crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(first.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(second.serial_number) is None
    assert endpoint.crl_rewrites == 1


def test_the_ca_route_serves_the_fleet_ca(endpoint, fleet):
    assert fetch_ca(endpoint.url) == fleet.ca_cert.read_bytes()


def test_typed_codes_are_read_forgivingly(endpoint, make_code, node_dir):
    made = make_code()
    typed = str(made.code).lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert parse_code(typed) == made.code
    assert enroll(typed, endpoint.url, node_dir).node_id == made.node_id


def test_only_the_hash_of_a_code_is_stored(make_code, engine):
    made = make_code()
    with engine.connect() as conn:
        stored = conn.execute(sa.select(enrollment_codes)).one()
    assert made.code.secret not in json.dumps([str(v) for v in stored])
    assert stored.secret_hash == made.code.secret_hash()


def _post_json(endpoint, path: str, body: dict) -> tuple[int, str | None]:
    import ssl
    import urllib.error

    context = ssl.create_default_context(cafile=None)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(
        endpoint.url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        payload = json.loads(exc.read() or b"{}")
        return exc.code, payload.get("reason")


# ---- renewal -------------------------------------------------------------

def test_a_node_renews_with_its_current_certificate(endpoint, make_code, node_dir, engine, fleet):
    from agent.identity import renew

    enroll(str(make_code().code), endpoint.url, node_dir)
    old_cert = pki.load_cert(node_dir.cert.read_bytes())
    old_key = node_dir.key.read_bytes()

    renew(endpoint.url, node_dir)

    new_cert = pki.load_cert(node_dir.cert.read_bytes())
    assert node_dir.key.read_bytes() != old_key
    assert pki.same_key(new_cert, pki.load_key(node_dir.key.read_bytes()))
    assert pki.common_name(new_cert) == pki.common_name(old_cert)
    assert new_cert.serial_number != old_cert.serial_number
    with engine.connect() as conn:
        rows = {r.how: r for r in conn.execute(sa.select(node_certificates))}
    assert set(rows) == {"enrolled", "renewed"}
    assert rows["enrolled"].revoked_at is None  # still usable if the new one was lost in a power cut


def test_a_revoked_node_cannot_renew(endpoint, make_code, node_dir, engine):
    from agent.identity import renew

    made = make_code()
    enroll(str(made.code), endpoint.url, node_dir)
    with engine.begin() as conn:
        enrollment.revoke_certificates(conn, made.node_id, "stolen", enrollment.store.utc_now())
    before = node_dir.cert.read_bytes()

    with pytest.raises(EnrollError, match=r"revoked"):
        renew(endpoint.url, node_dir)
    assert node_dir.cert.read_bytes() == before


def test_renewal_needs_the_current_key(endpoint, make_code, node_dir, tmp_path):
    """Someone holding only the (public) certificate cannot get one for their own key."""
    from agent.identity import IdentityFiles, renew

    enroll(str(make_code().code), endpoint.url, node_dir)
    thief = IdentityFiles.in_dir(tmp_path / "thief")
    thief.write(key=pki.new_key(), cert_pem=node_dir.cert.read_bytes(), ca_pem=node_dir.ca.read_bytes())

    with pytest.raises(EnrollError, match=r"not signed by the current certificate's key"):
        renew(endpoint.url, thief)


def test_an_expired_certificate_cannot_renew(endpoint, fleet, node_dir, engine):
    from agent.identity import renew

    key = pki.new_key()
    long_ago = enrollment.store.utc_now() - dt.timedelta(days=400)
    cert = fleet.sign(key.public_key(), "pv-bach-dang-1", now=long_ago)
    node_dir.write(key=key, cert_pem=pki.cert_pem(cert), ca_pem=fleet.ca_cert.read_bytes())

    with pytest.raises(EnrollError, match=r"expired; enroll the node again"):
        renew(endpoint.url, node_dir)
