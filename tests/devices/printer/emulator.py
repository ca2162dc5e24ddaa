"""A small ESC/POS ticket printer on a real pseudo-terminal, for tests of the real driver.

The driver opens the slave side through a stable link (as it opens
/dev/serial/by-id/usb-...-if00 or /dev/usb/lp0); the emulator plays the printer on the master
side in its own thread, as independent of the driver as a printer is:

- it parses the ESC/POS stream (text with its size and weight, GS v 0 rasters, GS ( k QR
  codes, feeds, cuts) into `tickets`, and keeps what it could not parse in `unknown`;
- it takes real-time commands (DLE EOT n, DLE DC4 fn 8) out of the stream wherever they
  come, even inside image data, and answers the status queries at once, as printers do;
- everything else is processed in order, and paper runs out by the dot: with ``paper_dots``
  set, the printer stops in the middle of whatever uses up the roll, keeps the rest of the
  stream in its buffer and says "paper end" until `load_paper`;
- its cover opens and closes, it goes offline with an error, it stops answering (``mute``:
  switched off behind a USB-serial adapter), and it vanishes and comes back (`unplug`,
  `plug_in`: a new pty, the link pointing at it, as a replugged device gets a new node).
"""

from __future__ import annotations

import os
import select
import threading
import tty
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

LINE_DOTS = 30
"""Paper used by one text line at size 1 (24-dot font plus spacing), and by one feed line."""


@dataclass(frozen=True)
class Text:
    text: str
    width: int = 1
    height: int = 1
    bold: bool = False
    align: int = 0


@dataclass(frozen=True)
class Raster:
    image: Image.Image
    """Black on white, mode "1"."""
    align: int = 0


@dataclass(frozen=True)
class Qr:
    data: str
    module: int
    correction: int


@dataclass(frozen=True)
class Feed:
    lines: int


@dataclass
class PrintedTicket:
    """What came out of the printer between two cuts (or before the paper ran out)."""

    elements: list = field(default_factory=list)
    cut: bool = False
    cut_short: bool = False
    """The paper ran out while printing it."""

    def texts(self) -> list[str]:
        return [e.text for e in self.elements if isinstance(e, Text)]

    def rasters(self) -> list[Image.Image]:
        return [e.image for e in self.elements if isinstance(e, Raster)]

    def qrs(self) -> list[Qr]:
        return [e for e in self.elements if isinstance(e, Qr)]


