"""The sounddevice adapter playing real announcements into a real sound server's null sink,
recorded from its monitor and measured (tests/audio.py): the whole announcement, head to
tail, in the recording by the time `play` returns, with the stream closed; no clipping; the
gaps where clips join.

The five calls' recordings are kept as WAV files in the test's tmp_path (``call-*.wav``).
"""

from __future__ import annotations

import asyncio
import errno

import pytest

from devices.soundbox.adapter import DeviceBusy, SpeakerGone, Utterance
from devices.soundbox.voice_pack import Announcement, compose, render
from tests.audio import clip_joins, hear, pcm_samples

FIVE_CALLS = [
    pytest.param("1023", "5", id="1023-to-5"),  # một nghìn không trăm hai mươi ba
    pytest.param("105", "12", id="105-to-12"),  # một trăm linh năm, mười hai
    pytest.param("21", "15", id="21-to-15"),  # hai mươi mốt, mười lăm
    pytest.param("2024", "1", id="2024-to-1"),
    pytest.param("7", "30", id="7-to-30"),
]


@pytest.fixture
def sounddevice_speaker(sound_server):
    from devices.soundbox.sounddevice_adapter import SounddeviceSpeaker

    return SounddeviceSpeaker(lead_in_s=0.1, tail_s=0.25)


def utterance(built_pack, ticket: str, counter: str) -> tuple[list[str], bytes, Utterance]:
    clips = compose(Announcement("queue-call", ticket=ticket, counter=counter), built_pack)
    pcm = render(clips, built_pack)
    rate = built_pack.info.sample_rate
    return clips, pcm, Utterance(f"call-{ticket}", tuple(clips), "", rate, pcm, len(pcm) / 2 / rate)


@pytest.mark.parametrize("ticket, counter", FIVE_CALLS)
async def test_a_call_reaches_the_sink_whole_before_play_returns(
    sound_server, sounddevice_speaker, built_pack, tmp_path, ticket, counter
):
    clips, pcm, said = utterance(built_pack, ticket, counter)
    rate = built_pack.info.sample_rate
    await sounddevice_speaker.open(None)  # the system's default output, as on a Pi
    assert sounddevice_speaker.describe() == "default (ALSA)"

    with sound_server.recorder(tmp_path / f"call-{ticket}-to-{counter}", rate) as recording:
        played = await sounddevice_speaker.play(said)
        recorded_at_return = recording.seconds()
        streams_at_return = sound_server.sink_inputs()
        await asyncio.sleep(0.3)  # record on: nothing more of it may come
    capture = recording.capture
    heard = hear(capture.samples, pcm_samples(pcm), rate, clip_joins(clips, built_pack))
    timing = sounddevice_speaker.last

    assert heard.similarity > 0.98, heard
    assert (heard.lost_head_ms, heard.lost_tail_ms, heard.lost_ms) == (0, 0, 0), heard
    assert heard.clipped == 0 and heard.peak_dbfs < -0.5, heard
    assert len(heard.gap_dbfs) == len(clips) - 1 and max(heard.gap_dbfs) < -60, heard
    # Played in full before "played": the recording already held the end when play
    # returned, and the stream was closed (a closed stream's unplayed sound is thrown away,
    # so what is in the recording got there before).
    assert recorded_at_return >= heard.end_s, (recorded_at_return, heard)
    assert len(streams_at_return) == 1, f"only the keep-alive should be left: {streams_at_return}"
    assert played.duration_s == pytest.approx(len(pcm) / 2 / rate)
    assert played.elapsed_s >= played.duration_s + 0.1, "lead-in and tail are played too"
    assert timing.tail_s >= max(0.25, 3 * timing.latency_s) and not timing.underflowed
    assert capture.wav.stat().st_size > len(pcm)  # the WAV kept holds all of it


async def test_two_announcements_in_a_row_are_both_whole(sound_server, sounddevice_speaker, built_pack,
                                                         tmp_path):
    first, second = utterance(built_pack, "1023", "5"), utterance(built_pack, "1024", "6")
    rate = built_pack.info.sample_rate
    await sounddevice_speaker.open(None)

    with sound_server.recorder(tmp_path / "two", rate) as recording:
        await sounddevice_speaker.play(first[2])
        await sounddevice_speaker.play(second[2])
        await asyncio.sleep(0.2)
    samples = recording.capture.samples
    one = hear(samples, pcm_samples(first[1]), rate)
    two = hear(samples, pcm_samples(second[1]), rate)

    assert one.similarity > 0.98 and two.similarity > 0.98
    assert (one.lost_ms, two.lost_ms) == (0, 0)
    assert two.start >= one.start + one.length, "one after the other, never mixed"


async def test_an_output_that_is_not_there_is_missing(sound_server, tmp_path):
    from devices.soundbox.sounddevice_adapter import SounddeviceSpeaker

    with pytest.raises(SpeakerGone, match="no audio output matches 'USB Audio'"):
        await SounddeviceSpeaker("USB Audio").open(None)
    with pytest.raises(SpeakerGone, match="no sound card at /dev/snd/controlC7"):
        await SounddeviceSpeaker().open("/dev/snd/controlC7")
    card = tmp_path / "controlC7"  # a card udev has, that PortAudio does not know
    card.touch()
    with pytest.raises(SpeakerGone, match=r"matches '\(hw:7,'"):
        await SounddeviceSpeaker().open(str(card))


async def test_a_card_named_by_udev_identity_is_missing_until_hot_plug_finds_it(sound_server, tmp_path):
    from devices.soundbox.sounddevice_adapter import SounddeviceSpeaker

    speaker = SounddeviceSpeaker(card_required=True)
    with pytest.raises(SpeakerGone, match="not plugged in"):
        await speaker.open(None)


async def test_check_finds_the_output_still_there(sound_server):
    from devices.soundbox.sounddevice_adapter import SounddeviceSpeaker

    speaker = SounddeviceSpeaker("pulse")
    await speaker.open(None)
    await speaker.check()
    assert speaker.describe() == "pulse (ALSA)"


def test_portaudio_errors_mean_busy_gone_or_a_fault(sound_server):
    import sounddevice as sd

    from devices.soundbox.sounddevice_adapter import _failure

    busy = sd.PortAudioError("Device unavailable", -9985)
    held = sd.PortAudioError("Unanticipated host error", -9999, (0, -errno.EBUSY, "Device or resource busy"))
    unplugged = sd.PortAudioError("Unanticipated host error", -9999, (0, -errno.ENODEV, "No such device"))
    rate = sd.PortAudioError("Invalid sample rate", -9997)

    assert isinstance(_failure(busy, opening=True), DeviceBusy)
    assert isinstance(_failure(held, opening=True), DeviceBusy)
    assert isinstance(_failure(unplugged, opening=False), SpeakerGone)
    assert _failure(rate, opening=True) is rate, "a fault, for the supervisor"


def test_a_card_by_its_by_id_link_is_asked_for_by_its_alsa_name(sound_server, tmp_path):
    from devices.soundbox.sounddevice_adapter import output_name, silence

    (tmp_path / "controlC1").touch()
    by_id = tmp_path / "usb-C-Media_USB_Audio_Device-00"
    by_id.symlink_to(tmp_path / "controlC1")
    (tmp_path / "pcmC1D0p").touch()

    assert output_name(str(by_id)) == output_name(str(tmp_path / "controlC1")) == "(hw:1,"
    with pytest.raises(SpeakerGone, match="not a sound card's control device"):
        output_name(str(tmp_path / "pcmC1D0p"))
    assert silence(0.1, 22050) == bytes(4410)
