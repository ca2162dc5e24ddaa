"""The node's audio output through sounddevice (PortAudio): the only module that imports it.

Saying an announcement in full is this module's one job, and PortAudio does not make it
easy: with ALSA (and ALSA's PulseAudio plugin) neither ``sounddevice.play`` + ``wait`` nor a
blocking write followed by ``stop`` waits for the last buffers to reach the device; stopping
or closing the stream throws away whatever the stream and the sound server still hold, about
the output's latency (23-37 ms seen before; 41 ms measured here with a stream latency of
35 ms: the end of the last syllable). So:

- the sound goes out through a blocking `RawOutputStream` write, after ``lead_in_s`` of
  silence (an amplifier or USB speaker waking up eats the first milliseconds of a stream);
- it is followed by a silence tail of ``tail_s``, and at least three times the latency the
  stream reports, so that what the stop throws away is silence;
- only then is the stream stopped and closed, and `play` returns.

tests/devices/soundbox/test_sounddevice_adapter.py records what reaches a real sound
server's sink and checks that the whole announcement is in the recording by the time `play`
returns.

PortAudio lists devices once, when it starts; a speaker plugged in later is found by
starting it again (`_rescan`), which is why every PortAudio call in the process goes through
one lock.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import threading
import time
from dataclasses import dataclass

import sounddevice as sd

from devices.soundbox.adapter import DeviceBusy, Played, SpeakerGone, Utterance

LATENCY = "high"
"""PortAudio's suggested output latency: a Pi running Python is better off with more buffer."""
TAIL_LATENCIES = 3
"""The silence tail is at least this many times the stream's reported output latency."""

PA_INVALID_DEVICE = -9996
PA_DEVICE_UNAVAILABLE = -9985
PA_UNANTICIPATED_HOST_ERROR = -9999

_PORTAUDIO = threading.Lock()
"""One PortAudio user at a time in this process: a rescan restarts the library under every
open stream."""
_CARD = re.compile(r"controlC([0-9]+)")


@dataclass(frozen=True)
class Timing:
    """When each step of the last `play` ended, in seconds after the stream was opened."""

    started: float
    written: float
    stopped: float
    closed: float
    latency_s: float
    tail_s: float
    underflowed: bool


