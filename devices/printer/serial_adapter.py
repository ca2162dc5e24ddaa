"""Serial ticket printers with pyserial: the port opened by its /dev/serial/by-id/ link, set
to the printer's speed and handshake; then the same file I/O as a USB printer."""

from __future__ import annotations

import serial

from devices.printer.adapter import PrinterGone
from devices.printer.usblp_adapter import FilePrinterPort


class SerialPrinterPort(FilePrinterPort):
    def __init__(self, baudrate: int, flow_control: str = "none") -> None:
        super().__init__()
        self._baudrate = baudrate
        self._flow = flow_control
        self._port: serial.Serial | None = None

    def _open_fd(self, path: str) -> int:
        flow = {"rtscts": self._flow == "rtscts", "dsrdtr": self._flow == "dsrdtr",
                "xonxoff": self._flow == "xonxoff"}
        try:
            # exclusive (flock): a second writer would mix its bytes into a ticket.
            port = serial.Serial(path, self._baudrate, timeout=0, exclusive=True, **flow)
        except serial.SerialException as exc:
            raise PrinterGone(str(exc)) from None
        self._port = port
        return port.fileno()

    async def close(self) -> None:
        port, self._port = self._port, None
        self._fd = -1  # pyserial closes the descriptor
        if port is not None:
            port.close()

    def describe(self) -> str | None:
        if self._port is None:
            return None
        return f"serial printer at {self._path}, {self._baudrate} baud, flow control {self._flow}"
