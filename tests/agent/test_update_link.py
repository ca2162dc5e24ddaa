"""The updater wired into a real agent (agent/update_link.py) on the real mutual-TLS broker:
``down/update`` in, ``up/update`` out, the maintenance window, the proof a just-switched
release writes, and ``update-reset`` through the command runner.

A real signed artifact is built from the tree and served over HTTP; where an install is
not the point (the proof), the tiny releases of tests/agent/update stand in for venvs.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from datetime import datetime, timedelta, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rpfleet
from agent.update.journal import JournalFile
from agent.update.proof import ProofFile
from agent.update.settings import UpdateSettings
from agent.update.updater import Updater
from agent.update_link import NodeProbe
from provisioning.mosquitto import SERVER_USERNAME
from rpfleet.maintenance import HANOI
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Command, CommandResult, UpdateDesired, UpdateProgress
from rpfleet.release import keys
from rpfleet.release.build import build_artifact
from rpfleet.release.signing import sign_artifact
from tests.agent.update.tiny import FakeNode, RecordingRestart, TinyArtifacts, installed_node, tiny_artifact
from tests.conftest import eventually

VERSION = "9.0.0"


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """rpfleet 9.0.0 from this tree (wheel only), signed with a key made here, served over
    HTTP; the node trusts the key through its keys file."""
    root = tmp_path_factory.mktemp("update-link")
    _, private, public = keys.generate_key_pair(root / "keys")
    artifact = root / "www" / f"rpfleet-{VERSION}.artifact"
    artifact.parent.mkdir()
    build_artifact(artifact, version=VERSION)
    sign_artifact(artifact, keys.load_private_key(private))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(artifact.parent)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    data = artifact.read_bytes()
    yield {"keys_file": public, "desired": UpdateDesired(
        version=VERSION, url=f"http://127.0.0.1:{httpd.server_address[1]}/{artifact.name}",
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), signature="in the artifact")}
    httpd.shutdown()


def closed_window_now() -> dict:
    """A maintenance window that does not hold the present moment (Hanoi time)."""
    now = datetime.now(HANOI)
    return {"start": (now + timedelta(hours=2)).strftime("%H:%M"),
            "end": (now + timedelta(hours=3)).strftime("%H:%M")}


def progress(server, node: str, state: str, timeout: float = 20, **fields) -> UpdateProgress:
    """The first ``up/update`` report of ``node`` in ``state`` (with ``fields``) the server reads."""

    def wanted(m) -> bool:
        if m.topic != topic(node, Channel.UPDATE_PROGRESS):
            return False
        report = UpdateProgress.model_validate_json(m.payload)
        return report.state == state and all(getattr(report, k) == v for k, v in fields.items())

    return UpdateProgress.model_validate_json(server.wait_for(wanted, timeout).payload)


def test_a_signed_update_is_fetched_verified_and_waits_for_the_sites_window_then_reset(
        new_node, running_agent, probe, release, tmp_path):
    node = new_node()
    server = probe(SERVER_USERNAME)
    server.subscribe(topic(node, Channel.UPDATE_PROGRESS))
    server.subscribe(topic(node, Channel.CMD_RESULT))
    server.publish(topic(node, Channel.UPDATE_DESIRED), release["desired"].to_json(), retain=True)
    state_dir = tmp_path / "state"
    # The window comes from the config a site layer sets (NodeConfig.maintenance_window),
    # not from the node file's [update].window (all day here).
    runner = running_agent(node, state_dir=state_dir, maintenance_window=closed_window_now(),
                           update=UpdateSettings(prefix=tmp_path / "opt",
                                                 trusted_keys_file=release["keys_file"],
                                                 window={"start": "00:00", "end": "00:00"}))
    try:
        assert progress(server, node, "downloading").version == VERSION
        waiting = progress(server, node, "verifying", progress=1.0)  # verified; outside the window
        assert "maintenance window" in waiting.reason
        journal = JournalFile(state_dir / "update")
        assert journal.load().state == "ready"
        assert not (tmp_path / "opt" / "releases" / VERSION).exists()  # nothing installed
        # every report the broker took is forgotten on the node
        eventually(lambda: not list((state_dir / "update" / "reports").glob("*.json")))

        now = datetime.now(timezone.utc)
        reset = Command(id=uuid.uuid4().hex, name="update-reset", args={"reason": "operator gave up"},
                        issuer="ops-laptop", issued_at=now, expires_at=now + timedelta(minutes=5))
        server.publish(topic(node, Channel.CMD), reset.to_json())
        answer = server.wait_for(lambda m: m.topic == topic(node, Channel.CMD_RESULT))
        result = CommandResult.model_validate_json(answer.payload)
        assert (result.id, result.outcome) == (reset.id, "ok"), result.detail
        assert result.output == {"state": journal.load().state} and journal.load().state != "ready"
    finally:
        runner.stop()
        server.publish(topic(node, Channel.UPDATE_DESIRED), b"", retain=True)


def test_an_untrusted_node_refuses_with_the_reason_and_runs_on(new_node, running_agent, probe, release,
                                                               tmp_path):
    node = new_node()
    server = probe(SERVER_USERNAME)
    server.subscribe(topic(node, Channel.UPDATE_PROGRESS))
    server.subscribe(topic(node, Channel.HEALTH))
    runner = running_agent(node, update=UpdateSettings(prefix=tmp_path / "opt",
                                                       trusted_keys_file=tmp_path / "no-such.pem"))
    try:
        server.wait_for(lambda m: m.topic == topic(node, Channel.HEALTH))
        server.publish(topic(node, Channel.UPDATE_DESIRED), release["desired"].to_json())
        refused = progress(server, node, "refused")
        assert "no-trusted-keys" in refused.reason and "no-such.pem" in refused.reason
        assert runner.agent.link.connected
    finally:
        runner.stop()


def test_an_empty_retained_desired_update_means_none(new_node, running_agent, probe, tmp_path, caplog):
    node = new_node()
    server = probe(SERVER_USERNAME)
    server.subscribe(topic(node, Channel.HEALTH))
    state_dir = tmp_path / "state"
    with caplog.at_level(logging.DEBUG, logger="agent"):
        runner = running_agent(node, state_dir=state_dir,
                               update=UpdateSettings(prefix=tmp_path / "opt",
                                                     trusted_keys_file=tmp_path / "none.pem"))
        try:
            server.wait_for(lambda m: m.topic == topic(node, Channel.HEALTH))
            server.publish(topic(node, Channel.UPDATE_DESIRED), b"", retain=True)
            server.publish(topic(node, Channel.UPDATE_DESIRED), b"{not json")  # then a bad one
            eventually(lambda: any("malformed desired update" in r.getMessage() for r in caplog.records))
        finally:
            runner.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert "no desired update" in messages
    assert sum("malformed desired update" in m for m in messages) == 1  # only the bad one
    assert JournalFile(state_dir / "update").load().state == "idle"


def test_a_new_release_proves_itself_and_the_updater_judges_it_done(new_node, running_agent, probe, tmp_path):
    """The old release (0.0.9, a tiny one) switched to this tree's version; the agent that
    starts now is that release, writes its proof and so finishes the update."""
    node = new_node()
    prefix, state_dir = tmp_path / "opt", tmp_path / "state"
    prefix.mkdir()
    installed_node(prefix, "0.0.9")
    _, desired = tiny_artifact(tmp_path, rpfleet.__version__)
    old = Updater(node_id=node, state_dir=state_dir, settings=UpdateSettings(prefix=prefix), running="0.0.9",
                  artifacts=TinyArtifacts(), node=FakeNode(drivers_ok=("pad-1",)),
                  restarter=RecordingRestart())
    journal = old.desired(desired.model_copy(update={"force": True}))
    assert journal.state == "proving", journal.reason
    assert old.restarter.count == 1

    server = probe(SERVER_USERNAME)
    server.subscribe(topic(node, Channel.UPDATE_PROGRESS))
    runner = running_agent(node, state_dir=state_dir, update=UpdateSettings(prefix=prefix))
    try:
        assert progress(server, node, "done", timeout=30).version == rpfleet.__version__
        proof = ProofFile(state_dir / "update").load()
        assert proof.started_at and proof.connected_at and proof.health_sent_at
        assert proof.test_event_sent_at and proof.drivers == {"pad-1": "ok"}
        assert JournalFile(state_dir / "update").load().state == "done"
        assert (prefix / "guard").resolve().name == rpfleet.__version__  # the proven release guards now
        assert runner.agent.updates.exit_status is None  # no restart: it stays on
    finally:
        runner.stop()


class Driver:
    def __init__(self, id, kind, busy=None):
        self.id, self.kind = id, kind
        if busy is not None:
            self.busy = busy


class Agent:
    def __init__(self, drivers):
        self.drivers = drivers


def test_the_probe_names_what_keeps_the_node_busy():
    assert NodeProbe(Agent([Driver("pad-1", "rating-pad"), Driver("sb-1", "soundbox", False)])).busy() is None
    assert NodeProbe(Agent([Driver("sb-1", "soundbox", True)])).busy() == "a call is being spoken (sb-1)"
    assert NodeProbe(Agent([Driver("sb-1", "soundbox", False), Driver("pr-1", "ticket-printer", True)])
                     ).busy() == "a ticket printing (pr-1)"


class PowerCut(Exception):
    pass


def test_an_agent_that_finds_a_rollback_half_done_switches_back_and_exits_75(new_node, agent_process, tmp_path):
    """A power cut came while going back: the next agent (this tree's release, which
    ``current`` still names) finishes the rollback and ends with status 75, on which
    systemd starts the release ``current`` names now."""
    node = new_node()
    prefix, state_dir = tmp_path / "opt", tmp_path / node  # agent_process's state dir
    prefix.mkdir()
    store = installed_node(prefix, "0.0.9")
    _, desired = tiny_artifact(tmp_path, rpfleet.__version__)

    def cut(point: str) -> None:
        if point == "journal:rolling-back":
            raise PowerCut(point)

    def updater(running: str, pause=lambda point: None) -> Updater:
        return Updater(node_id=node, state_dir=state_dir, settings=UpdateSettings(prefix=prefix),
                       running=running, artifacts=TinyArtifacts(), node=FakeNode(drivers_ok=("pad-5",)),
                       restarter=RecordingRestart(), pause=pause)

    assert updater("0.0.9").desired(desired.model_copy(update={"force": True})).state == "proving"
    with pytest.raises(PowerCut):  # the new release, told to go back, is cut off at once
        updater(rpfleet.__version__, pause=cut).reset("going back")
    assert JournalFile(state_dir / "update").load().state == "rolling-back"
    assert store.current() == rpfleet.__version__

    proc = agent_process(node, env={"RPFLEET_UPDATE__PREFIX": str(prefix),
                                    "RPFLEET_UPDATE__TRUSTED_KEYS_FILE": str(tmp_path / "none.pem")})
    assert proc.wait(timeout=30) == 75, (tmp_path / f"{node}.log").read_text()
    assert store.current() == "0.0.9"
