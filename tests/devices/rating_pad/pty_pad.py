"""A serial rating pad played by a test over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Callable


class PtyPad:
    """The pad's side of a pty pair; the agent opens the other side with pyserial.

    ``by_id`` stands for the pad's ``/dev/serial/by-id/`` link: a symlink to the
    current pty that exists only while the pad is plugged in. Every plug-in is
    a new pty, as a replugged USB serial device is a new tty, possibly under
    another kernel name; ``devnode`` is that name, as udev would report it.
    """

    def __init__(self, by_id: Path) -> None:
        self.by_id = by_id
        self._master = self._slave = -1
        self._received = bytearray()
        self.plug_in()

    @property
    def devnode(self) -> str:
        return os.ttyname(self._slave)

    def plug_in(self) -> None:
        self._master, self._slave = os.openpty()
        # The test keeps a slave fd open too, so that reading the master never
        # fails while the agent has the port closed between reconnects.
        os.set_blocking(self._master, False)
        self._received.clear()
        self.by_id.symlink_to(self.devnode)

    def unplug(self) -> None:
        """The cable is pulled: the agent's open port fails and the by-id link goes."""
        self.by_id.unlink(missing_ok=True)
        if self._master >= 0:
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1

    def send(self, data: bytes) -> None:
        """The pad sends ``data`` to the agent."""
        os.write(self._master, data)

    def received(self) -> list[str]:
        """Every line the agent has sent the pad since it was plugged in."""
        try:
            while chunk := os.read(self._master, 4096):
                self._received += chunk
        except BlockingIOError:
            pass
        return self._received.decode("ascii", "replace").splitlines()

    def mark(self, text: str) -> None:
        """Puts ``text`` into the agent->pad stream, to see what the agent sent before and after it."""
        os.write(self._slave, text.encode() + b"\n")


async def wait_until(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``check`` on the running loop until it is truthy; fail with its last value."""
    value = check()
    try:
        async with asyncio.timeout(timeout):
            while not value:
                await asyncio.sleep(0.01)
                value = check()
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})") from None
