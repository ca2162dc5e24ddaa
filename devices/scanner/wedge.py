"""Keyboard-wedge readers: key events in, exact codes out. Pure: no I/O, no clock.

A wedge reader "types" each code as key presses on a USB keyboard. The
decoder keeps what a keyboard would keep (held Shift, Caps Lock) and turns
presses into characters with the US layout (`devices.scanner.layout`).

Contract:

- A read ends at the terminator key (``enter``: Enter or keypad Enter;
  ``tab``: Tab), or with terminator ``none`` once no key came for the
  inter-key timeout. With a terminator, a read whose keys stop for the timeout
  before it is reported **partial**; the keys that come later start a new read,
  never glued to it.
- Only key-downs type. Key-ups and the kernel's auto-repeats (value 2) do not:
  a repeat is the input layer's echo of a key held down (after 250 ms by
  default), so it says only that the read is still going on.
- Shift counts while held; Caps Lock toggles upper case for letters only
  (digits and punctuation follow Shift alone) and stays toggled across reads,
  as on a keyboard.
- A key that types nothing in the layout (F-keys, arrows) or a key typed
  while Ctrl/Alt/Meta is held becomes U+FFFD: a read is exact or visibly
  damaged, never silently shortened.
- **Lost key-ups.** The kernel does not lose events without saying so, but a
  reader opened mid-code, or a kernel buffer overflow, leaves the decoder
  believing a modifier is still held. So held modifiers are forgotten at the
  end of every read (terminator, timeout) and after any silence of the
  timeout: a modifier only counts for keys that follow it within the inter-key
  timeout. A key-up of a key never seen down is ignored. A key pressed twice
  without a key-up between types twice.
- ``SYN_DROPPED`` (the kernel's "events were lost" marker): the read in
  progress is reported partial, modifiers are forgotten, events up to the
  next ``SYN_REPORT`` are ignored (as the kernel's input documentation asks),
  and the next read is partial too, because it may have begun among the lost
  events.
- A read longer than ``max_length`` characters is reported in pieces of
  ``max_length``, each partial.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from devices.scanner import layout
from devices.scanner.reads import EVENTS_DROPPED, KEY_DOWN, KEY_UP, REPORT_END, KeyEvent, Read

WedgeTerminator = Literal["enter", "tab", "none"]
UNTYPABLE = "\ufffd"


class WedgeDecoder:
    """Assembles key events from one wedge reader into reads (see the module doc)."""

    def __init__(
        self, terminator: WedgeTerminator, timeout_s: float, max_length: int = 4096
    ) -> None:
        self._terminator = terminator
        self._timeout_s = timeout_s
        self._max_length = max_length
        self._typed: list[str] = []
        self._started: datetime | None = None
        self._last_mono: float | None = None
        self._shift: set[str] = set()
        self._chord: set[str] = set()
        self._caps = False
        self._damaged = False
        """The read in progress, or the next one, may be incomplete."""
        self._resyncing = False
        """Events were dropped: ignore the rest of the packet."""

    # the Assembler interface ------------------------------------------------

    def feed(self, event: KeyEvent) -> list[Read]:
        """Take one event; return the reads it completed (usually none)."""
        reads = self._expire_before(event.mono)
        if event.code == EVENTS_DROPPED:
            reads += self._end(partial=True)
            self._damaged = self._resyncing = True
            self._last_mono = event.mono
            return reads
        if event.code == REPORT_END:
            self._resyncing = False
            return reads
        if self._resyncing:
            return reads  # the rest of a broken packet
        self._last_mono = event.mono
        if event.value not in (KEY_DOWN, KEY_UP):
            return reads  # auto-repeat: the key is still held, the read goes on
        if event.value == KEY_UP:
            self._shift.discard(event.code)
            self._chord.discard(event.code)
            return reads
        return reads + self._press(event)

    def expire(self, now: float) -> list[Read]:
        """The driver's timer fired at ``now``: end a read that has gone quiet."""
        return self._expire_before(now)

    def deadline(self) -> float | None:
        """When `expire` should next be called, or None while nothing is in flight."""
        if self._last_mono is None:
            return None
        if self._typed or self._shift or self._chord or self._damaged:
            return self._last_mono + self._timeout_s
        return None

    def discard(self) -> int:
        """The reader went away: forget the read in progress; return how many characters it had."""
        dropped = len(self._typed)
        self._typed, self._started = [], None
        self._forget_modifiers()
        self._damaged = self._resyncing = False
        return dropped

    # the decoding -------------------------------------------------------------

    def _press(self, event: KeyEvent) -> list[Read]:
        code = event.code
        if code in layout.SHIFT_KEYS:
            self._shift.add(code)
            return []
        if code in layout.CHORD_KEYS:
            self._chord.add(code)
            return []
        if code == layout.CAPS_LOCK:
            self._caps = not self._caps
            return []
        if code in layout.LOCK_KEYS:
            return []
        if self._ends_read(code):
            return self._end(partial=False)
        char = None
        if not self._chord:
            char = layout.character(code, shift=bool(self._shift), caps=self._caps)
        if self._started is None:
            self._started = event.at
        self._typed.append(UNTYPABLE if char is None else char)
        if len(self._typed) >= self._max_length:
            return self._end(partial=True, continues=True)
        return []

    def _ends_read(self, code: str) -> bool:
        if self._terminator == "enter":
            return code in layout.ENTER_KEYS
        if self._terminator == "tab":
            return code == layout.TAB_KEY
        return False

    def _expire_before(self, now: float) -> list[Read]:
        if self._last_mono is None or now < self._last_mono + self._timeout_s:
            return []
        # Silence: what was typed is all there will be, and whatever is still
        # "held" lost its key-up.
        return self._end(partial=self._terminator != "none")

    def _end(self, *, partial: bool, continues: bool = False) -> list[Read]:
        """End the read in progress; ``continues``: the reader goes on typing the same code."""
        reads = []
        if self._typed:
            assert self._started is not None
            reads.append(Read("".join(self._typed), self._started, partial or self._damaged))
        self._typed, self._started = [], None
        self._damaged = continues
        if not continues:
            self._forget_modifiers()
        return reads

    def _forget_modifiers(self) -> None:
        self._shift.clear()
        self._chord.clear()
