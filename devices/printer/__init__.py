"""Ticket printers (ESC/POS) at kiosks: the queue ticket printed, the printer watched
(README.md beside this file).

- `ticket`: the models the kiosk bridge uses (`Ticket`, `PrintOutcome`, `PrinterStatus`) and
  the driver's API, described in its docstring;
- `escpos`: pure ESC/POS command bytes and status answers; `raster`: pure text-to-raster
  drawing (Vietnamese without a code page); `layout`: pure: the ticket as bytes;
- `session`: a job printed to its end over a port, status queries (no hardware library);
- `driver`: the `TicketPrinter` driver, port-agnostic;
- `usblp_adapter`, `serial_adapter`: the thin ports for /dev/usb/lpN and serial printers;
- `fake`: a printer in memory behind the same interface, for the demo and tests.
"""

from devices.printer.config import TicketPrinterConfig
from devices.printer.driver import TicketPrinter, build_ticket_printer
from devices.printer.ticket import PrinterStatus, PrintOutcome, Ticket

__all__ = ["PrintOutcome", "PrinterStatus", "Ticket", "TicketPrinter", "TicketPrinterConfig",
           "build_ticket_printer"]
