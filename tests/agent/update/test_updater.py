"""The updater end to end on tiny releases: real files, links and journal in a temp dir."""

from __future__ import annotations

import subprocess
from datetime import timezone
from pathlib import Path

import pytest

from agent.update.proof import ProofRecorder
from agent.update.settings import StateTimeouts, UpdateSettings
from agent.update.updater import Updater
from tests.agent.update.tiny import (
    NODE, Clock, FakeNode, RecordingRestart, TinyArtifacts, installed_node, tiny_artifact)


class Node:
    """One node's disk (prefix + state dir) and the agent processes that run on it."""

    def __init__(self, tmp_path: Path, **settings) -> None:
        self.prefix = tmp_path / "opt"
        self.state = tmp_path / "state"
        self.prefix.mkdir()
        self.store = installed_node(self.prefix, "1.0.0")
        self.settings = UpdateSettings(prefix=self.prefix, timeouts=StateTimeouts(proving=120), **settings)
        self.clock = Clock()
        self.probe = FakeNode()
        self.restart = RecordingRestart()
        self.artifacts = tmp_path / "artifacts"
        self.artifacts.mkdir()

    def agent(self) -> Updater:
        """The agent as systemd starts it: running what ``current`` names."""
        return Updater(node_id=NODE, state_dir=self.state, settings=self.settings, running=self.store.current(),
                       artifacts=TinyArtifacts(), node=self.probe, restarter=self.restart, clock=self.clock)

    def prove(self, version: str, *, drivers=None, connected=True) -> None:
        """What the new agent records as it starts (`ProofRecorder`)."""
        recorder = ProofRecorder(self.state / "update", version)
        now = self.clock()
        recorder.started(now, drivers if drivers is not None else {"pad-1": "ok"})
        if connected:
            recorder.connected(now)
            recorder.health_sent(now)
        else:
            recorder.broker_failed("[Errno 111] Connection refused")
        recorder.test_event_written("0" * 32, now)
        if connected:
            recorder.test_event_sent(now)


def test_a_good_release_is_installed_switched_proven_and_the_previous_kept(tmp_path):
    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    old = node.agent()
    old.desired(desired)  # inside the window, idle, connected: straight through to the switch
    assert node.store.current() == "1.1.0"
    assert node.restart.count == 1 and old.journal().state == "proving"
    assert old.journal().baseline.drivers_ok == ("pad-1",)
    assert node.store.guard() == "1.0.0"
    # systemd starts the new release
    new = node.agent()
    assert new.running == "1.1.0"
    new.resume()
    node.prove("1.1.0")
    journal = new.tick()
    assert journal.state == "done"
    assert node.store.current() == "1.1.0" and node.store.guard() == "1.1.0"
    assert (node.prefix / "releases" / "1.0.0" / "bin" / "rpfleet").exists()
    out = subprocess.run([node.prefix / "current" / "bin" / "rpfleet"], capture_output=True, text=True)
    assert out.stdout.strip() == "1.1.0"
    states = [r.state for _, r in new.reports.pending()]
    assert states == ["downloading", "verifying", "verifying", "installing", "switching", "proving", "done"]
    assert [r.at for _, r in new.reports.pending()] == sorted(r.at for _, r in new.reports.pending())
    # the retained down/update comes again at every reconnect: nothing happens
    assert new.desired(desired).state == "done" and node.restart.count == 1


@pytest.mark.parametrize("what, prove", [
    ("never starts (crash loop or hang)", None),
    ("loses the rating pad", {"drivers": {"pad-1": "no such device /dev/input/by-id/usb-pad"}}),
    ("never reaches the broker", {"connected": False}),
], ids=["no-proof", "lost-driver", "no-broker"])
def test_a_release_that_does_not_prove_itself_rolls_back_with_its_evidence(tmp_path, what, prove):
    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    old = node.agent()
    old.desired(desired)
    new = node.agent()
    new.resume()
    if prove is not None:
        node.prove("1.1.0", **prove)
    node.clock.advance(60)
    assert new.tick().state == "proving"  # not yet past the deadline
    node.clock.advance(61)
    journal = new.tick()
    assert journal.state == "rolling-back"
    assert node.store.current() == "1.0.0"
    assert node.restart.count == 2
    back = node.agent()
    assert back.running == "1.0.0"
    journal = back.resume()
    assert journal.state == "rolled-back"
    report = back.reports.pending()[-1][1]
    assert report.state == "rolled-back" and "did not prove itself" in report.reason
    if prove is None:
        assert "never started" in report.evidence["started"]
    elif "drivers" in prove:
        assert report.evidence["drivers"] == "pad-1 was ok before, now: no such device /dev/input/by-id/usb-pad"
    else:
        assert "Connection refused" in report.evidence["connected"]
    # the same version is not tried again until the server resets
    assert back.desired(desired).state == "rolled-back"
    assert back.reset().state == "idle"
    assert back.desired(desired).state == "proving"  # tried again on the server's word


