"""Announcements end to end: an `Announce` published with the fleet server's identity on a
node's ``down/announce``, through the broker (mutual TLS), to the real agent, whose soundbox
plays it through sounddevice into the private sound server (tests/audio.py). The recording
of the sink shows the call was played, whole; the result event goes up like any other, and
the fleet server stores it. An expired announce is not played, and is reported."""

from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest

from devices.soundbox.voice_pack import VoicePack, compose, load_pack, render
from provisioning.mosquitto import SERVER_USERNAME
from rpfleet.protocol import Channel, decode, topic
from rpfleet.protocol.messages import Announce, AnnouncementResult
from tests.audio import clip_joins, dbfs, hear, pcm_samples, sound_server  # noqa: F401 - fixture
from tests.conftest import eventually
from tests.system.helpers import stored_events


@pytest.fixture(scope="module")
def built_pack(tmp_path_factory: pytest.TempPathFactory) -> VoicePack:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/bootstrap installs the Debian package espeak-ng)")
    from provisioning.voice_pack_build import build_default_pack

    return load_pack(build_default_pack(tmp_path_factory.mktemp("vi-default")))


def soundbox(pack: VoicePack) -> dict:
    return {"kind": "soundbox", "id": "loa-5", "counters": ["5"], "output": "sounddevice",
            "voice_pack": str(pack.root)}


def announce_payload(*, id: str, expires_in: float, ticket: str = "1023", counter: str = "5") -> bytes:
    return Announce(id=id, kind="queue-call", ticket=ticket, counter=counter,
                    expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in)).to_json()


def results_from(listener, announce_id: str, timeout: float = 30) -> AnnouncementResult:
    """The first `AnnouncementResult` for ``announce_id`` among the node's event batches."""
    deadline = time.monotonic() + timeout
    while True:
        message = listener.next(timeout=max(0.1, deadline - time.monotonic()))
        for event in decode(Channel.EVENTS, message.payload).events:
            detail = event.detail
            if isinstance(detail, AnnouncementResult) and detail.announce_id == announce_id:
                return detail


def soundbox_ready(runner) -> bool:
    return runner.call(lambda: runner.agent.drivers[0].health().state) == "ok"


def test_a_call_published_as_the_server_is_played_whole_by_the_node(
    sound_server, running_agent, new_node, probe, built_pack, tmp_path
):
    node = new_node()
    runner = running_agent(node, peripherals=[soundbox(built_pack)])
    fleet = probe(SERVER_USERNAME)
    fleet.subscribe(topic(node, Channel.EVENTS))
    eventually(lambda: soundbox_ready(runner))
    rate = built_pack.info.sample_rate

    with sound_server.recorder(tmp_path / "call-1023-to-5", rate) as recording:
        fleet.publish(topic(node, Channel.ANNOUNCE), announce_payload(id="ann-e2e-1", expires_in=120))
        result = results_from(fleet, "ann-e2e-1")
        recorded_when_reported = recording.seconds()
    expected_clips = compose(Announce.model_validate_json(announce_payload(id="x", expires_in=60)),
                             built_pack)
    expected = pcm_samples(render(expected_clips, built_pack))
    heard = hear(recording.capture.samples, expected, rate, clip_joins(expected_clips, built_pack))

    assert (result.outcome, result.soundbox, result.counter, result.ticket) == (
        "played", "loa-5", "5", "1023")
    assert result.clips == expected_clips
    assert result.duration_ms == round(len(expected) / rate * 1000)
    assert heard.similarity > 0.98, heard
    assert (heard.lost_head_ms, heard.lost_tail_ms, heard.lost_ms, heard.clipped) == (0, 0, 0, 0), heard
    assert max(heard.gap_dbfs) < -60, heard
    assert recorded_when_reported >= heard.end_s, "reported played only once all of it was out"
    assert recording.capture.wav.is_file()


