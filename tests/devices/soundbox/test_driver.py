"""The Soundbox driver with the fake speaker: what it says (the real voice pack, rendered),
in which order, what it reports for each announcement, and its health."""

from __future__ import annotations

import array
import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from devices.registry import build_driver
from devices.soundbox import Soundbox, SoundboxConfig
from devices.soundbox.adapter import NotSaid
from devices.soundbox.driver import build_soundbox, estimate_s, scaled
from devices.soundbox.fake import FakeSpeaker
from devices.soundbox.voice_pack import DEFAULT_PACK_SOURCE, VoicePackError, compose, load_pack, render
from rpfleet.protocol.messages import Announce, AnnouncementResult
from tests.audio import clip_joins
from tests.devices.rating_pad.pty_pad import wait_until


class Results:
    """The driver's Record: keeps every event, as the outbox would."""

    def __init__(self) -> None:
        self.events: list[tuple[AnnouncementResult, datetime]] = []
        self.fail_next = 0

    async def __call__(self, detail, at) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("database or disk is full")
        self.events.append((detail, at))

    def outcomes(self) -> list[tuple[str, str]]:
        return [(d.announce_id, d.outcome) for d, _ in self.events]


def announce(kind: str = "queue-call", *, id: str, ttl: float = 120, **fields) -> Announce:
    if kind == "queue-call":
        fields = {"ticket": "1023", "counter": "5", **fields}
    return Announce(id=id, kind=kind, expires_at=datetime.now(timezone.utc) + timedelta(seconds=ttl),
                    **fields)


@pytest.fixture
def results() -> Results:
    return Results()


@pytest.fixture
def make(built_pack, results):
    """A running soundbox with a fake speaker; cancelled after the test."""
    tasks = []

    def start(speaker: FakeSpeaker | None = None, **overrides) -> Soundbox:
        config = SoundboxConfig(**{"id": "sb-1", "counters": ("5",), "output": "fake",
                                   "voice_pack": built_pack.root, **overrides})
        box = Soundbox(config, speaker or FakeSpeaker(), results)
        tasks.append(asyncio.create_task(box.run()))
        return box

    yield start
    for task in tasks:
        task.cancel()


async def test_a_call_is_said_with_the_pack_and_reported_played(make, results, built_pack):
    box = make()
    await wait_until(lambda: box.health().state == "ok")
    message = announce(id="ann-1")

    assert box.announce(message) is True
    await wait_until(lambda: results.events)

    detail, at = results.events[0]
    clips = compose(message, built_pack)
    pcm = render(clips, built_pack)
    said = box.adapter.said[0]
    assert said.pcm == pcm and said.clips == tuple(clips)
    assert said.words == "mời công dân có số thứ tự một nghìn không trăm hai mươi ba đến quầy số năm"
    assert (detail.kind, detail.soundbox, detail.announce_id, detail.announce_kind, detail.outcome) == (
        "announcement", "sb-1", "ann-1", "queue-call", "played")
    assert (detail.counter, detail.ticket, detail.clips) == ("5", "1023", clips)
    assert detail.duration_ms == round(len(pcm) / 2 / built_pack.info.sample_rate * 1000)
    assert detail.waited_ms is not None and detail.reason is None
    assert box.health().state == "ok" and box.health().detail == "fake speaker"


async def test_a_soundbox_says_only_its_counters_and_the_hall_says_all(make, results):
    counter5 = make()
    hall = make(id="hall", counters=())
    await wait_until(lambda: hall.health().state == "ok" and counter5.health().state == "ok")

    elsewhere = announce(id="ann-3", counter="3")
    assert counter5.announce(elsewhere) is False
    assert hall.announce(elsewhere) is True
    await wait_until(lambda: len(hall.adapter.said) == 1)
    assert counter5.adapter.said == [] and results.outcomes() == [("ann-3", "played")]


async def test_identify_without_a_counter_names_the_soundbox_own(make, results):
    box = make(counters=("12",))
    await wait_until(lambda: box.health().state == "ok")

    box.announce(announce("identify", id="who"))
    await wait_until(lambda: box.adapter.said)

    assert box.adapter.said[0].words == "đây là loa quầy số mười hai"