class SounddeviceSpeaker:
    """A loudspeaker on the node's audio output (the Pi's jack, HDMI, a USB sound card)."""

    wants_pcm = True

    def __init__(self, name: str | None = None, *, card_required: bool = False,
                 lead_in_s: float = 0.1, tail_s: float = 0.25) -> None:
        """``name``: the output to use when no card path is given (None: the default output);
        ``card_required``: only a card path will do (the config names the card by udev
        identity, and hot-plug has not found it yet)."""
        self._configured = name
        self._card_required = card_required
        self._path: str | None = None
        self._lead_in_s = lead_in_s
        self._tail_s = tail_s
        self._wanted: str | None = None
        self._index: int | None = None
        self._name: str | None = None
        self.last: Timing | None = None
        """How the last `play` went (tests measure it)."""

    async def open(self, path: str | None) -> None:
        """Find the output: the sound card at ``path`` (its ``/dev/snd/by-id/`` link, or the
        ``/dev/snd/controlCN`` hot-plug found), else the output named in the config (a name
        or part of one, as ``python3 -m sounddevice`` lists it), else the default output."""
        if not path and self._card_required:
            raise SpeakerGone("the sound card is not plugged in")
        self._path = path
        self._wanted = output_name(path) if path else self._configured
        self._index, self._name = await asyncio.to_thread(self._find)

    async def play(self, utterance: Utterance) -> Played:
        assert utterance.pcm is not None, "the sounddevice speaker takes rendered sound"
        if self._index is None:
            raise SpeakerGone("the output is not open")
        timing = await asyncio.to_thread(self._play, utterance.pcm, utterance.sample_rate)
        self.last = timing
        detail = f"output latency {timing.latency_s * 1000:.0f} ms"
        if timing.underflowed:
            detail += "; the output ran dry (underflow): a gap may be heard"
        return Played(len(utterance.pcm) / 2 / utterance.sample_rate, timing.closed, detail)

    async def check(self) -> None:
        """A card opened by its path must still have it. (No rescan: PortAudio's probe opens
        every ALSA device, and may leave out, as absent, one another program is playing on.)"""
        if self._index is None:
            raise SpeakerGone("the output is not open")
        if self._path is not None:
            output_name(self._path)

    async def close(self) -> None:
        self._index = None

    def describe(self) -> str | None:
        return self._name

    # -- in a worker thread ---------------------------------------------------------------

    def _find(self) -> tuple[int, str]:
        with _PORTAUDIO:
            try:
                return self._lookup()
            except SpeakerGone:
                pass
            _rescan()  # plugged in since PortAudio started?
            return self._lookup()

    def _lookup(self) -> tuple[int, str]:
        wanted = self._wanted
        try:
            info = sd.query_devices(wanted, kind="output")
        except sd.PortAudioError as exc:
            raise SpeakerGone(f"no audio output: {exc}") from None
        except ValueError as exc:
            if str(exc).startswith("No "):
                raise SpeakerGone(f"no audio output matches {wanted!r}") from None
            raise  # several outputs match: the config must say which
        hostapi = sd.query_hostapis(info["hostapi"])["name"]
        return info["index"], f"{info['name']} ({hostapi})"

    def _play(self, pcm: bytes, rate: int) -> Timing:
        with _PORTAUDIO:
            index, _ = self._lookup()  # by name: a rescan since open may have renumbered them
            began = time.monotonic()
            try:
                stream = sd.RawOutputStream(samplerate=rate, channels=1, dtype="int16",
                                            device=index, latency=LATENCY)
            except sd.PortAudioError as exc:
                raise _failure(exc, opening=True) from None
            try:
                stream.start()
                started = time.monotonic() - began
                latency = float(stream.latency)
                tail_s = max(self._tail_s, TAIL_LATENCIES * latency)
                sound = silence(self._lead_in_s, rate) + pcm + silence(tail_s, rate)
                underflowed = stream.write(sound)
                written = time.monotonic() - began
                stream.stop()
                stopped = time.monotonic() - began
            except sd.PortAudioError as exc:
                raise _failure(exc, opening=False) from None
            finally:
                stream.close(ignore_errors=True)
            return Timing(started, written, stopped, time.monotonic() - began, latency, tail_s,
                          bool(underflowed))


def output_name(path: str) -> str:
    """What to ask PortAudio for the sound card at ``path`` (``/dev/snd/controlCN``, or a
    ``/dev/snd/by-id/`` link to it): its ALSA name, ``(hw:N,``. SpeakerGone when the link
    leads nowhere (the card is unplugged)."""
    resolved = os.path.realpath(path)
    if not os.path.exists(resolved):
        raise SpeakerGone(f"no sound card at {path}")
    card = _CARD.fullmatch(os.path.basename(resolved))
    if card is None:
        raise SpeakerGone(f"{path} is not a sound card's control device (/dev/snd/controlCN)")
    return f"(hw:{card.group(1)},"


def silence(seconds: float, rate: int) -> bytes:
    return bytes(2 * round(seconds * rate))


def _rescan() -> None:
    # sounddevice has no public call for it; these two are what its maintainers advise.
    sd._terminate()
    sd._initialize()


def _failure(exc: sd.PortAudioError, *, opening: bool) -> Exception:
    """What a PortAudio error means for the soundbox: busy, gone, or a fault."""
    code = exc.args[1] if len(exc.args) > 1 else None
    host = exc.args[2] if len(exc.args) > 2 else None
    host_errno = -host[1] if isinstance(host, tuple) and len(host) > 1 and host[1] else None
    if code == PA_DEVICE_UNAVAILABLE or host_errno == errno.EBUSY:
        return DeviceBusy(f"the audio output is in use by another program ({exc.args[0]})")
    if code == PA_INVALID_DEVICE or host_errno in (errno.ENODEV, errno.ENOENT, errno.EIO):
        return SpeakerGone(f"the audio output went away ({exc.args[0]})")
    if not opening and code == PA_UNANTICIPATED_HOST_ERROR:
        return SpeakerGone(f"the audio output failed while playing ({exc.args[0]})")
    return exc
