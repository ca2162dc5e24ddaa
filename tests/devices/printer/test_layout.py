"""The queue ticket as ESC/POS bytes: golden files (testcases/README.md), the raster of
Vietnamese text decoded back and compared with the text drawn independently, Windows-1258
text, and the encoder's guard against real-time lookalikes in image data."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

import pytest
from PIL import Image, ImageDraw, ImageFont

from devices.printer import escpos
from devices.printer.escpos import Align
from devices.printer.layout import (
    TicketStyle,
    hanoi_time,
    printable_text,
    ticket_bytes,
    to_cp1258,
)
from devices.printer.raster import BOLD, draw_line, from_raster, to_raster, wrap
from devices.printer.ticket import Ticket
from tests.devices.printer.emulator import EscPosPrinter, Qr, Raster, Text
from tests.devices.printer.golden import CASES, build, dump, load, scenarios

SCENARIOS = scenarios()
REGENERATE = "if the change is deliberate: .venv/bin/python -m tests.devices.printer.golden"


def test_every_scenario_has_its_expected_files():
    assert len(SCENARIOS) >= 4
    assert all((CASES / s / "expected.bin").is_file() and (CASES / s / "expected.txt").is_file()
               for s in SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_golden_ticket(scenario):
    data = build(scenario)
    _, style = load(scenario)
    # The readable dump first: a failure shows what changed on paper, not a byte offset.
    assert dump(data, style.vietnamese_code_page) == (CASES / scenario / "expected.txt").read_text(
        encoding="utf-8"), REGENERATE
    assert data == (CASES / scenario / "expected.bin").read_bytes(), REGENERATE


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_a_printer_takes_every_byte_of_the_ticket_and_cuts_once(scenario):
    ticket, style = load(scenario)
    printer = EscPosPrinter(cp1258_table=style.vietnamese_code_page)

    answers = printer.feed(build(scenario))

    assert printer.unknown == [] and answers == b""
    assert len(printer.tickets) == 1 and printer.printing.elements == []
    printed = printer.tickets[0]
    number = [e for e in printed.elements if isinstance(e, Text) and e.text == ticket.number]
    assert len(number) == 1 and number[0].width >= 3 and number[0].bold
    assert [q.data for q in printed.qrs()] == ([ticket.qr] if ticket.qr else [])


def test_without_a_code_page_vietnamese_lines_are_rasters_and_ascii_is_text():
    ticket, style = load("raster-80mm")
    printed = _print(ticket, style)

    assert [e.text for e in printed.elements if isinstance(e, Text) and e.text] == ["A012"]
    # site name (2 lines), SỐ THỨ TỰ, service, counter, waiting, time, QR caption
    assert len(printed.rasters()) == 8
    assert all(image.width == 576 for image in printed.rasters())


def test_with_a_code_page_the_ticket_is_text_in_windows_1258():
    ticket, style = load("cp1258-80mm")
    printed = _print(ticket, style)

    assert printed.rasters() == []
    texts = [t for t in printed.texts() if t]
    assert texts[2:] == ["SỐ THỨ TỰ", "A012", "Cấp đổi căn cước", "Mời đến quầy số 5",
                         "Số người đang chờ trước: 7", "Giờ lấy số: 08:34 25/11/2026",
                         "Quét mã QR để tra cứu"]
    assert " ".join(texts[:2]) == ticket.site_name


def test_a_printer_without_that_code_page_would_print_garbage():
    """What the raster is for: the same bytes on a printer lacking Windows-1258."""
    ticket, style = load("cp1258-80mm")
    printer = EscPosPrinter(cp1258_table=None)
    printer.feed(ticket_bytes(ticket, style))

    assert "Cấp đổi căn cước" not in printer.tickets[0].texts()


# -- the raster, decoded back ------------------------------------------------------------


def reference(text: str, px: int, width: int) -> Image.Image:
    """``text`` drawn straight with Pillow, black on white, without the printer code."""
    face = ImageFont.truetype(str(BOLD), px)
    canvas = Image.new("L", (width, px * 2), 255)
    ImageDraw.Draw(canvas).text((width / 2, px), text, fill=0, font=face, anchor="mm")
    return canvas.point(lambda v: 0 if v < 128 else 255).convert("1")


def ink_crop(image: Image.Image) -> Image.Image:
    inverted = image.convert("L").point(lambda v: 255 - v)
    box = inverted.getbbox()
    assert box is not None, "no ink at all"
    return image.crop(box)


def agreement(a: Image.Image, b: Image.Image) -> float:
    """Share of dots that are the same, over the larger of the two ink boxes."""
    a, b = ink_crop(a), ink_crop(b)
    width, height = max(a.width, b.width), max(a.height, b.height)
    pa, pb = (Image.new("1", (width, height), 1) for _ in range(2))
    pa.paste(a, (0, 0))
    pb.paste(b, (0, 0))
    return _same_bits(pa, pb) / (width * height)


def _same_bits(a: Image.Image, b: Image.Image) -> int:
    diff = Image.frombytes("1", a.size, bytes(x ^ y for x, y in zip(a.tobytes(), b.tobytes())))
    differing = diff.histogram()[255]
    return a.width * a.height - differing


def test_the_service_raster_decodes_back_to_the_vietnamese_text():
    ticket, style = load("raster-80mm")
    printed = _print(ticket, style)
    # the service line follows the ticket number
    index = next(i for i, e in enumerate(printed.elements)
                 if isinstance(e, Text) and e.text == ticket.number)
    service = printed.elements[index + 1]
    assert isinstance(service, Raster)

    same = agreement(service.image, reference("Cấp đổi căn cước", 30, 576))
    without_marks = agreement(service.image, reference("Cap doi can cuoc", 30, 576))

    assert same > 0.98
    assert without_marks < same - 0.05, "the diacritics must be visible in the raster"


@pytest.mark.parametrize("text", ["SỐ THỨ TỰ", "Mời đến quầy số 5", "Giấy phép xây dựng",
                                  "Ỷ Ỹ Ỵ ặ ẫ ợ ữ"], ids=str)
def test_raster_rows_decode_to_the_drawn_line_dot_for_dot(text):
    image = draw_line(text, 576, 26, bold=True, how=Align.LEFT)
    raster = to_raster(image)
    back = from_raster(raster.width_bytes, raster.height, raster.data)

    assert back.tobytes() == image.tobytes()
    # nothing cut off at the top (stacked marks) or the bottom (dot below): all the ink of
    # the text drawn on a canvas with room to spare is in the line
    face = ImageFont.truetype(str(BOLD), 26)
    roomy = Image.new("L", (576, 26 * 4), 0)
    ImageDraw.Draw(roomy).text((0, 26), text, fill=255, font=face)
    all_ink = roomy.point(lambda v: 255 if v >= 128 else 0).histogram()[255]
    assert image.histogram()[0] == all_ink


def test_long_service_names_wrap_at_words_within_the_paper():
    service = "Đăng ký khai sinh, khai tử, kết hôn và các thủ tục hộ tịch có yếu tố nước ngoài"
    lines = wrap(service, 384, 30, bold=True)

    assert len(lines) >= 3
    assert " ".join(lines) == service
    assert all(ImageFont.truetype(str(BOLD), 30).getlength(line) <= 384 for line in lines)


def test_image_bytes_that_look_like_a_status_query_are_broken_by_one_dot():
    rows = bytes([0x10, 0x04, 0x01, 0x00] * 2 + [0x10, 0x14, 0x08, 0x00])  # 3 rows of 32 dots
    image = from_raster(4, 3, rows)
    raster = to_raster(image)
    printer = EscPosPrinter()

    answers = printer.feed(escpos.raster(raster.width_bytes, raster.height, raster.data)
                           + escpos.cut())

    assert answers == b"" and printer.status_queries == 0 and printer.unknown == []
    printed = printer.tickets[0].rasters()[0]
    differing = _diff_dots(printed, image)
    assert differing == 3, "one extra dot per lookalike, nothing else changed"


def test_unbroken_lookalikes_would_be_taken_as_status_queries():
    """The emulator behaves like a printer here, so the guard above is tested for real."""
    printer = EscPosPrinter()
    raw = escpos.GS + b"v0\x00" + (4).to_bytes(2, "little") + (1).to_bytes(2, "little")
    answers = printer.feed(raw + bytes([0x10, 0x04, 0x01, 0x00]) + escpos.cut())

    assert printer.status_queries == 1 and len(answers) == 1


def _diff_dots(a: Image.Image, b: Image.Image) -> int:
    return a.width * a.height - _same_bits(a, b)


# -- text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Số thứ tự", "Cấp đổi căn cước", "Mời đến quầy số 5", "ặ ằ ẳ ẵ ắ ậ ầ ẩ ẫ ấ",
    "Ợ Ờ Ở Ỡ Ớ ự ừ ử ữ ứ", "Đường Nguyễn Trãi", "ỹ ỳ ỷ ỵ ý", "Hà Nội – 2026",
], ids=str)
def test_windows_1258_round_trip(text):
    encoded = to_cp1258(text)

    assert encoded is not None
    assert unicodedata.normalize("NFC", encoded.decode("cp1258")) == text


def test_text_the_printer_cannot_take():
    assert to_cp1258("漢字") is None
    assert to_cp1258("tab\there") is None
    assert printable_text("A012", None) == b"A012"
    assert printable_text("Quầy 5", None) is None, "no code page: Vietnamese goes as raster"
    assert printable_text("Quầy 5", 52) == to_cp1258("Quầy 5")


@pytest.mark.parametrize("at, printed", [
    (datetime(2026, 11, 24, 23, 5, tzinfo=timezone.utc), "06:05 25/11/2026"),
    (datetime.fromisoformat("2026-11-25T16:59:00+07:00"), "16:59 25/11/2026"),
    (datetime.fromisoformat("2026-06-30T17:00:00-05:00"), "05:00 01/07/2026"),
], ids=["utc-across-midnight", "hanoi", "elsewhere"])
def test_the_time_is_hanoi_local(at, printed):
    assert hanoi_time(at) == printed


def test_a_long_ticket_number_is_made_smaller_to_fit_58mm():
    ticket = Ticket(number="QH-2026-00001", service="Thuế", issued_at=datetime.now(timezone.utc),
                    waiting_ahead=0)
    printed = _print(ticket, TicketStyle(width_dots=384))

    number = next(e for e in printed.elements if isinstance(e, Text) and e.text == ticket.number)
    assert number.width * 12 * len(ticket.number) <= 384


@pytest.mark.parametrize("make, message", [
    (lambda: escpos.size(9, 1), "not within 1..8"),
    (lambda: escpos.qr_code(""), "1 to 700 bytes"),
    (lambda: escpos.qr_code("x", module=17), "not within 1..16"),
    (lambda: escpos.raster(2, 2, b"\x00"), "not 2 x 2"),
    (lambda: escpos.code_page(256), "not within 0..255"),
], ids=["size", "qr-empty", "qr-module", "raster-length", "code-page"])
def test_commands_refuse_what_they_cannot_carry(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("field, value", [
    ("number", "A 012"), ("number", ""), ("waiting_ahead", -1),
    ("issued_at", "2026-11-25T08:00:00"), ("service", ""), ("qr", "x" * 501),
], ids=["number-space", "number-empty", "negative-waiting", "naive-time", "no-service", "qr-long"])
def test_bad_tickets_are_refused_naming_the_field(field, value):
    good = {"number": "A012", "service": "Thuế", "issued_at": "2026-11-25T08:00:00+07:00",
            "waiting_ahead": 0}
    with pytest.raises(ValueError, match=field):
        Ticket.model_validate({**good, field: value})


def _print(ticket: Ticket, style: TicketStyle):
    printer = EscPosPrinter(cp1258_table=style.vietnamese_code_page)
    printer.feed(ticket_bytes(ticket, style))
    assert printer.unknown == []
    return printer.tickets[0]


def test_qr_elements_are_what_the_printer_prints():
    ticket, style = load("raster-58mm-long-service")
    qrs = _print(ticket, style).qrs()
    assert qrs == [Qr(ticket.qr, 5, 49)]
