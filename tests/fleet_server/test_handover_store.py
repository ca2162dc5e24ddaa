"""Handover records stored and read back per site, with the site's nodes, peripherals
and enrollment (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from fleet_server import handover_store, store
from fleet_server.schema import enrollment_codes, handovers, node_certificates
from rpfleet.protocol.messages import Handover, HandoverResult

HANOI = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=HANOI)
SITE = "phuong-hang-bac"


def a_handover(node: str, handover_id: str, started: datetime, *passed: bool,
               technician: str | None = "Trần Thị Bình") -> Handover:
    results = [
        HandoverResult(peripheral="pad-1", kind="rating-pad", passed=passed[0],
                       seen="ratings pressed: 1, 2, 3, 4, 5" if passed[0] else "nothing seen in 1m"),
        HandoverResult(peripheral="qr-1", kind="scanner", passed=passed[1],
                       seen="read a ihanoi-booking code IHN-20261125-000731" if passed[1]
                       else "nothing seen in 1m", note=None if passed[1] else "cáp USB lỏng"),
    ]
    return Handover(handover_id=handover_id, node=node, technician=technician, started_at=started,
                    finished_at=started + timedelta(minutes=4), results=results)


def seed(engine: sa.Engine) -> None:
    """Phường Hàng Bạc: counter 1 enrolled, tested twice; counter 2 has only a code.
    Another site's node must not show."""
    utc = timezone.utc
    with engine.begin() as conn:
        store.add_site(conn, SITE, "Phường Hàng Bạc", "commune")
        store.add_site(conn, "phuong-ba-dinh", "Phường Ba Đình", "commune")
        store.assign_node(conn, "hb-q1", SITE, "1")
        store.assign_node(conn, "bd-q1", "phuong-ba-dinh", "1")
        store.update_node(conn, "hb-q1", state="online", last_seen=(T0 + timedelta(minutes=20)).astimezone(utc))
        store.sync_peripherals(conn, "hb-q1", [
            {"id": "pad-1", "kind": "rating-pad", "state": "ok"},
            {"id": "qr-1", "kind": "scanner", "state": "missing", "detail": "unplugged"},
        ], (T0 + timedelta(minutes=15)).astimezone(utc))
        for node, counter, by, used in (("hb-q1", "1", "nguyen.van.an", T0 + timedelta(minutes=2)),
                                        ("hb-q2", "2", "tran.van.binh", None),
                                        ("bd-q1", "1", "someone.else", T0)):
            conn.execute(enrollment_codes.insert().values(
                secret_hash=f"{node:0<64}"[:64], node_id=node,
                site_id=SITE if node.startswith("hb") else "phuong-ba-dinh",
                counter=counter, kind="counter", created_by=by,
                created_at=(T0 - timedelta(hours=15)).astimezone(utc),
                expires_at=(T0 + timedelta(hours=9)).astimezone(utc),
                used_at=used.astimezone(utc) if used else None, used_from="10.0.0.7" if used else None,
            ))
        conn.execute(node_certificates.insert().values(
            serial="1a2b", node_id="hb-q1", fingerprint="f" * 64,
            issued_at=(T0 + timedelta(minutes=2)).astimezone(utc),
            not_after=(T0 + timedelta(days=90)).astimezone(utc), how="enrolled",
        ))
        assert handover_store.insert(conn, a_handover("hb-q1", "a" * 32, T0 + timedelta(minutes=5),
                                                      False, False), T0 + timedelta(minutes=9))
        assert handover_store.insert(conn, a_handover("hb-q1", "b" * 32, T0 + timedelta(minutes=10),
                                                      True, False), T0 + timedelta(minutes=14))
        assert handover_store.insert(conn, a_handover("bd-q1", "c" * 32, T0, True, True), T0)


@pytest.fixture
def engine(db_url: str):
    engine = store.connect(db_url)
    seed(engine)
    yield engine
    engine.dispose()


def test_a_handover_is_stored_once_with_the_nodes_site(engine):
    again = a_handover("hb-q1", "b" * 32, T0, True, True)
    with engine.begin() as conn:
        assert not handover_store.insert(conn, again, T0 + timedelta(hours=1))
        rows = list(conn.execute(sa.select(handovers).where(handovers.c.node_id == "hb-q1")
                                 .order_by(handovers.c.id)))

    assert [(r.handover_id, r.site_id, r.passed) for r in rows] == [
        ("a" * 32, SITE, False), ("b" * 32, SITE, False)
    ]
    assert rows[1].results[1] == {"peripheral": "qr-1", "kind": "scanner", "passed": False,
                                  "seen": "nothing seen in 1m", "note": "cáp USB lỏng"}


def test_a_node_not_yet_placed_is_stored_without_a_site(engine):
    with engine.begin() as conn:
        assert handover_store.insert(conn, a_handover("new-node", "d" * 32, T0, True, True), T0)
        site = conn.execute(sa.select(handovers.c.site_id)
                            .where(handovers.c.handover_id == "d" * 32)).scalar_one()
    assert site is None


def test_the_site_record_holds_each_node_its_peripherals_newest_handover_and_enrollment(engine):
    with engine.connect() as conn:
        record = handover_store.site_record(conn, SITE)

    assert record is not None
    assert (record.site_id, record.name, record.kind) == (SITE, "Phường Hàng Bạc", "commune")
    assert [(n.node_id, n.counter, n.state) for n in record.nodes] == [
        ("hb-q1", "1", "online"), ("hb-q2", "2", None)
    ]
    first, second = record.nodes
    assert [(p.id, p.state, p.detail) for p in first.peripherals] == [
        ("pad-1", "ok", None), ("qr-1", "missing", "unplugged")
    ]
    assert first.handover is not None
    assert (first.handover.handover_id, first.handover.technician, first.handover.passed) == (
        "b" * 32, "Trần Thị Bình", False
    )
    assert first.handover.started_at == T0 + timedelta(minutes=10)
    assert first.handovers == 2
    assert [r["passed"] for r in first.handover.results] == [True, False]
    e = first.enrollment
    assert (e.code_by, e.code_used_at, e.code_used_from) == (
        "nguyen.van.an", T0 + timedelta(minutes=2), "10.0.0.7"
    )
    assert (e.certificate_issued_at, e.certificate_how, e.certificate_revoked_at) == (
        T0 + timedelta(minutes=2), "enrolled", None
    )
    assert second.handover is None and second.peripherals == []
    assert (second.enrollment.code_by, second.enrollment.code_used_at) == ("tran.van.binh", None)


def test_an_unknown_site_has_no_record(engine):
    with engine.connect() as conn:
        assert handover_store.site_record(conn, "no-such-site") is None


def test_a_site_without_nodes_has_an_empty_record(engine):
    with engine.begin() as conn:
        store.add_site(conn, "phuong-moi", "Phường Mới", "commune")
        record = handover_store.site_record(conn, "phuong-moi")

    assert record is not None and record.nodes == []
