"""The interface every speaker adapter implements (the node's audio output, a serial speaker,
or the fake), and what goes through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class DeviceBusy(Exception):
    """The output exists but cannot take the announcement now (another program holds the
    audio device; a serial speaker says BUSY). Worth a retry in a moment."""


class SpeakerGone(OSError):
    """The speaker is not there (not plugged in, vanished, or not answering)."""


class NotSaid(Exception):
    """The speaker refused this one announcement (a serial speaker's FAIL: a clip it does not
    have, ...); it serves on."""


@dataclass(frozen=True)
class Utterance:
    """One announcement, ready to say.

    ``clips`` are the voice pack's clip ids and ``words`` what they say; ``pcm`` is the
    rendered sound (16-bit little-endian mono at ``sample_rate``), present when the adapter
    ``wants_pcm``. ``ref`` is the announcement's id, for logs.
    """

    ref: str
    clips: tuple[str, ...]
    words: str
    sample_rate: int
    pcm: bytes | None = None
    expected_s: float = 0.0
    """How long it should take to say: the rendered sound's length, or the pack's estimate."""


@dataclass(frozen=True)
class Played:
    """What an adapter did: ``duration_s`` of announcement said, in ``elapsed_s`` of wall
    time from the start of the output to its end (lead-in and tail silence included)."""

    duration_s: float
    elapsed_s: float
    detail: str | None = None
    """Anything a technician should know (an underflow, the output's latency)."""


class SpeakerAdapter(Protocol):
    wants_pcm: bool
    """True: `play` needs `Utterance.pcm`; False: it sends clip ids or words."""

    async def open(self, path: str | None) -> None:
        """Find and claim the output (``path``: the device hot-plug found, else the configured
        one). Raises OSError (`SpeakerGone`) when it is not there."""

    async def play(self, utterance: Utterance) -> Played:
        """Say ``utterance`` in full; return only once the last of it has reached the device.

        Raises DeviceBusy when the output cannot take it now, NotSaid when it refuses this
        one, OSError when the output is gone. Called one at a time.
        """

    async def check(self) -> None:
        """Raise OSError if the output has gone away since `open` (called while idle)."""

    async def close(self) -> None:
        """Release the output; safe to call twice."""

    def describe(self) -> str | None:
        """What a technician should know about the open output (its name, identity)."""
