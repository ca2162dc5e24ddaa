"""Serial readers over real pseudo-terminals: the pyserial adapter, the framer and
the driver together, with the test playing the reader."""

from __future__ import annotations

import asyncio
import logging

import pytest

from devices.scanner import ScannerConfig, build_scanner
from tests.devices.scanner.pty_reader import PtyReader

BOOKING = b"IHN-20241125-000731"
RECEIPT = b"000.00.12.H26-241125-0042"


async def wait_until(check, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
def reader(tmp_path):
    pty = PtyReader(tmp_path / "usb-Newland_FM430_Barcode_Scanner-if00-port0")
    yield pty
    pty.close()


@pytest.fixture
async def serve(reader):
    """Starts a serial scanner driver on the pty; gives it and the scans it recorded."""
    tasks = []

    async def start(**overrides):
        recorded = []

        async def record(detail, at):
            recorded.append(detail)

        # These tests are about framing, so unknown codes are kept to be compared.
        overrides.setdefault("unknown_codes", "keep")
        config = ScannerConfig(id="qr-1", counter="3", source="serial", device=str(reader.link), **overrides)
        scanner = build_scanner(config, record)
        tasks.append(asyncio.create_task(scanner.run()))
        await wait_until(lambda: scanner.health().state == "ok")
        return scanner, recorded

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_codes_ended_by_cr_lf_or_both_are_recorded_then_acknowledged(reader, serve):
    scanner, recorded = await serve(ack="16 4d 0d")
    reader.send(BOOKING + b"\r" + RECEIPT + b"\n" + b"8935049500018\r\n")
    await wait_until(lambda: len(recorded) == 3)
    assert [(s.code, s.code_kind, s.partial, s.counter) for s in recorded] == [
        (BOOKING.decode(), "ihanoi-booking", False, "3"),
        (RECEIPT.decode(), "dossier-receipt", False, "3"),
        ("8935049500018", "unknown", False, "3"),
    ]
    assert recorded[1].fields == {"agency": "000.00.12.H26", "province": "H26", "received": "241125", "number": "0042"}
    acks = bytearray()

    def all_acknowledged() -> bool:
        acks.extend(reader.received())
        return bytes(acks) == b"\x16M\r" * 3

    await wait_until(all_acknowledged)


async def test_garbage_is_dropped_and_bad_bytes_show_in_the_code(reader, serve):
    scanner, recorded = await serve()
    reader.send(b"\xff\xfe\x00\x80\r\n" + BOOKING + b"\r\n" + b"AB\xffCD\r\n")
    await wait_until(lambda: len(recorded) == 2)
    assert [(s.code, s.code_kind) for s in recorded] == [(BOOKING.decode(), "ihanoi-booking"), ("AB\ufffdCD", "unknown")]


async def test_vietnamese_utf8_passes_through_whole(reader, serve):
    scanner, recorded = await serve()
    reader.send("Hồ sơ số 12 — Phường Tràng Tiền\r\n".encode())
    await wait_until(lambda: len(recorded) == 1)
    assert recorded[0].code == "Hồ sơ số 12 — Phường Tràng Tiền"


async def test_an_overlong_line_comes_in_partial_pieces(reader, serve):
    scanner, recorded = await serve(max_length=64, partial_codes="keep")
    line = bytes(range(0x41, 0x5B)) * 4  # 104 bytes, no terminator until the end
    reader.send(line + b"\r\n" + BOOKING + b"\r\n")
    await wait_until(lambda: len(recorded) == 3)
    assert [(s.code, s.partial) for s in recorded] == [
        (line[:64].decode(), True), (line[64:].decode(), True), (BOOKING.decode(), False)
    ]


async def test_a_code_that_stops_midway_is_reported_partial_and_redacted_by_default(reader, serve):
    scanner, recorded = await serve(timeout="50ms")
    reader.send(b"IHN-2024")
    await wait_until(lambda: len(recorded) == 1)
    reader.send(BOOKING + b"\r\n")
    await wait_until(lambda: len(recorded) == 2)
    partial, whole = recorded
    assert (partial.partial, partial.redacted, partial.code_kind, partial.fields) == (
        True, True, "unknown", {"length": "8"}
    )
    assert (whole.code, whole.partial) == (BOOKING.decode(), False)


async def test_a_half_line_at_disconnect_is_dropped_and_the_returning_reader_is_served(reader, serve, caplog):
    caplog.set_level(logging.INFO)
    scanner, recorded = await serve(timeout="10s")  # only the unplug may end the half line
    reader.send(BOOKING + b"\r\nIHN-2024")
    await wait_until(lambda: len(recorded) == 1)
    reader.unplug()
    await wait_until(lambda: scanner.health().state == "missing")
    assert "dropped (8 characters)" in caplog.text
    assert "IHN-2024" not in caplog.text  # logs say how much, never what

    reader.plug()  # back, under a new /dev/pts name behind the same link
    scanner.attach(str(reader.link))  # what hot-plug does when it sees the reader return
    await wait_until(lambda: scanner.health().state == "ok")
    reader.send(RECEIPT + b"\r\n")
    await wait_until(lambda: len(recorded) == 2)
    assert [s.code for s in recorded] == [BOOKING.decode(), RECEIPT.decode()]


async def test_a_reader_that_is_not_plugged_in_is_missing_until_it_comes(tmp_path):
    async def record(detail, at):
        recorded.append(detail)

    recorded = []
    link = tmp_path / "usb-Reader-if00-port0"
    scanner = build_scanner(ScannerConfig(id="qr-1", source="serial", device=str(link)), record)
    task = asyncio.create_task(scanner.run())
    try:
        await wait_until(lambda: scanner.health().state == "missing" and scanner.health().detail)
        assert "No such file" in scanner.health().detail
        pty = PtyReader(link)
        try:
            scanner.attach(str(link))
            await wait_until(lambda: scanner.health().state == "ok")
            pty.send(BOOKING + b"\n")
            await wait_until(lambda: len(recorded) == 1)
        finally:
            pty.close()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
