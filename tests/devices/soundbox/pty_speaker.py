"""A serial soundbox played by a test over a real pseudo-terminal, answering as firmware would."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path


class PtySpeaker:
    """The speaker's side of a pty pair; the adapter opens the other side with pyserial.

    ``by_id`` stands for the speaker's ``/dev/serial/by-id/`` link: it exists only while the
    speaker is plugged in. Once `start`ed on the running loop, it answers ``WHO`` with
    ``hello`` (None: silence) and each ``PLAY``/``SAY`` with ``reply`` ("done", "busy",
    "fail" or None for no answer), saying ``DONE <ref> <ms>`` after ``ms`` milliseconds.
    """

    def __init__(self, by_id: Path, *, hello: str | None = "HELLO SB-00042 CLIPS vi-default@1.0.0",
                 reply: str | None = "done", ms: int = 20) -> None:
        self.by_id = by_id
        self.hello = hello
        self.reply = reply
        self.ms = ms
        self.lines: list[str] = []
        self._master = self._slave = -1
        self._partial = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.plug_in()

    @property
    def devnode(self) -> str:
        return os.ttyname(self._slave)

    def plug_in(self) -> None:
        self._master, self._slave = os.openpty()
        os.set_blocking(self._master, False)
        self.lines.clear()
        self.by_id.symlink_to(self.devnode)
        if self._loop is not None:
            self._loop.add_reader(self._master, self._readable)

    def start(self) -> "PtySpeaker":
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._readable)
        return self

    def unplug(self) -> None:
        self.by_id.unlink(missing_ok=True)
        if self._master >= 0:
            if self._loop is not None:
                self._loop.remove_reader(self._master)
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1

    def send(self, data: bytes) -> None:
        os.write(self._master, data)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        self._partial += data
        *complete, self._partial = self._partial.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8")
            self.lines.append(line)
            self._answer(line)

    def _answer(self, line: str) -> None:
        if line == "WHO" and self.hello:
            self.send(self.hello.encode() + b"\n")
        elif (match := re.match(r"(PLAY|SAY) ([0-9]+) ", line)) and self.reply:
            ref = match[2]
            answer = {"done": f"DONE {ref} {self.ms}", "busy": f"BUSY {ref}",
                      "fail": f"FAIL {ref} clip không có"}[self.reply]
            assert self._loop is not None
            self._loop.call_later(self.ms / 1000 if self.reply == "done" else 0,
                                  lambda: self._master >= 0 and self.send(answer.encode() + b"\r\n"))
