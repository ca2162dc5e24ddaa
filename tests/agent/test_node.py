"""agent.node: the health snapshot of a NodeAgent that was built but not started."""

from datetime import datetime, timezone

import pytest

from agent import __version__
from agent.node import NodeAgent
from rpfleet.protocol import decode_as
from rpfleet.protocol.messages import Health, PeripheralHealth, RatingTap

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def agent(agent_settings, new_node):
    node = NodeAgent(agent_settings(new_node()))
    node.outbox.open()
    yield node
    node.outbox.close()


def test_health_of_a_fresh_agent_is_a_valid_health_message(agent):
    health = agent.health()

    assert isinstance(health, Health)
    assert Health.model_validate(health.model_dump()) == health
    assert decode_as(Health, health.to_json()) == health  # as the server reads it
    assert health.node == agent.settings.node_id
    assert health.agent_version == __version__
    assert health.at.tzinfo is not None
    assert health.uptime_s >= 0
    assert health.outbox_pending == 0
    assert health.outbox_oldest_age_s is None
    assert health.outbox_overflow == 0
    assert health.alarms == []
    assert health.clock_synced is None  # only run() asks the kernel
    assert health.peripherals == [PeripheralHealth(id="pad-1", kind="rating-pad", state="missing")]


def test_health_reports_the_machine(agent):
    health = agent.health()

    assert health.mem_total_mb is not None and health.mem_total_mb > 0
    assert health.mem_available_mb is not None
    assert health.system_uptime_s is not None and health.system_uptime_s > 0
    assert health.agent_rss_mb is not None and health.agent_rss_mb > 0
    assert health.disk_total_mb is not None and health.disk_free_mb is not None
    assert health.disk_free_mb <= health.disk_total_mb


def test_health_counts_what_waits_in_the_outbox(agent):
    for rating in (5, 4, 1):
        agent.outbox.record(RatingTap(pad="pad-1", counter="5", rating=rating, scale=5), NOW)

    health = agent.health()

    assert health.outbox_pending == 3
    assert health.outbox_oldest_age_s is not None and health.outbox_oldest_age_s >= 0
    assert health.outbox_overflow == 0
    assert decode_as(Health, health.to_json()).outbox_pending == 3


def test_health_shows_a_crashed_driver_as_failed_with_an_alarm(agent):
    pad = agent.drivers[0]

    agent._driver_crashed(pad, OSError("the pad was unplugged"))  # what supervise() calls
    health = agent.health()

    assert health.peripherals == [PeripheralHealth(
        id="pad-1", kind="rating-pad", state="failed", detail="OSError: the pad was unplugged")]
    assert health.alarms == ["driver-crashed:pad-1"]
    assert health.outbox_pending == 1  # the alarm event, waiting for the server
    assert decode_as(Health, health.to_json()) == health