class EscPosPrinter:
    """The printer itself, without a line: `feed` it bytes, get its answers back."""

    def __init__(self, *, paper_dots: int | None = None, near_end_dots: int = 0,
                 cp1258_table: int | None = None) -> None:
        self.paper_dots = paper_dots
        """Paper left on the roll in dots (None: endless)."""
        self.near_end_dots = near_end_dots
        self.cp1258_table = cp1258_table
        """The ESC t number this printer has Windows-1258 under (None: it has none)."""
        self.cover_open = False
        self.cover_opens_after_dots: int | None = None
        """Open the cover by itself once this many more dots are printed (mid-ticket)."""
        self.error = False
        self.mute = False
        """Switched off (behind a USB-serial adapter that stays): takes and answers nothing."""
        self.tickets: list[PrintedTicket] = []
        self.cut_short: list[PrintedTicket] = []
        self.unknown: list[bytes] = []
        self.status_queries = 0
        self.buffers_cleared = 0
        self.received = bytearray()
        self._pending = bytearray()
        self._realtime = bytearray()
        self._current = PrintedTicket()
        self._reset_modes()

    def feed(self, data: bytes) -> bytes:
        """The printer receives ``data``: what it answers (status bytes, GS r answers)."""
        self.received += data
        answers = self._arrive(data)
        answers += self._process()
        return bytes(answers)

    def resume(self) -> bytes:
        """Carry on with what is buffered (after paper is loaded, the cover closed...)."""
        return bytes(self._process())

    @property
    def stopped(self) -> bool:
        """Not printing: out of paper, cover open or in error."""
        return self.paper_out or self.cover_open or self.error

    @property
    def paper_out(self) -> bool:
        return self.paper_dots is not None and self.paper_dots <= 0

    @property
    def printing(self) -> PrintedTicket:
        """What is on the paper since the last cut."""
        return self._current

    # -- the line ------------------------------------------------------------------------

    def _arrive(self, data: bytes) -> bytearray:
        """Take real-time commands out of the arriving bytes; queue the rest in order."""
        answers = bytearray()
        for byte in data:
            if self._realtime or byte == 0x10:
                self._realtime.append(byte)
                rt = bytes(self._realtime)
                if len(rt) >= 2 and rt[1] not in (0x04, 0x14):
                    self._pending += rt  # a DLE that starts no real-time command
                    self._realtime.clear()
                elif len(rt) == 3 and rt[1] == 0x04:
                    self._realtime.clear()
                    if 1 <= rt[2] <= 4:
                        self.status_queries += 1
                        answers.append(self._status(rt[2]))
                    else:
                        self.unknown.append(rt)
                elif len(rt) == 10 and rt[1] == 0x14:
                    self._realtime.clear()
                    if rt == b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08":
                        self._pending.clear()
                        self.buffers_cleared += 1
                    else:
                        self.unknown.append(rt)
            else:
                self._pending.append(byte)
        return answers

    def _status(self, n: int) -> int:
        byte = 0x12
        if n == 1 and self.stopped:
            byte |= 0x08
        elif n == 2:
            byte |= ((0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0)
                     | (0x40 if self.error else 0))
        elif n == 3 and self.error:
            byte |= 0x20
        elif n == 4:
            near = self.paper_dots is not None and self.paper_dots <= self.near_end_dots
            byte |= (0x0C if near else 0) | (0x60 if self.paper_out else 0)
        return byte

    # -- the print engine ------------------------------------------------------------------

    def _reset_modes(self) -> None:
        self._align = 0
        self._bold = False
        self._width = self._height = 1
        self._table = 0
        self._line = bytearray()
        self._qr_store = b""
        self._qr_module = 3
        self._qr_correction = 48

    def _process(self) -> bytearray:
        """Run the queued commands in order until one is incomplete or the printer stops."""
        answers = bytearray()
        while self._pending and not self.stopped:
            used = self._command(bytes(self._pending), answers)
            if used == 0:
                break
            del self._pending[:used]
        return answers

    def _command(self, buf: bytes, answers: bytearray) -> int:
        """Carry out the command at the start of ``buf``; the bytes it used (0: incomplete)."""
        first = buf[0]
        if first == 0x0A:
            self._print_line()
            return 1
        if first not in (0x1B, 0x1D):
            if first < 0x20:
                self.unknown.append(buf[:1])
            else:
                self._line.append(first)
            return 1
        if len(buf) < 2:
            return 0
        cmd = buf[:2]
        fixed = {b"\x1b@": 2, b"\x1ba": 3, b"\x1bE": 3, b"\x1bt": 3, b"\x1bd": 3, b"\x1d!": 3,
                 b"\x1dr": 3}
        if cmd in fixed:
            if len(buf) < fixed[cmd]:
                return 0
            self._simple(cmd, buf[2] if fixed[cmd] == 3 else 0, answers)
            return fixed[cmd]
        if cmd == b"\x1dV":
            if len(buf) < 3:
                return 0
            size = 4 if buf[2] in (65, 66) else 3
            if len(buf) < size:
                return 0
            self._cut()
            return size
        if cmd == b"\x1dv":
            if len(buf) < 8:
                return 0
            width_bytes = int.from_bytes(buf[4:6], "little")
            height = int.from_bytes(buf[6:8], "little")
            end = 8 + width_bytes * height
            if len(buf) < end or buf[2] != 0x30:
                return 0 if len(buf) < end else self._junk(buf[:3])
            ink = Image.frombytes("1", (width_bytes * 8, height), buf[8:end])
            image = ImageOps.invert(ink.convert("L")).convert("1", dither=Image.Dither.NONE)
            self._put(Raster(image, self._align), height)
            return end
        if cmd == b"\x1d(":
            if len(buf) < 5:
                return 0
            end = 5 + int.from_bytes(buf[3:5], "little")
            if len(buf) < end:
                return 0
            self._function(buf[2:3], buf[5:end])
            return end
        return self._junk(cmd)

    def _junk(self, data: bytes) -> int:
        self.unknown.append(data)
        return len(data)

    def _simple(self, cmd: bytes, n: int, answers: bytearray) -> None:
        if cmd == b"\x1b@":
            self._reset_modes()
        elif cmd == b"\x1ba":
            self._align = n
        elif cmd == b"\x1bE":
            self._bold = bool(n & 1)
        elif cmd == b"\x1bt":
            self._table = n
        elif cmd == b"\x1d!":
            self._width, self._height = (n >> 4) + 1, (n & 7) + 1
        elif cmd == b"\x1bd":
            self._print_line_if_any()
            self._put(Feed(n), n * LINE_DOTS)
        elif cmd == b"\x1dr":
            near = self.paper_dots is not None and self.paper_dots <= self.near_end_dots
            answers.append(0x03 if near else 0x00)

    def _function(self, kind: bytes, body: bytes) -> None:
        if kind != b"k" or len(body) < 2 or body[0] != 0x31:
            self.unknown.append(b"\x1d(" + kind + body)
            return
        fn, params = body[1], body[2:]
        if fn == 0x41:
            pass  # model
        elif fn == 0x43:
            self._qr_module = params[0]
        elif fn == 0x45:
            self._qr_correction = params[0]
        elif fn == 0x50:
            self._qr_store = params[1:]
        elif fn == 0x51:
            qr = Qr(self._qr_store.decode("utf-8"), self._qr_module, self._qr_correction)
            self._put(qr, 33 * self._qr_module)
        else:
            self.unknown.append(b"\x1d(k" + body)

    def _print_line_if_any(self) -> None:
        if self._line:
            self._print_line()

    def _print_line(self) -> None:
        raw = bytes(self._line)
        self._line.clear()
        encoding = "cp1258" if self._table == self.cp1258_table else "cp437"
        text = raw.decode(encoding, "replace")
        if encoding == "cp1258":
            text = unicodedata.normalize("NFC", text)
        self._put(Text(text, self._width, self._height, self._bold, self._align),
                  LINE_DOTS * self._height)

    def _put(self, element, dots: int) -> None:
        """Print ``element``, using ``dots`` of paper; the paper or the cover may stop it."""
        if self.cover_opens_after_dots is not None:
            self.cover_opens_after_dots -= dots
            if self.cover_opens_after_dots <= 0:
                self.cover_opens_after_dots = None
                self.cover_open = True
                self._current.elements.append(element)
                self._current.cut_short = True
                return
        if self.paper_dots is not None:
            self.paper_dots -= dots
            if self.paper_dots <= 0:
                self.paper_dots = 0
                self._current.cut_short = True
        self._current.elements.append(element)

    def _cut(self) -> None:
        self._print_line_if_any()
        self._current.cut = True
        self.tickets.append(self._current)
        self._current = PrintedTicket()

    def _abandon_current(self) -> None:
        if self._current.elements:
            self.cut_short.append(self._current)
        self._current = PrintedTicket()


