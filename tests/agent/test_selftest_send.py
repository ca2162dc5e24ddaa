"""Sending handover records through the real broker to the real server: confirmed only
by the server's ack, kept on disk until then, and harmless to a running agent."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from agent.selftest import Outcome, handover, plan
from agent.selftest_send import (
    confirms,
    load_pending,
    pending_path,
    save_pending,
    send,
    send_all,
)
from devices.rating_pad import RatingPadConfig
from fleet_server.schema import handovers
from provisioning.mosquitto import free_port
from rpfleet.protocol.messages import Ack
from tests.conftest import eventually
from tests.servers import start_server  # noqa: F401 - fixture
from tests.system.helpers import outbox_ids, stored_events

AT = datetime(2026, 11, 25, 8, 10, tzinfo=timezone(timedelta(hours=7)))


def a_record(node: str, technician: str = "Trần Thị Bình"):
    steps = plan([RatingPadConfig(id="pad-1", source="fake", scale=3)])
    return handover(node, steps, [Outcome(True, "ratings pressed: 1, 2, 3")], technician=technician,
                    started_at=AT, finished_at=AT + timedelta(minutes=2), agent_version="0.1.0")


def stored(engine, node: str) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(handovers).where(handovers.c.node_id == node)))


async def test_a_record_sent_twice_is_confirmed_twice_and_stored_once(server, new_node, agent_settings):
    node = new_node()
    settings = agent_settings(node)
    record = a_record(node)

    first = await send(settings, record, timeout=10)
    second = await send(settings, record, timeout=10)

    assert (first.confirmed, first.detail) == (True, "confirmed by the server")
    assert second.confirmed
    [row] = stored(server.engine, node)
    assert (row.handover_id, row.technician, row.passed) == (record.handover_id, "Trần Thị Bình", True)


async def test_without_a_server_nothing_is_confirmed_and_a_resend_delivers_it(
    broker, start_server, db_url, new_node, agent_settings  # noqa: F811 - fixture
):
    node = new_node()
    settings = agent_settings(node)
    older, record = a_record(node, "Lê Văn Cường"), a_record(node)

    sent = await send_all(settings, [older, record], timeout=1)

    assert sent.confirmed == []
    assert sent.waiting == [older, record]
    assert sent.detail == "the server did not confirm within 1s"
    assert load_pending(pending_path(settings)) == [older, record]

    fleet = start_server(db_url)
    resent = await send_all(settings, load_pending(pending_path(settings)), timeout=10)

    assert resent.confirmed == [older, record] and resent.waiting == []
    assert not pending_path(settings).exists()
    assert {row.handover_id for row in stored(fleet.engine, node)} == {older.handover_id,
                                                                       record.handover_id}


async def test_an_unreachable_broker_is_said_plainly_and_the_record_kept(new_node, agent_settings):
    node = new_node()
    settings = agent_settings(node, port=free_port())  # nothing listens there
    record = a_record(node)

    sent = await send_all(settings, [record], timeout=1)

    assert sent.waiting == [record]
    assert sent.detail.startswith("could not reach the broker at 127.0.0.1:")
    assert load_pending(pending_path(settings)) == [record]


async def test_a_running_agent_keeps_its_session_and_ignores_the_handovers_ack(
    server, running_agent, new_node, agent_settings
):
    node = new_node()
    runner = running_agent(node)
    eventually(lambda: runner.agent.link.connected)
    settings = agent_settings(node)

    delivery = await send(settings, a_record(node), timeout=10)

    assert delivery.confirmed
    pad = runner.agent.drivers[0]
    runner.call(lambda: pad.adapter.press("KEY_KP4"))
    eventually(lambda: [e.rating for e in stored_events(server, node) if e.kind == "rating-tap"] == [4])
    eventually(lambda: outbox_ids(settings.state_dir) == [])
    assert runner.agent.link.connects == 1, "the self-test's connection did not take the agent's session"
    assert runner.agent.health().alarms == []


def test_only_an_ack_naming_the_record_confirms_it():
    check = confirms("ab" * 16)

    assert check(Ack(ids=["cd" * 16, "ab" * 16]).to_json())
    assert not check(Ack(ids=["cd" * 16]).to_json())
    assert not check(b'{"v": "1.3", "ids": "ab"}')
    assert not check(b"\xff")


def test_the_pending_file_round_trips_and_empties_itself(tmp_path):
    path = tmp_path / "state" / "handover-pending.json"
    records = [a_record("bd-phuong-q1"), a_record("bd-phuong-q1", "Phạm Thu")]

    save_pending(path, records)
    assert load_pending(path) == records
    assert "Phạm Thu" in path.read_text(encoding="utf-8"), "readable as it is"
    assert not path.with_name(path.name + ".tmp").exists()

    save_pending(path, [])
    assert not path.exists()
    assert load_pending(path) == []


def test_a_damaged_pending_file_is_named(tmp_path):
    path = tmp_path / "handover-pending.json"
    path.write_text(json.dumps([{"v": "1.3", "node": "x"}]), encoding="utf-8")

    with pytest.raises(ValueError, match="handover-pending.json does not hold handover records"):
        load_pending(path)


async def test_a_record_that_cannot_be_saved_says_so(new_node, agent_settings, tmp_path):
    node = new_node()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("", encoding="utf-8")
    settings = agent_settings(node, port=free_port(), state_dir=blocked)

    sent = await send_all(settings, [a_record(node)], timeout=0.5)

    assert len(sent.waiting) == 1
    assert sent.unsaved is not None and sent.unsaved.startswith(f"cannot write {blocked}/")


def test_an_unreadable_pending_file_is_named(tmp_path):
    path = tmp_path / "handover-pending.json"
    path.mkdir()

    with pytest.raises(ValueError, match=f"cannot read {path}"):
        load_pending(path)
