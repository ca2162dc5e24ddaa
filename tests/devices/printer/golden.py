"""The golden ticket cases: testcases/<scenario>/ticket.json in, expected.bin and its readable
dump expected.txt out. `python -m tests.devices.printer.golden` rewrites the expected files
from the code (deliberately, after a change to the layout; review the .txt diff)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from devices.printer.layout import TicketStyle, ticket_bytes
from devices.printer.ticket import Ticket
from tests.devices.printer.emulator import EscPosPrinter, Feed, Qr, Raster, Text

CASES = Path(__file__).parent / "testcases"


def scenarios() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "ticket.json").is_file())


def load(scenario: str) -> tuple[Ticket, TicketStyle]:
    case = json.loads((CASES / scenario / "ticket.json").read_text(encoding="utf-8"))
    return Ticket.model_validate(case["ticket"]), TicketStyle(**case.get("style", {}))


def build(scenario: str) -> bytes:
    ticket, style = load(scenario)
    return ticket_bytes(ticket, style)


def dump(data: bytes, cp1258_table: int | None = None) -> str:
    """What an ESC/POS printer makes of ``data``, one printed element a line."""
    printer = EscPosPrinter(cp1258_table=cp1258_table)
    answers = printer.feed(data)
    lines = []
    for number, ticket in enumerate(printer.tickets + [printer.printing]):
        for element in ticket.elements:
            lines.append(_describe(element))
        if ticket.cut:
            lines.append(f"cut (ticket {number + 1})")
    if printer.unknown:
        lines.append(f"unknown: {printer.unknown!r}")
    if answers:
        lines.append(f"answered: {answers!r}")
    return "\n".join(lines) + "\n"


def _describe(element) -> str:
    align = {0: "left", 1: "center", 2: "right"}.get(getattr(element, "align", 0), "?")
    if isinstance(element, Text):
        weight = " bold" if element.bold else ""
        return f"text {element.width}x{element.height}{weight} {align}: {element.text!r}"
    if isinstance(element, Raster):
        image = element.image
        box = image.point(lambda v: 255 - v).getbbox()
        ink = image.histogram()[0]
        return f"raster {image.width}x{image.height} {align}: ink {ink} dots in {box}"
    if isinstance(element, Qr):
        level = "LMQH"[element.correction - 48]
        return f"qr module {element.module} correction {level}: {element.data!r}"
    if isinstance(element, Feed):
        return f"feed {element.lines}"
    return repr(element)


def regenerate() -> None:
    for scenario in scenarios():
        data = build(scenario)
        _, style = load(scenario)
        (CASES / scenario / "expected.bin").write_bytes(data)
        (CASES / scenario / "expected.txt").write_text(
            dump(data, style.vietnamese_code_page), encoding="utf-8")
        print(f"{scenario}: {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    regenerate()