async def test_payment_wording_and_southern_reading_come_from_the_config(make):
    box = make(counters=("2",), wording={"payment": "fee"}, style="southern")
    await wait_until(lambda: box.health().state == "ok")

    box.announce(announce("payment", id="pay", counter="2", amount_vnd=1_105_000))
    await wait_until(lambda: box.adapter.said)

    assert box.adapter.said[0].words == "đã nhận lệ phí một triệu một trăm lẻ năm ngàn đồng"


async def test_tickets_read_digit_by_digit_where_the_site_prefers(make):
    box = make(ticket_reading="digits")
    await wait_until(lambda: box.health().state == "ok")

    box.announce(announce(id="ann", ticket="1023"))
    await wait_until(lambda: box.adapter.said)

    assert "số thứ tự một không hai ba đến" in box.adapter.said[0].words


async def test_nothing_is_cut_and_a_payment_goes_before_waiting_calls(make, results):
    speaker = FakeSpeaker()
    speaker.gate = asyncio.Event()
    box = make(speaker, counters=())
    await wait_until(lambda: box.health().state == "ok")

    box.announce(announce(id="call-1", ticket="1"))
    await wait_until(lambda: speaker.started == ["call-1"])
    box.announce(announce(id="call-2", ticket="2"))
    box.announce(announce(id="call-3", ticket="3"))
    box.announce(announce("payment", id="pay-1", counter="2", amount_vnd=50_000))
    await asyncio.sleep(0.1)
    assert speaker.started == ["call-1"], "the call being said is not cut, nor overlapped"

    speaker.gate.set()
    await wait_until(lambda: len(results.events) == 4)

    assert [u.ref for u in speaker.said] == ["call-1", "pay-1", "call-2", "call-3"]
    assert all(outcome == "played" for _, outcome in results.outcomes())


async def test_an_expired_announce_is_not_said_and_is_reported(make, results):
    box = make()
    await wait_until(lambda: box.health().state == "ok")

    box.announce(announce(id="late", ttl=-30))
    await wait_until(lambda: results.events)

    detail, _ = results.events[0]
    assert (detail.outcome, detail.announce_id, detail.ticket) == ("expired", "late", "1023")
    assert detail.reason.startswith("arrived 30.") and detail.reason.endswith("s after it expired")
    assert box.adapter.said == [] and detail.clips is None


async def test_one_that_expires_while_waiting_is_dropped(make, results):
    speaker = FakeSpeaker()
    speaker.gate = asyncio.Event()
    box = make(speaker)
    await wait_until(lambda: box.health().state == "ok")
    box.announce(announce(id="long"))
    await wait_until(lambda: speaker.started)
    box.announce(announce(id="short", ticket="1024", ttl=0.2))
    await asyncio.sleep(0.4)
    speaker.gate.set()

    await wait_until(lambda: len(results.events) == 2)
    assert results.outcomes() == [("long", "played"), ("short", "expired")]
    assert "was still waiting" in results.events[1][0].reason
    assert [u.ref for u in speaker.said] == ["long"]


async def test_a_repeat_is_merged_and_a_redelivery_ignored(make, results):
    box = make()
    await wait_until(lambda: box.health().state == "ok")
    first = announce(id="ann-1")

    box.announce(first)
    box.announce(first)  # QoS 1 redelivery: same id
    await wait_until(lambda: results.events)
    box.announce(announce(id="ann-2"))  # the queue system calls 1023 again at once
    await wait_until(lambda: len(results.events) == 2)
    await asyncio.sleep(0.05)

    assert results.outcomes() == [("ann-1", "played"), ("ann-2", "merged")]
    assert results.events[1][0].merged_into == "ann-1"
    assert len(box.adapter.said) == 1


