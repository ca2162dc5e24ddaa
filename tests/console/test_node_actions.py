"""The console against the real server: the kind filter, a node's recent events, and
revoking a node (asked first; no means nothing happens)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from textual.widgets import DataTable

from fleet_server import enrollment, store
from fleet_server.schema import events
from rpfleet import pki
from rpfleet.console import view
from rpfleet.console.detail import NodeScreen
from rpfleet.console.screens import NodesScreen, OverviewScreen
from rpfleet.console.widgets import Confirm
from tests.console.conftest import loaded, until
from tests.console.test_commands import open_node, pick
from tests.console.test_flows import rows, text_of
from tests.fleet_server.api import fleet_data


def enroll(fleet, broker, node_id: str, counter: str, kind: str) -> str:
    """Enrolls ``node_id`` at hk-01's ``counter`` as ``kind`` with the broker's fleet CA, as
    a technician's code does; returns its certificate's serial (hex)."""
    engine = store.connect(fleet.db_url)
    with engine.begin() as conn:
        made = enrollment.create_code(conn, broker.fleet, site_id="hk-01", counter=counter,
                                      kind=kind, created_by="tester",
                                      ttl=dt.timedelta(hours=1), node_id=node_id)
        done = enrollment.redeem(conn, broker.fleet, code_text=str(made.code),
                                 csr_pem=pki.make_csr(pki.new_key()).decode())
    engine.dispose()
    return format(pki.load_cert(done.certificate).serial_number, "x")


def live_certificates(fleet, node_id: str) -> list[str]:
    engine = store.connect(fleet.db_url)
    with engine.connect() as conn:
        found = [c.serial for c in enrollment.certificates(conn, node_id) if c.revoked_at is None]
    engine.dispose()
    return found


async def test_the_node_table_filters_by_kind(console, seeded_fleet, broker):
    enroll(seeded_fleet, broker, "hk-01-c1", "1", "rating")
    enroll(seeded_fleet, broker, "hk-01-c2", "2", "soundbox")
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, OverviewScreen)
        await pilot.press("n")
        nodes = await loaded(pilot, NodesScreen)
        table = nodes.query_one("#nodes", DataTable)

        await pilot.press("slash", *"kind:sound")
        assert rows(table) == ["hk-01-c2"]
        nodes.set_filter("kind:rating")
        await pilot.pause()
        assert rows(table) == ["hk-01-c1"]
        nodes.set_filter("kind:kiosk")
        await pilot.pause()
        assert rows(table) == []
        nodes.set_filter("soundbox")  # a plain word finds the kind too
        await pilot.pause()
        assert rows(table) == ["hk-01-c2"]

        await pilot.press("enter", "enter")
        detail = await loaded(pilot, NodeScreen)
        assert "soundbox" in text_of(detail, "#node-status")


async def test_the_node_screen_shows_its_recent_events_newest_first(console, seeded_fleet):
    engine = store.connect(seeded_fleet.db_url)
    with engine.begin() as conn:
        conn.execute(events.insert(), [{
            "node_id": "hk-01-c1", "event_id": "s1", "seq": 7, "kind": "scan",
            "at": fleet_data.T0 + dt.timedelta(minutes=1), "received_at": fleet_data.T0,
            "counter": "1", "detail": {"kind": "scan", "scanner": "sc", "code": "(redacted)",
                                       "code_kind": "citizen-id", "redacted": True},
        }])
    engine.dispose()
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        detail = await open_node(pilot, "hk-01-c1")
        table = detail.query_one("#node-events", DataTable)

        assert rows(table) == ["s1", "e1", "e0"]  # newest first; e1, e0 by sequence
        assert [str(c) for c in table.get_row("s1")] == [
            "9 min", "scan", "1", "citizen-id (redacted)"]
        assert str(table.get_cell("e0", "detail")) == "5/5"
        assert str(table.border_subtitle) == "3 newest"


async def test_revoke_asks_first_and_no_means_nothing_happens(console, seeded_fleet, broker):
    serial = enroll(seeded_fleet, broker, "hk-01-c1", "1", "counter")
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_node(pilot, "hk-01-c1")
        await pick(pilot, "revoke")  # last in the x list, after reboot
        question = await until(pilot, lambda: isinstance(app.screen, Confirm) and app.screen,
                               "the confirmation")
        assert question.question.startswith("revoke hk-01-c1?")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is detail, "back on the node")
        assert live_certificates(seeded_fleet, "hk-01-c1") == [serial]

        await pilot.press("R")  # its shortcut
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation again")
        await pilot.press("y")
        await until(pilot, lambda: not live_certificates(seeded_fleet, "hk-01-c1"),
                    "the certificate revoked")
        status = await until(pilot, lambda: "revoked" in text_of(detail, "#node-status")
                             and text_of(detail, "#node-status"), "the result on the node")
        assert "1 certificate(s) by console, CRL rewritten" in status
        crl = x509.load_pem_x509_crl(broker.fleet.crl.read_bytes())
        assert int(serial, 16) in {entry.serial_number for entry in crl}


async def test_revoking_a_node_that_never_enrolled_says_why(console, seeded_fleet):
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        detail = await open_node(pilot, "hk-02-c1")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: any("never enrolled" in n.message
                                       for n in app._notifications), "the refusal shown")
        assert "revoked" not in text_of(detail, "#node-status")


@pytest.mark.parametrize(("detail", "shown"), [
    ({"kind": "rating-tap", "pad": "p", "rating": 2, "scale": 5}, "2/5"),
    ({"kind": "rating-tap", "rating": 5, "scale": 5, "suspect": "burst"}, "5/5 suspect: burst"),
    ({"kind": "scan", "code": "079203001234", "symbology": "qr"}, "qr"),  # never the code
    ({"kind": "peripheral-detached", "peripheral": "pad-1", "peripheral_kind": "rating-pad"},
     "rating-pad pad-1"),
    ({"kind": "alarm", "code": "disk", "severity": "warning", "message": "90 % full",
      "cleared": True}, "warning disk: 90 % full (cleared)"),
    ({"kind": "announcement", "announce_kind": "queue-call", "ticket": "1023",
      "outcome": "played", "soundbox": "sb"}, "queue-call 1023 played"),
    ({"kind": "ticket", "number": "A012", "outcome": "failed", "reason": "paper-out"},
     "A012 failed paper-out"),
    ({"kind": "browser-repair", "step": "reload", "trouble": "hung"}, "reload (hung)"),
    ({"kind": "new-kind", "a": 1, "nested": {"x": 1}}, "a=1"),
])
def test_an_events_detail_is_one_short_line(detail, shown):
    assert view.event_text(detail) == shown
