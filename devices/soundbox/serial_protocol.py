"""The serial soundbox line protocol (version 1), pure bytes in and out (README.md has it for
speaker makers).

    agent -> speaker  WHO                          say HELLO (sent on every open)
                      VOLUME <0-100>               loudness from now on
                      PLAY <ref> <clip> <clip> ..  say these clips of the voice pack, in order
                      SAY <ref> <words>            say these words (speakers that speak)
    speaker -> agent  HELLO <serial> <CLIPS|TEXT> [<pack>]   who it is, what it takes
                      DONE <ref> <ms>              all of <ref> said, in <ms> milliseconds
                      BUSY <ref>                   cannot say <ref> now (nothing of it said)
                      FAIL <ref> <reason>          will not say <ref> (an unknown clip, ...)

Lines end in LF (a CR before it is accepted) and are UTF-8; only SAY and FAIL carry more than
ASCII. A line is at most MAX_LINE bytes before its terminator.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from devices.line_reader import LineReader

MAX_LINE = 1024
WHO = b"WHO\n"
CLIPS, TEXT = "CLIPS", "TEXT"

_REF = r"([0-9]{1,9})"
_HELLO = re.compile(r"HELLO ([A-Za-z0-9._-]{1,32}) (CLIPS|TEXT)(?: ([a-z0-9][a-z0-9._@-]{0,80}))?")
_DONE = re.compile(rf"DONE {_REF} ([0-9]{{1,9}})")
_BUSY = re.compile(rf"BUSY {_REF}")
_FAIL = re.compile(rf"FAIL {_REF}(?: (.{{1,200}}))?")
_CLIP = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class ProtocolError(ValueError):
    """Something the agent was asked to send that the protocol cannot carry."""


@dataclass(frozen=True)
class Hello:
    serial: str
    takes: str
    """CLIPS (it holds the voice pack's clips) or TEXT (it speaks words itself)."""
    pack: str | None = None


@dataclass(frozen=True)
class Done:
    ref: int
    ms: int


@dataclass(frozen=True)
class Busy:
    ref: int


@dataclass(frozen=True)
class Fail:
    ref: int
    reason: str


SpeakerLine = Hello | Done | Busy | Fail


def parse_line(line: bytes) -> SpeakerLine | None:
    """The message in one line (terminator removed), or None when it is not one."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if match := _DONE.fullmatch(text):
        return Done(int(match[1]), int(match[2]))
    if match := _BUSY.fullmatch(text):
        return Busy(int(match[1]))
    if match := _FAIL.fullmatch(text):
        return Fail(int(match[1]), match[2] or "no reason given")
    if match := _HELLO.fullmatch(text):
        return Hello(match[1], match[2], match[3])
    return None


def volume(level: float) -> bytes:
    """``VOLUME n`` for a level of 0..1."""
    if not 0 <= level <= 1:
        raise ProtocolError(f"volume {level} is not within 0..1")
    return b"VOLUME %d\n" % round(level * 100)


def play(ref: int, clips: list[str] | tuple[str, ...]) -> bytes:
    """``PLAY`` for ``clips``; ProtocolError for a bad clip id or a line too long."""
    bad = [clip for clip in clips if not _CLIP.fullmatch(clip)]
    if bad or not clips:
        raise ProtocolError(f"not clip ids: {bad or 'none given'}")
    return _line(f"PLAY {ref} {' '.join(clips)}")


def say(ref: int, words: str) -> bytes:
    """``SAY`` for ``words`` (letters and spaces, NFC); ProtocolError otherwise."""
    words = " ".join(unicodedata.normalize("NFC", words).split())
    if not words or not all(ch.isalpha() or ch == " " for ch in words):
        raise ProtocolError(f"SAY takes letters and spaces, not {words!r}")
    return _line(f"SAY {ref} {words}")


def _line(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > MAX_LINE:
        raise ProtocolError(f"{len(data)} bytes is longer than a line may be ({MAX_LINE})")
    return data + b"\n"


class SpeakerLineReader(LineReader[SpeakerLine]):
    """Cuts what a speaker sends into messages, whatever pieces it arrives in.

    Lines that are not messages, and lines longer than MAX_LINE, are skipped and counted;
    empty lines are ignored; `disconnected` drops an unfinished line.
    """

    def __init__(self) -> None:
        super().__init__(parse_line, MAX_LINE)
