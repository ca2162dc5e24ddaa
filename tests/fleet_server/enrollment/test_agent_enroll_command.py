"""`rpfleet agent enroll` as a technician runs it, and the renewal loop of a running agent."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from agent.cli import main as agent_main
from agent.identity import IdentityFiles
from agent.renewal import CertificateRenewal, renewal_due
from agent.settings import load_settings
from rpfleet import pki
from tests.fleet_server.enrollment.conftest import SITE


def _enroll(code, endpoint, tmp_path, *extra: str) -> int:
    return agent_main([
        "enroll", str(code), "--server", endpoint.url, "--site", SITE,
        "--dir", str(tmp_path / "etc"), "--config", str(tmp_path / "etc" / "agent.toml"),
        "--state-dir", str(tmp_path / "state"), *extra,
    ])


def test_enroll_writes_an_identity_and_a_valid_config(endpoint, make_code, tmp_path, capsys):
    made = make_code("2")

    assert _enroll(made.code, endpoint, tmp_path) == 0

    out = capsys.readouterr().out
    assert f"Đã đăng ký: nút {made.node_id}" in out and f"Enrolled: node {made.node_id}" in out
    settings = load_settings(tmp_path / "etc" / "agent.toml")
    assert settings.node_id == made.node_id
    assert settings.broker.tls is not None and settings.broker.tls.key_file == tmp_path / "etc" / "node.key"
    assert (settings.broker.host, settings.broker.port) == ("127.0.0.1", 8883)
    assert settings.enrollment_url == endpoint.url
    assert [(p.kind, p.counter) for p in settings.peripherals] == [("rating-pad", "2"), ("scanner", "2")]
    assert agent_main(["check-config", "--config", str(tmp_path / "etc" / "agent.toml")]) == 0


def test_an_enrolled_node_is_not_enrolled_again_by_accident(endpoint, make_code, tmp_path, capsys):
    assert _enroll(make_code().code, endpoint, tmp_path) == 0
    key_before = (tmp_path / "etc" / "node.key").read_bytes()
    second = make_code()

    assert _enroll(second.code, endpoint, tmp_path) == 1
    err = capsys.readouterr().err
    assert "đã được đăng ký" in err and "--force" in err
    assert (tmp_path / "etc" / "node.key").read_bytes() == key_before

    assert _enroll(second.code, endpoint, tmp_path, "--force") == 0
    assert (tmp_path / "etc" / "node.key").read_bytes() != key_before


def test_a_refused_enrollment_says_so_in_both_languages(endpoint, make_code, tmp_path, capsys):
    made = make_code()
    assert _enroll(made.code, endpoint, tmp_path) == 0
    capsys.readouterr()

    assert _enroll(made.code, endpoint, tmp_path / "other") == 1
    err = capsys.readouterr().err
    assert "đăng ký không thành công" in err and "used already" in err
    assert not (tmp_path / "other").exists()


def test_the_running_agent_renews_a_certificate_about_to_expire(endpoint, fleet, engine, tmp_path):
    files = IdentityFiles.in_dir(tmp_path / "etc")
    key = pki.new_key()
    # Issued 340 days ago for 365: 25 days left, inside the 30-day margin.
    short = fleet.sign(key.public_key(), "pv-bach-dang-1", now=pki.utcnow() - dt.timedelta(days=340))
    files.write(key=key, cert_pem=pki.cert_pem(short), ca_pem=fleet.ca_cert.read_bytes())
    _record(engine, short)
    assert renewal_due(files)
    renewed = asyncio.Event()

    async def run() -> None:
        stop = asyncio.Event()
        renewal = CertificateRenewal(endpoint.url, files, on_renewed=renewed.set)
        task = asyncio.create_task(renewal.run(stop))
        await asyncio.wait_for(renewed.wait(), timeout=30)
        stop.set()
        await task

    asyncio.run(run())
    assert not renewal_due(files)
    assert pki.same_key(pki.load_cert(files.cert.read_bytes()), pki.load_key(files.key.read_bytes()))


def _record(engine, cert) -> None:
    """Register a certificate the test made directly, as enrollment would have."""
    from fleet_server import enrollment
    from fleet_server.store import utc_now

    with engine.begin() as conn:
        enrollment.record_certificate(conn, pki.common_name(cert), cert, "enrolled", utc_now())