def test_a_crash_looping_release_is_switched_back_by_the_guard(tmp_path):
    from agent.update.guard import guard

    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    old = node.agent()
    old.desired(desired)
    assert node.store.current() == "1.1.0"
    starts = node.settings.max_starts_while_proving + 1
    states = [guard(node.state, node.settings, clock=node.clock) for _ in range(starts)]
    assert states[:-1] == ["proving"] * node.settings.max_starts_while_proving
    assert states[-1] == "rolling-back"
    assert node.store.current() == "1.0.0"
    journal = node.agent().resume()
    assert journal.state == "rolled-back" and "crash loop" in journal.reason


def test_nothing_installs_outside_the_window_or_while_busy_unless_forced(tmp_path):
    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    agent = node.agent()
    node.clock.now = node.clock.now.replace(hour=5, tzinfo=timezone.utc)  # 12:00 in Hanoi
    assert agent.desired(desired).state == "ready"
    assert agent.tick().state == "ready"
    node.clock.now = node.clock.now.replace(hour=19)  # 02:00 in Hanoi
    node.probe.is_busy = "a call is being spoken"
    assert agent.tick().state == "ready"
    node.probe.is_busy = None
    assert agent.tick().state == "proving"


def test_no_switch_while_the_broker_is_down_and_a_stuck_switch_fails_leaving_the_old_release(tmp_path):
    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    agent = node.agent()
    node.probe.is_connected = False
    assert agent.desired(desired).state == "switching"  # installed beside; waits for the broker
    assert node.store.current() == "1.0.0" and node.store.is_complete("1.1.0")
    node.clock.advance(node.settings.timeouts.switching + 1)
    journal = agent.tick()
    assert journal.state == "failed" and journal.reason.startswith("stuck in switching")
    assert node.store.current() == "1.0.0"
    assert not node.store.path("1.1.0").exists()


def test_a_tampered_download_is_refused_and_cleaned_up(tmp_path):
    node = Node(tmp_path)
    path, desired = tiny_artifact(node.artifacts, "1.1.0")
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    journal = node.agent().desired(desired)
    assert journal.state == "refused" and "sha256" in journal.reason
    assert list((node.state / "update" / "downloads").glob("*")) == []


def test_the_journal_survives_a_new_process(tmp_path):
    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    node.clock.now = node.clock.now.replace(hour=5)  # noon in Hanoi: waits in ready
    node.agent().desired(desired)
    script = (
        "import sys, json; from agent.update.journal import JournalFile; from pathlib import Path;"
        "j = JournalFile(Path(sys.argv[1])).load(); print(json.dumps([j.state, j.version, j.previous]))"
    )
    import json
    import sys
    out = subprocess.run([sys.executable, "-c", script, str(node.state / "update")], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[3])
    assert json.loads(out.stdout) == ["ready", "1.1.0", "1.0.0"]


def test_an_explicit_rollback_to_the_kept_previous_release_switches_to_it_as_it_is(tmp_path):
    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    node.agent().desired(desired)
    new = node.agent()
    new.resume()
    node.prove("1.1.0")
    assert new.tick().state == "done" and node.store.guard() == "1.1.0"
    script = node.prefix / "releases" / "1.0.0" / "bin" / "rpfleet"
    script.write_text(script.read_text() + "# the very file that ran before\n")
    _, back = tiny_artifact(node.artifacts, "1.0.0")
    journal = new.desired(back.model_copy(update={"rollback": True}))
    assert journal.state == "proving" and node.store.current() == "1.0.0"
    assert script.read_text().endswith("# the very file that ran before\n")


def test_reports_queue_until_sent_and_a_report_that_cannot_be_queued_changes_nothing(tmp_path):
    node = Node(tmp_path)
    _, desired = tiny_artifact(node.artifacts, "1.1.0")
    (node.state / "update").mkdir(parents=True)
    (node.state / "update" / "reports").write_text("not a directory")  # every report fails
    agent = node.agent()
    assert agent.desired(desired).state == "proving"
    assert node.store.current() == "1.1.0"
    (node.state / "update" / "reports").unlink()
    new = node.agent()
    new.resume()
    node.prove("1.1.0")
    assert new.tick().state == "done"
    pending = new.reports.pending()
    assert [r.state for _, r in pending] == ["done"]
    assert pending[0][1].node == NODE and pending[0][1].evidence["test-event-acked"] == "no (not required)"
    new.reports.sent(pending[0][0])
    assert new.reports.pending() == []


def test_the_guard_reads_only_its_part_of_agent_toml(tmp_path):
    from agent.update.guard import load, main

    config = tmp_path / "agent.toml"
    config.write_text(
        f'node_id = "{NODE}"\nstate_dir = "{tmp_path / "state"}"\nsome_newer_key = 1\n'
        '[update]\nmax_starts_while_proving = 3\nnot_known_here = true\n[update.window]\nstart = "23:00"\n',
        encoding="utf-8")
    state_dir, settings, node_id = load(config)
    assert (state_dir, node_id) == (tmp_path / "state", NODE)
    assert settings.max_starts_while_proving == 3 and settings.window.start.hour == 23
    assert main(["--config", str(config)]) == 0  # nothing under way: touches nothing
    assert not (tmp_path / "state").exists()
