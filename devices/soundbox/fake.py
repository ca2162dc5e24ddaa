"""A speaker in memory, behind the same interface as the real adapters.

It keeps every utterance it was given (`said`) and takes ``speed`` x the sound's length to
say each (0: at once), or, with a ``gate``, until the test opens it. Tests unplug it, make it
busy or make it fail; the demo uses it as is.
"""

from __future__ import annotations

import asyncio
import time

from devices.soundbox.adapter import DeviceBusy, Played, SpeakerGone, Utterance


class FakeSpeaker:
    def __init__(self, *, speed: float = 0.0, wants_pcm: bool = True) -> None:
        self.wants_pcm = wants_pcm
        self.speed = speed
        self.present = True
        self.busy_for = 0
        """The next this many plays raise DeviceBusy."""
        self.said: list[Utterance] = []
        self.started: list[str] = []
        """Refs in the order playing began (a play still going is here and not in `said`)."""
        self.is_open = False
        self.failure: Exception | None = None
        self.gate: asyncio.Event | None = None
        """When set to an Event, each play lasts until the Event is set."""
        self.opened: list[str | None] = []
        """The path of every successful open."""

    async def open(self, path: str | None = None) -> None:
        if not self.present:
            raise SpeakerGone("the fake speaker is unplugged")
        self.is_open = True
        self.opened.append(path)

    async def play(self, utterance: Utterance) -> Played:
        if not (self.present and self.is_open):
            raise SpeakerGone("the fake speaker is unplugged")
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        if self.busy_for:
            self.busy_for -= 1
            raise DeviceBusy("the fake speaker is busy")
        self.started.append(utterance.ref)
        began = time.monotonic()
        if self.speed:
            await asyncio.sleep(utterance.expected_s * self.speed)
        if self.gate is not None:
            await self.gate.wait()
        if not self.present:  # unplugged while saying it
            raise SpeakerGone("the fake speaker was unplugged while playing")
        self.said.append(utterance)
        return Played(utterance.expected_s, time.monotonic() - began if self.speed else
                      utterance.expected_s)

    async def check(self) -> None:
        if not self.present:
            raise SpeakerGone("the fake speaker is unplugged")

    def unplug(self) -> None:
        self.present = False

    def plug_in(self) -> None:
        self.present = True

    async def close(self) -> None:
        self.is_open = False

    def describe(self) -> str | None:
        return "fake speaker"