class PrinterEmulator(EscPosPrinter):
    """The printer on the master side of a pty, served by its own thread."""

    def __init__(self, link: Path, **printer) -> None:
        super().__init__(**printer)
        self.link = link
        self._lock = threading.RLock()
        self._master = self._slave = -1
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        self.plug_in()

    # -- what the test does ------------------------------------------------------------------

    @property
    def devnode(self) -> str:
        return os.ttyname(self._slave)

    def plug_in(self) -> None:
        with self._lock:
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)  # a printer's port passes bytes untouched
            self._pending.clear()
            self._realtime.clear()
            staged = self.link.with_name(self.link.name + ".new")
            staged.unlink(missing_ok=True)
            os.symlink(self.devnode, staged)
            os.replace(staged, self.link)  # the link changes target atomically, as udev's do
            self._stop = False
            self._thread = threading.Thread(target=self._serve, args=(self._master,), daemon=True)
            self._thread.start()

    def unplug(self) -> None:
        """The cable is pulled (or the power): the link goes, the driver's port fails."""
        with self._lock:
            self._stop = True
            self.link.unlink(missing_ok=True)
        self._kick()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            for fd in (self._master, self._slave):
                if fd >= 0:
                    os.close(fd)
            self._master = self._slave = -1
            self._abandon_current()

    def power_cycle(self) -> None:
        self.unplug()
        self.plug_in()

    def load_paper(self, dots: int | None = None) -> None:
        with self._lock:
            self.paper_dots = dots
            self._abandon_current()
        self._kick()

    def set_cover(self, open_: bool) -> None:
        """Open or close the cover; closing it, the technician tears off what was printed."""
        with self._lock:
            self.cover_open = open_
            if not open_:
                self._abandon_current()
        self._kick()

    def set_error(self, error: bool) -> None:
        with self._lock:
            self.error = error
        self._kick()

    def close(self) -> None:
        self.unplug()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- the printer's side of the line ----------------------------------------------------

    def _serve(self, master: int) -> None:
        while not self._stop:
            ready, _, _ = select.select([master, self._wake_r], [], [], 1.0)
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            data = b""
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""  # nobody has the slave open: nothing to read
            with self._lock:
                if self._stop:
                    return
                if self.mute:
                    continue  # switched off behind its USB-serial adapter: bytes are lost
                answers = self.feed(data)
            if answers:
                os.write(master, bytes(answers))

    def _kick(self) -> None:
        os.write(self._wake_w, b"k")

