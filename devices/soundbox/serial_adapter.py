"""Serial soundboxes with pyserial: open, ask who it is, send PLAY or SAY, wait for DONE.

The protocol itself (framing, parsing, what is skipped) is `serial_protocol`. A network
speaker speaking the same lines over TCP is reached the same way through a pyserial URL
(``device = "socket://10.0.0.7:4001"``).
"""

from __future__ import annotations

import logging
import time

import serial

from devices.readable import wait_readable
from devices.soundbox import serial_protocol as sp
from devices.soundbox.adapter import DeviceBusy, NotSaid, Played, SpeakerGone, Utterance

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 3.0
"""How long an opened speaker has to say HELLO (boards that reset on open need ~2 s)."""
ANSWER_MARGIN_S = 5.0
"""A speaker answers DONE within the announcement's expected length plus this, or is gone."""


class SerialSpeaker:
    """A speaker taking the line protocol of `serial_protocol` (README.md has it in full)."""

    wants_pcm = False

    def __init__(self, baudrate: int, *, volume: float = 1.0) -> None:
        self._baudrate = baudrate
        self._volume = volume
        self._port: serial.Serial | None = None
        self._lines = sp.SpeakerLineReader()
        self._hello: sp.Hello | None = None
        self._ref = 0

    async def open(self, path: str | None) -> None:
        if not path:
            raise SpeakerGone("the speaker is not plugged in")
        try:
            if "://" in path:
                self._port = serial.serial_for_url(path, self._baudrate, timeout=0, write_timeout=1)
            else:
                # exclusive (flock): a second writer would mix its lines into ours.
                self._port = serial.Serial(path, self._baudrate, timeout=0, write_timeout=1,
                                           exclusive=True)
        except serial.SerialException as exc:
            raise SpeakerGone(str(exc)) from None
        self._write(sp.WHO)
        deadline = time.monotonic() + HELLO_TIMEOUT_S
        while self._hello is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpeakerGone(f"no HELLO from the speaker within {HELLO_TIMEOUT_S:.0f}s")
            for message in await self._read(left):
                self._take(message)
        self._write(sp.volume(self._volume))

    async def play(self, utterance: Utterance) -> Played:
        hello = self._hello
        if self._port is None or hello is None:
            raise SpeakerGone("the speaker is not open")
        self._ref = self._ref % 999_999_999 + 1
        ref = self._ref
        try:
            line = (sp.play(ref, utterance.clips) if hello.takes == sp.CLIPS
                    else sp.say(ref, utterance.words))
        except sp.ProtocolError as exc:
            raise NotSaid(str(exc)) from None
        began = time.monotonic()
        self._write(line)
        allowed = utterance.expected_s + ANSWER_MARGIN_S
        deadline = began + allowed
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpeakerGone(f"no DONE {ref} from the speaker within {allowed:.1f}s")
            for message in await self._read(left):
                if isinstance(message, sp.Hello):
                    self._take(message)
                    raise SpeakerGone("the speaker restarted while saying it")
                if getattr(message, "ref", None) != ref:
                    continue  # an answer to something before, given up on
                if isinstance(message, sp.Done):
                    return Played(message.ms / 1000, time.monotonic() - began)
                if isinstance(message, sp.Busy):
                    raise DeviceBusy("the speaker is busy")
                if isinstance(message, sp.Fail):
                    raise NotSaid(f"the speaker will not say it: {message.reason}")

    async def check(self) -> None:
        port = self._port
        if port is None:
            raise SpeakerGone("the speaker is not open")
        try:
            waiting = port.in_waiting
            data = port.read(waiting) if waiting else b""
        except (serial.SerialException, OSError) as exc:
            raise SpeakerGone(f"the speaker went away: {exc}") from None
        for message in self._lines.feed(data):
            self._take(message)

    async def close(self) -> None:
        port, self._port = self._port, None
        self._lines.disconnected()
        self._hello = None
        if port is not None:
            port.close()

    def describe(self) -> str | None:
        hello = self._hello
        if hello is None:
            return "speaker not identified"
        who = f"speaker {hello.serial}, takes {hello.takes.lower()}"
        if hello.pack:
            who += f", pack {hello.pack}"
        counts = ((self._lines.garbage, "garbage"), (self._lines.overlong, "overlong"))
        skipped = ", ".join(f"{n} {what}" for n, what in counts if n)
        return f"{who}; lines skipped: {skipped}" if skipped else who

    # -- the port --------------------------------------------------------------------------

    def _take(self, message: sp.SpeakerLine) -> None:
        if isinstance(message, sp.Hello):
            if self._hello is not None and message != self._hello:
                log.info("serial speaker is now %s (was %s)", message.serial, self._hello.serial)
            self._hello = message

    def _write(self, data: bytes) -> None:
        assert self._port is not None
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:  # SerialTimeoutException too: nobody reads
            raise SpeakerGone(f"cannot write to the speaker: {exc}") from None

    async def _read(self, timeout: float) -> list[sp.SpeakerLine]:
        """The messages completed by what arrives within ``timeout`` (maybe none).

        Raises SpeakerGone when the port fails: a vanished USB serial device, like a closed
        pty, reads as an I/O error.
        """
        port = self._port
        assert port is not None, "read before open"
        if not await wait_readable(port.fileno(), timeout):
            return []
        try:
            data = port.read(port.in_waiting or 1)
        except (serial.SerialException, OSError) as exc:
            raise SpeakerGone(f"the speaker went away: {exc}") from None
        return self._lines.feed(data)