def test_an_expired_call_is_not_played_and_the_server_stores_why(
    sound_server, server, running_agent, new_node, probe, built_pack, tmp_path
):
    node = new_node()
    runner = running_agent(node, peripherals=[soundbox(built_pack)])
    eventually(lambda: soundbox_ready(runner))
    rate = built_pack.info.sample_rate

    with sound_server.recorder(tmp_path / "expired", rate) as recording:
        probe(SERVER_USERNAME).publish(
            topic(node, Channel.ANNOUNCE), announce_payload(id="ann-late", expires_in=-300))
        rows = eventually(lambda: [r for r in stored_events(server, node) if r.kind == "announcement"])
        time.sleep(0.5)  # anything played would be in the sink by now
    silence = recording.capture.samples

    detail = rows[0].detail
    assert (detail["outcome"], detail["announce_id"], detail["soundbox"]) == ("expired", "ann-late", "loa-5")
    assert detail["reason"].startswith("arrived 300.") and "clips" not in detail
    assert rows[0].counter == "5"
    assert dbfs(silence) < -90, "nothing was played"


def test_a_node_without_a_soundbox_ignores_an_announce(running_agent, new_node, probe, caplog):
    node = new_node()
    runner = running_agent(node)  # one fake rating pad, no soundbox
    eventually(lambda: runner.agent.link.connected)
    caplog.set_level(logging.INFO, logger="agent.node")

    probe(SERVER_USERNAME).publish(topic(node, Channel.ANNOUNCE), announce_payload(id="ann-x", expires_in=60))
    probe(SERVER_USERNAME).publish(topic(node, Channel.ANNOUNCE), b'{"v": "1.4", "id": "bad"}')

    eventually(lambda: "no soundbox here says it" in caplog.text)
    eventually(lambda: "ignoring malformed announce" in caplog.text)
    assert runner.call(lambda: runner.agent.drivers[0].health().state) == "ok"


def test_the_queue_system_calls_a_ticket_and_the_counter_hears_it(
    sound_server, server, running_agent, new_node, built_pack, tmp_path
):
    """The whole channel: the queue system's HTTP call (its own scoped token) -> the fleet
    server -> down/announce over mutual TLS -> the node's soundbox -> the sink's recording."""
    from fastapi.testclient import TestClient

    from fleet_server.api import tokens
    from fleet_server.api.app import create_app
    from fleet_server.schema import counters
    from fleet_server.store import add_site, assign_node

    node = new_node()
    with server.engine.begin() as conn:
        add_site(conn, "pv-bach-dang", "Phường Bạch Đằng", "commune")
        conn.execute(counters.insert(), [{"site_id": "pv-bach-dang", "id": "5"}])
        assign_node(conn, node, "pv-bach-dang", "5")
        token = tokens.create(conn, "queue-bach-dang", role="queue", sites=["pv-bach-dang"])
    runner = running_agent(node, peripherals=[soundbox(built_pack)])
    eventually(lambda: soundbox_ready(runner) and runner.agent.link.connected)
    rate = built_pack.info.sample_rate

    with TestClient(create_app(server.engine, link=server.link)) as http, \
            sound_server.recorder(tmp_path / "http-call-1023-to-5", rate) as recording:
        answer = http.post("/api/v1/sites/pv-bach-dang/calls", json={"ticket": "1023", "counter": "5"},
                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 202, answer.text
        assert [n["node"] for n in answer.json()["nodes"]] == [node]
        rows = eventually(lambda: [r for r in stored_events(server, node)
                                   if r.kind == "announcement"], timeout=60)
    expected_clips = compose(Announce.model_validate_json(announce_payload(id="x", expires_in=60)),
                             built_pack)
    expected = pcm_samples(render(expected_clips, built_pack))
    heard = hear(recording.capture.samples, expected, rate, clip_joins(expected_clips, built_pack))

    assert (rows[0].detail["outcome"], rows[0].detail["announce_id"]) == ("played", answer.json()["id"])
    assert heard.similarity > 0.98, heard
    assert (heard.lost_head_ms, heard.lost_tail_ms, heard.lost_ms, heard.clipped) == (0, 0, 0, 0), heard
