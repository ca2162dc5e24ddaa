"""agent.desired_config: what the agent does with a desired config (pure), and the
last good config and owed report it keeps on disk."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from agent.desired_config import (
    Applied, Apply, LastGood, Older, Refuse, Same, judge, overlay, starting_settings,
)
from agent.settings import AgentSettings
from rpfleet.node_config import config_version
from rpfleet.protocol.messages import ConfigDesired, ConfigReported

AT = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
PAD = {"kind": "rating-pad", "id": "pad-1", "source": "fake", "counter": "5"}


@pytest.fixture
def local(tmp_path) -> AgentSettings:
    return AgentSettings(node_id="bd-phuong-q1", state_dir=tmp_path / "state", batch_size=20,
                         live_slots=5, peripherals=[PAD])


def desired(config: dict, at: datetime = AT) -> ConfigDesired:
    return ConfigDesired(version=config_version(config), config=config, issued_at=at)


def test_a_valid_config_replaces_only_the_keys_it_holds(local):
    verdict = judge(local, desired({"health_interval": "10s", "peripherals": [{**PAD, "counter": "7"}]}), None)

    assert isinstance(verdict, Apply)
    settings = verdict.settings
    assert (settings.health_interval, settings.peripherals[0].counter) == (10, "7")
    assert (settings.node_id, settings.batch_size, settings.state_dir) == (
        "bd-phuong-q1", 20, local.state_dir)  # the node's own file for the rest


@pytest.mark.parametrize("config, reason", [
    ({"peripherals": [{**PAD, "scale": 9}]}, "peripherals.0.scale: 9: Input should be less than or equal to 5"),
    ({"live_slots": 30}, "live_slots must be below batch_size"),  # against this node's batch_size
    ({"broker": {"host": "elsewhere"}}, "broker: unknown key"),
    ({"peripherals": [{"id": "x"}]}, "peripherals.0.kind: required, one of:"),
], ids=["range", "across-keys-with-the-local-file", "not-managed", "no-kind"])
def test_an_invalid_config_is_refused_naming_the_field(local, config, reason):
    verdict = judge(local, desired(config), None)

    assert isinstance(verdict, Refuse)
    assert reason in verdict.reason


def test_a_config_whose_version_is_not_its_hash_is_refused(local):
    forged = ConfigDesired(version="0" * 64, config={"batch_size": 50}, issued_at=AT)

    assert judge(local, forged, None) == Refuse("the version is not the sha256 of the config's canonical JSON")


def test_an_older_config_is_dropped_and_the_same_one_again_is_recognised(local):
    applied = Applied(config_version({"batch_size": 50}), AT, {"batch_size": 50})

    assert judge(local, desired({"batch_size": 60}, AT - timedelta(seconds=1)), applied) == Older()
    assert judge(local, desired({"batch_size": 50}, AT + timedelta(hours=1)), applied) == Same()
    assert isinstance(judge(local, desired({"batch_size": 60}, AT + timedelta(seconds=1)), applied), Apply)


def test_the_last_good_config_and_the_owed_report_survive_on_disk(tmp_path):
    kept = LastGood(tmp_path)
    assert kept.load() is None and kept.owed() is None
    applied = Applied(config_version({"batch_size": 50}), AT, {"batch_size": 50})
    report = ConfigReported(node="bd-phuong-q1", version=applied.version, state="applied")

    kept.save(applied)
    kept.owe(report)

    again = LastGood(tmp_path)
    assert again.load() == applied
    assert again.owed() == report
    assert sorted(p.name for p in kept.dir.iterdir()) == ["applied.json", "report.json"]  # no leftovers


def test_an_unreadable_last_good_config_is_said_and_not_used(tmp_path, local, caplog):
    kept = LastGood(tmp_path)
    kept.dir.mkdir()
    kept.applied_path.write_text('{"v": 1, "version": "ab', encoding="utf-8")  # cut by a power loss

    with caplog.at_level(logging.ERROR):
        assert starting_settings(local, kept) == (local, None)
    assert "unreadable" in caplog.text


def test_the_agent_starts_from_the_last_good_config_while_it_still_fits_its_file(tmp_path, local):
    kept = LastGood(tmp_path)
    kept.save(Applied(config_version({"live_slots": 25}), AT, {"live_slots": 25}))

    assert starting_settings(local, kept) == (local, None)  # 25 slots do not fit batches of 20
    roomy = local.model_copy(update={"batch_size": 100})
    settings, applied = starting_settings(roomy, kept)
    assert settings.live_slots == 25 and applied.version == config_version({"live_slots": 25})
    assert settings == overlay(roomy, {"live_slots": 25})