async def test_a_missing_speaker_is_missing_and_announcements_are_reported_no_device(
    make, results, monkeypatch
):
    monkeypatch.setattr("devices.soundbox.driver.REOPEN_DELAYS_S", (30,))
    speaker = FakeSpeaker()
    speaker.unplug()
    box = make(speaker)
    await wait_until(lambda: box.health().detail)
    assert box.health().state == "missing" and "unplugged" in box.health().detail

    box.announce(announce(id="ann-1"))  # tries the speaker again at once, in vain
    await wait_until(lambda: results.events)
    assert results.outcomes() == [("ann-1", "no-device")]
    assert "missing" in results.events[0][0].reason

    speaker.plug_in()
    box.announce(announce(id="ann-2", ticket="7"))  # found again: said
    await wait_until(lambda: len(results.events) == 2)
    assert results.outcomes()[1] == ("ann-2", "played")
    assert box.health().state == "ok"


async def test_a_speaker_unplugged_while_saying_reports_it_and_is_missing(make, results, monkeypatch):
    monkeypatch.setattr("devices.soundbox.driver.REOPEN_DELAYS_S", (30,))
    speaker = FakeSpeaker()
    speaker.gate = asyncio.Event()
    box = make(speaker)
    await wait_until(lambda: box.health().state == "ok")
    box.announce(announce(id="ann-1"))
    await wait_until(lambda: speaker.started)
    box.announce(announce(id="ann-2", ticket="8"))
    speaker.unplug()
    speaker.gate.set()

    await wait_until(lambda: len(results.events) == 2)
    assert results.outcomes() == [("ann-1", "no-device"), ("ann-2", "no-device")]
    assert box.health().state == "missing"


async def test_a_soundbox_stopped_while_saying_serves_again_when_restarted(built_pack, results):
    speaker = FakeSpeaker()
    speaker.gate = asyncio.Event()
    box = build_soundbox(SoundboxConfig(id="sb", output="fake", voice_pack=built_pack.root), results)
    box.adapter = speaker
    first = asyncio.create_task(box.run())
    box.announce(announce(id="ann-1"))
    await wait_until(lambda: speaker.started)
    first.cancel()  # the self-test ends, or the agent stops
    await asyncio.gather(first, return_exceptions=True)

    speaker.gate.set()
    again = asyncio.create_task(box.run())
    box.announce(announce(id="ann-2", ticket="2"))
    await wait_until(lambda: results.events)
    again.cancel()
    assert results.outcomes() == [("ann-2", "played")]


async def test_hot_plug_moves_the_soundbox_to_the_card_it_found_and_back(make):
    box = make()
    await wait_until(lambda: box.health().state == "ok")

    box.attach("/dev/snd/controlC1")
    await wait_until(lambda: box.adapter.opened == [None, "/dev/snd/controlC1"])
    box.detach()
    await wait_until(lambda: box.adapter.opened == [None, "/dev/snd/controlC1", None])
    assert box.health().state == "ok"


async def test_busy_output_is_retried_then_reported(make, results, monkeypatch):
    monkeypatch.setattr("devices.soundbox.driver.BUSY_RETRY_S", (0.01, 0.01))
    speaker = FakeSpeaker()
    box = make(speaker)
    await wait_until(lambda: box.health().state == "ok")

    speaker.busy_for = 1
    box.announce(announce(id="ann-1"))
    await wait_until(lambda: results.events)
    assert results.outcomes() == [("ann-1", "played")]

    speaker.busy_for = 3
    box.announce(announce(id="ann-2", ticket="9"))
    await wait_until(lambda: len(results.events) == 2)
    detail = results.events[1][0]
    assert (detail.outcome, detail.reason) == ("device-busy", "the fake speaker is busy")
    assert box.health().state == "degraded" and "busy" in box.health().detail


async def test_what_the_pack_cannot_say_fails_and_the_soundbox_serves_on(make, results):
    speaker = FakeSpeaker()
    box = make(speaker, counters=())
    await wait_until(lambda: box.health().state == "ok")

    box.announce(announce("text", id="txt", text="xin mời ông Nguyễn"))
    box.announce(announce(id="ann", ticket="5"))
    await wait_until(lambda: len(results.events) == 2)

    assert results.outcomes() == [("txt", "failed"), ("ann", "played")]
    assert "has no clip for" in results.events[0][0].reason
    speaker.failure = NotSaid("the speaker will not say it: unknown clip")
    box.announce(announce(id="ann-2", ticket="6"))
    await wait_until(lambda: len(results.events) == 3)
    assert results.outcomes()[2] == ("ann-2", "failed")
    assert box.health().state == "ok"


