"""`rpfleet provision handover SITE`, run as an operator would (a subprocess), on
SQLite and PostgreSQL, and its text pinned in process."""

from __future__ import annotations

import os
import subprocess
import sys
from zoneinfo import ZoneInfo

from fleet_server import handover_store, store
from provisioning.commands.handover import render
from tests.fleet_server.test_handover_store import SITE, seed

EXPECTED = """\
Biên bản bàn giao / handover record: phuong-hang-bac — Phường Hàng Bạc (commune)
  2 node(s); times in Asia/Ho_Chi_Minh

node hb-q1 — quầy / counter 1 — online, last seen 2026-11-25 08:20
  enrolled: 2026-11-25 08:02 from 10.0.0.7 with a code made by nguyen.van.an at 2026-11-24 17:00; certificate enrolled 2026-11-25 08:02
  self-test: 2026-11-25 08:10–08:14 by Trần Thị Bình: FAILED 1/2 (1 earlier)
    PERIPHERAL  KIND        NOW       SEEN AT THE SELF-TEST
  ✓ pad-1       rating-pad  ok        ratings pressed: 1, 2, 3, 4, 5
  ✗ qr-1        scanner     missing   nothing seen in 1m
                                      note: cáp USB lỏng

node hb-q2 — quầy / counter 2 — never connected
  enrolled: code made by tran.van.binh at 2026-11-24 17:00, not used yet; no certificate
  self-test: none yet (run `rpfleet agent self-test` at the node)
  peripherals: none reported

0/2 node(s) passed their self-test; 1 without one yet
"""


def rpfleet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rpfleet", "provision", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_the_record_reads_as_a_handover_sheet(db_url):
    engine = store.connect(db_url)
    seed(engine)
    with engine.connect() as conn:
        record = handover_store.site_record(conn, SITE)
    engine.dispose()

    assert record is not None
    assert render(record, ZoneInfo("Asia/Ho_Chi_Minh")) == EXPECTED


def test_the_command_prints_the_sites_record(db_url):
    engine = store.connect(db_url)
    seed(engine)
    engine.dispose()

    done = rpfleet("handover", SITE, "--db", db_url)

    assert done.returncode == 0, done.stderr
    assert done.stdout == EXPECTED
    assert "bd-q1" not in done.stdout, "another site's node"


def test_the_database_may_come_from_the_environment(db_url):
    engine = store.connect(db_url)
    seed(engine)
    engine.dispose()

    done = rpfleet("handover", SITE, env={"RPFLEET_SERVER_DB_URL": db_url})

    assert done.returncode == 0, done.stderr
    assert "node hb-q1 — quầy / counter 1" in done.stdout


def test_an_unknown_site_is_an_error(db_url):
    store.connect(db_url).dispose()

    done = rpfleet("handover", "phuong-khong-co", "--db", db_url)

    assert done.returncode == 2
    assert done.stdout == ""
    assert "no site 'phuong-khong-co'" in done.stderr


def test_a_site_without_nodes_says_how_to_start(db_url):
    engine = store.connect(db_url)
    with engine.begin() as conn:
        store.add_site(conn, "phuong-moi", "Phường Mới", "commune")
    engine.dispose()

    done = rpfleet("handover", "phuong-moi", "--db", db_url)

    assert done.returncode == 0, done.stderr
    assert "rpfleet provision node add --site phuong-moi" in done.stdout
