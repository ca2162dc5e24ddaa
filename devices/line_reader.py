"""Cutting what a serial device sends into messages, one per line, whatever pieces
the bytes arrive in. Shared by the line protocols of serial peripherals."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

Message = TypeVar("Message")


class LineReader(Generic[Message]):
    """Lines that ``parse`` does not take (noise, a wrong baud rate, another firmware)
    are skipped and counted in ``garbage``, as are lines longer than ``max_line``
    (``overlong``). Empty lines are ignored. A line still unfinished when the device
    goes away is dropped by `disconnected` (``cut_off``), never glued to what the
    device sends after it returns."""

    def __init__(self, parse: Callable[[bytes], Message | None], max_line: int) -> None:
        self._parse = parse
        self._max_line = max_line
        self._partial = bytearray()
        self._overflowed = False
        self.garbage = 0
        self.overlong = 0
        self.cut_off = 0

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data``, in order."""
        messages: list[Message] = []
        *complete, rest = bytes(data).split(b"\n")
        for piece in complete:
            line = self._take(piece)
            if line is None:
                continue
            message = self._parse(line)
            if message is None:
                self.garbage += 1
            else:
                messages.append(message)
        self._keep(rest)
        return messages

    def disconnected(self) -> None:
        """The device went away: forget the unfinished line."""
        if self._partial or self._overflowed:
            self.cut_off += 1
        self._partial.clear()
        self._overflowed = False

    def _take(self, piece: bytes) -> bytes | None:
        """The complete line ending with ``piece``; None if it was overlong or empty."""
        self._keep(piece)
        line, overflowed = bytes(self._partial), self._overflowed
        self._partial.clear()
        self._overflowed = False
        if overflowed:
            return None
        return line.removesuffix(b"\r") or None

    def _keep(self, piece: bytes) -> None:
        if self._overflowed:
            return
        self._partial += piece
        if len(self._partial) > self._max_line + 1:  # + 1: room for a CR before the LF
            self._partial.clear()
            self._overflowed = True
            self.overlong += 1
