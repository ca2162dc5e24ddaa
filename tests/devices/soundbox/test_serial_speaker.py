"""Serial soundboxes: the line protocol as pure bytes, and the pyserial adapter (and the
driver through it) over real pseudo-terminals."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from devices.soundbox import Soundbox, SoundboxConfig, build_soundbox
from devices.soundbox import serial_protocol as sp
from devices.soundbox.adapter import DeviceBusy, NotSaid, SpeakerGone, Utterance
from devices.soundbox.serial_adapter import SerialSpeaker
from devices.soundbox.voice_pack import compose
from rpfleet.protocol.messages import Announce
from tests.devices.rating_pad.pty_pad import wait_until
from tests.devices.soundbox.pty_speaker import PtySpeaker

# -- the protocol ------------------------------------------------------------------------


@pytest.mark.parametrize("line, message", [
    (b"HELLO SB-00042 CLIPS", sp.Hello("SB-00042", "CLIPS")),
    (b"HELLO sb.7 TEXT vi-default@1.0.0", sp.Hello("sb.7", "TEXT", "vi-default@1.0.0")),
    (b"DONE 17 6750", sp.Done(17, 6750)),
    (b"BUSY 3", sp.Busy(3)),
    (b"FAIL 4 unknown clip n7", sp.Fail(4, "unknown clip n7")),
    (b"FAIL 4", sp.Fail(4, "no reason given")),
    (b"FAIL 5 kh\xc3\xb4ng c\xc3\xb3 clip", sp.Fail(5, "không có clip")),
], ids=["hello", "hello-pack", "done", "busy", "fail", "fail-bare", "fail-utf8"])
def test_speaker_lines(line, message):
    assert sp.parse_line(line) == message


@pytest.mark.parametrize("line", [
    b"", b"HELLO", b"HELLO SB-1 WAV", b"DONE x 5", b"DONE 1", b"done 1 5", b"BUSY",
    b"\xff\xfe", b"PLAY 1 n1", b"DONE 1 5 extra",
], ids=["empty", "hello-bare", "hello-form", "done-ref", "done-ms", "lowercase", "busy-bare",
        "not-utf8", "own-command", "trailing"])
def test_not_speaker_lines(line):
    assert sp.parse_line(line) is None


def test_commands_the_agent_sends():
    assert sp.WHO == b"WHO\n"
    assert sp.volume(0.8) == b"VOLUME 80\n"
    assert sp.play(12, ["call-intro", "n1", "thousand"]) == b"PLAY 12 call-intro n1 thousand\n"
    assert sp.say(3, "đến  quầy số năm") == "SAY 3 đến quầy số năm\n".encode()


@pytest.mark.parametrize("make, message", [
    (lambda: sp.play(1, []), "none given"),
    (lambda: sp.play(1, ["n1", "Bad Id"]), "not clip ids"),
    (lambda: sp.play(1, ["n1"] * 400), "longer than a line may be"),
    (lambda: sp.say(1, "50.000 đồng"), "letters and spaces"),
    (lambda: sp.say(1, "  "), "letters and spaces"),
    (lambda: sp.volume(2), "not within 0..1"),
], ids=["no-clips", "bad-clip", "too-long", "digits", "empty", "volume"])
def test_what_the_protocol_cannot_carry_is_refused(make, message):
    with pytest.raises(sp.ProtocolError, match=message):
        make()


def test_the_reader_frames_pieces_and_skips_noise():
    reader = sp.SpeakerLineReader()

    assert reader.feed(b"HEL") == []
    assert reader.feed(b"LO SB-1 CLIPS\r\nDO") == [sp.Hello("SB-1", "CLIPS")]
    assert reader.feed(b"NE 1 50\n\n\x00\x13garbage\nBUSY 2\n") == [sp.Done(1, 50), sp.Busy(2)]
    assert reader.feed(b"x" * 3000 + b"\nDONE 3 1\n") == [sp.Done(3, 1)]
    assert (reader.garbage, reader.overlong) == (1, 1)
    reader.feed(b"DONE 4")
    reader.disconnected()
    assert reader.feed(b" 9\nDONE 5 9\n") == [sp.Done(5, 9)], "an unfinished line is dropped"


# -- the adapter over a pty --------------------------------------------------------------------


@pytest.fixture
def by_id(tmp_path: Path) -> Path:
    path = tmp_path / "serial" / "by-id" / "usb-Acme_Soundbox_SB-00042-if00"
    path.parent.mkdir(parents=True)
    return path


@pytest.fixture
async def box(by_id: Path):
    speaker = PtySpeaker(by_id).start()
    yield speaker
    speaker.unplug()


def utterance(clips=("call-intro", "n1"), words="mời công dân có số thứ tự một", expected_s=0.1):
    return Utterance("ann-1", tuple(clips), words, 22050, None, expected_s)


async def test_open_asks_who_and_sets_the_volume(box, by_id):
    speaker = SerialSpeaker(115200, volume=0.7)
    await speaker.open(str(by_id))

    await wait_until(lambda: box.lines == ["WHO", "VOLUME 70"])
    assert speaker.describe() == "speaker SB-00042, takes clips, pack vi-default@1.0.0"
    await speaker.close()
    await speaker.close()


async def test_a_clips_speaker_gets_play_and_its_done_is_the_duration(box, by_id):
    box.ms = 120
    speaker = SerialSpeaker(115200)
    await speaker.open(str(by_id))

    played = await speaker.play(utterance())
    second = await speaker.play(utterance(clips=("n2",)))

    assert box.lines[2:] == ["PLAY 1 call-intro n1", "PLAY 2 n2"]
    assert played.duration_s == 0.12 and played.elapsed_s >= 0.1
    assert second.duration_s == 0.12
    await speaker.close()


async def test_a_text_speaker_gets_the_words_in_utf8(box, by_id):
    box.hello = "HELLO TTS-9 TEXT"
    speaker = SerialSpeaker(115200)
    await speaker.open(str(by_id))

    await speaker.play(utterance())

    assert box.lines[-1] == "SAY 1 mời công dân có số thứ tự một"
    assert speaker.describe() == "speaker TTS-9, takes text"
    await speaker.close()


@pytest.mark.parametrize("reply, error, message", [
    ("busy", DeviceBusy, "busy"),
    ("fail", NotSaid, "will not say it: clip không có"),
], ids=["busy", "fail"])
async def test_busy_and_fail_answers(box, by_id, reply, error, message):
    box.reply = reply
    speaker = SerialSpeaker(115200)
    await speaker.open(str(by_id))

    with pytest.raises(error, match=message):
        await speaker.play(utterance())
    await speaker.close()


async def test_a_speaker_that_does_not_answer_is_gone(box, by_id, monkeypatch):
    monkeypatch.setattr("devices.soundbox.serial_adapter.ANSWER_MARGIN_S", 0.2)
    box.reply = None
    speaker = SerialSpeaker(115200)
    await speaker.open(str(by_id))

    with pytest.raises(SpeakerGone, match="no DONE 1 from the speaker within 0.3s"):
        await speaker.play(utterance())
    await speaker.close()


async def test_a_silent_port_is_no_speaker(box, by_id, monkeypatch):
    monkeypatch.setattr("devices.soundbox.serial_adapter.HELLO_TIMEOUT_S", 0.2)
    box.hello = None
    speaker = SerialSpeaker(115200)

    with pytest.raises(SpeakerGone, match="no HELLO"):
        await speaker.open(str(by_id))
    await speaker.close()


async def test_a_speaker_that_restarts_mid_announcement_is_gone(box, by_id):
    box.reply = None
    speaker = SerialSpeaker(115200)
    await speaker.open(str(by_id))
    playing = asyncio.create_task(speaker.play(utterance(expected_s=5)))
    await wait_until(lambda: box.lines[-1].startswith("PLAY"))
    box.send(b"HELLO SB-00042 CLIPS\n")

    with pytest.raises(SpeakerGone, match="restarted"):
        await playing
    await speaker.close()


async def test_unplugged_is_gone_for_check_and_play_and_open(box, by_id):
    speaker = SerialSpeaker(115200)
    await speaker.open(str(by_id))
    box.send(b"noise\n")
    await speaker.check()
    assert speaker.describe().endswith("lines skipped: 1 garbage")

    box.unplug()
    with pytest.raises(SpeakerGone):
        await speaker.check()
    with pytest.raises(SpeakerGone):
        await speaker.play(utterance())
    await speaker.close()
    with pytest.raises(SpeakerGone):
        await speaker.open(str(by_id))


# -- the driver through it ----------------------------------------------------------------------


async def test_the_soundbox_says_a_payment_on_a_serial_speaker(by_id, box, built_pack):
    box.ms = 2100
    events = []

    async def record(detail, at):
        events.append(detail)

    config = SoundboxConfig(id="loa-thu-ngan", counters=("2",), output="serial", device=str(by_id),
                            voice_pack=built_pack.root, volume=0.9)
    soundbox = build_soundbox(config, record)
    running = asyncio.create_task(soundbox.run())
    try:
        await wait_until(lambda: soundbox.health().state == "ok")
        message = Announce(id="pay-1", kind="payment", counter="2", amount_vnd=50_000,
                           expires_at=datetime.now(timezone.utc) + timedelta(minutes=2))
        soundbox.announce(message)
        await wait_until(lambda: events)
    finally:
        running.cancel()

    clips = compose(message, built_pack)
    assert box.lines == ["WHO", "VOLUME 90", f"PLAY 1 {' '.join(clips)}"]
    assert (events[0].outcome, events[0].duration_ms, events[0].clips) == ("played", 2100, clips)
    assert soundbox.health().detail.startswith("speaker SB-00042")


async def test_the_soundbox_follows_a_serial_speaker_unplugged_and_back(by_id, box, built_pack,
                                                                     monkeypatch):
    monkeypatch.setattr("devices.soundbox.driver.REOPEN_DELAYS_S", (0.05,))
    monkeypatch.setattr("devices.soundbox.driver.CHECK_EVERY_S", 0.05)
    events = []

    async def record(detail, at):
        events.append(detail)

    config = SoundboxConfig(id="loa", output="serial", device=str(by_id), voice_pack=built_pack.root)
    soundbox: Soundbox = build_soundbox(config, record)
    running = asyncio.create_task(soundbox.run())
    try:
        await wait_until(lambda: soundbox.health().state == "ok")
        box.unplug()
        await wait_until(lambda: soundbox.health().state == "missing")
        box.plug_in()
        await wait_until(lambda: soundbox.health().state == "ok")
        soundbox.announce(Announce(id="call", kind="queue-call", ticket="12", counter="3",
                                   expires_at=datetime.now(timezone.utc) + timedelta(minutes=2)))
        await wait_until(lambda: events)
    finally:
        running.cancel()

    assert events[0].outcome == "played"
    assert box.lines[0] == "WHO" and box.lines[-1].startswith("PLAY 1 call-intro")