async def test_a_pack_that_is_not_built_fails_the_soundbox(built_pack, results, tmp_path):
    source = tmp_path / "pack"
    source.mkdir()
    (source / "manifest.toml").write_bytes((built_pack.root / "manifest.toml").read_bytes())
    box = build_soundbox(SoundboxConfig(id="sb", output="fake", voice_pack=source), results)
    box.announce(announce(id="ann-1"))

    with pytest.raises(VoicePackError, match="is not built"):
        await box.run()

    assert box.health().state == "failed" and "not built" in box.health().detail
    assert results.outcomes() == [("ann-1", "failed")]


async def test_a_wording_the_pack_lacks_fails_the_soundbox(built_pack, results):
    box = build_soundbox(SoundboxConfig(id="sb", output="fake", voice_pack=built_pack.root,
                                        wording={"payment": "whispered"}), results)
    with pytest.raises(VoicePackError, match="no 'whispered' wording for payment"):
        await box.run()


async def test_a_result_that_cannot_be_recorded_does_not_stop_the_soundbox(make, results):
    box = make()
    await wait_until(lambda: box.health().state == "ok")
    results.fail_next = 1

    box.announce(announce(id="ann-1"))
    await wait_until(lambda: box.adapter.said)
    box.announce(announce(id="ann-2", ticket="77"))
    await wait_until(lambda: results.events)

    assert results.outcomes() == [("ann-2", "played")]


async def test_volume_scales_the_sound(make, built_pack):
    box = make(volume=0.5)
    await wait_until(lambda: box.health().state == "ok")
    box.announce(announce(id="ann-1"))
    await wait_until(lambda: box.adapter.said)

    full = array.array("h", render(compose(announce(id="x"), built_pack), built_pack))
    half = array.array("h", box.adapter.said[0].pcm)
    assert len(half) == len(full)
    assert all(abs(h - f / 2) <= 0.5 for h, f in zip(half, full))


def test_scaled_is_identity_at_full_volume_and_silence_at_zero():
    pcm = array.array("h", [0, 1000, -32768, 32767]).tobytes()
    assert scaled(pcm, 1.0) is pcm
    assert array.array("h", scaled(pcm, 0.0)).tolist() == [0, 0, 0, 0]


def test_estimate_for_outputs_without_sound_uses_the_measured_clips(built_pack):
    clips = compose(announce(id="x"), built_pack)
    rendered = len(render(clips, built_pack)) / 2 / built_pack.info.sample_rate

    assert estimate_s(clips, built_pack) == pytest.approx(rendered, abs=0.05)
    source = load_pack(DEFAULT_PACK_SOURCE)  # texts only, nothing measured
    words = len(" ".join(source.manifest.clips[c].text for c in clips).split())
    gaps = sum(end - start for start, end in clip_joins(clips, built_pack)) / built_pack.info.sample_rate
    assert estimate_s(clips, source) == pytest.approx(0.4 * words + gaps)


def test_the_registry_builds_a_soundbox(built_pack, results):
    driver = build_driver(SoundboxConfig(id="sb", output="fake", voice_pack=built_pack.root), results)
    assert isinstance(driver, Soundbox) and driver.kind == "soundbox"
    assert driver.health().state == "missing"


async def test_busy_while_a_call_is_said_or_waits_and_quiet_after(make, results):
    """What the updater's install gate asks (agent/update_link.py NodeProbe.busy)."""
    speaker = FakeSpeaker()
    speaker.gate = asyncio.Event()
    box = make(speaker)
    await wait_until(lambda: box.health().state == "ok")
    assert box.busy is False

    box.announce(announce(id="call-1", ticket="1"))
    await wait_until(lambda: speaker.started == ["call-1"])
    assert box.busy is True
    speaker.gate.set()
    await wait_until(lambda: len(results.events) == 1)
    assert box.busy is False
