"""A serial barcode reader on a real pseudo-terminal.

The test plays the reader on the master side; the adapter opens the slave
through a stable link, as it would open /dev/serial/by-id/usb-...-if00-port0.
Unplugging closes the master (the adapter's reads fail with EIO, as with a USB
adapter pulled out); replugging makes a new pty and points the link at it.
"""

from __future__ import annotations

import os
import select
from pathlib import Path


class PtyReader:
    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        staged = self.link.with_name(self.link.name + ".new")
        staged.unlink(missing_ok=True)
        os.symlink(os.ttyname(self.slave), staged)
        os.replace(staged, self.link)  # the link changes target atomically, as udev's do

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def received(self) -> bytes:
        """What the adapter wrote to the reader so far (its acknowledgements)."""
        data = b""
        while select.select([self.master], [], [], 0)[0]:
            data += os.read(self.master, 1024)
        return data

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    def close(self) -> None:
        self.unplug()
        self.link.unlink(missing_ok=True)
