"""The self-test walked through in process: the real drivers with their fake devices,
a technician typing into a real pipe, and the record that comes out (not sent here:
tests/agent/test_selftest_send.py and tests/system/test_selftest.py send it)."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from agent.selftest_run import Console, SelfTest
from agent.settings import AgentSettings
from devices.hotplug.fake import FakeMonitor

CITIZEN = "001099012345|123456789|Nguyễn Văn An|01011990|Nam|Số 1 Phố Tràng Tiền, Hà Nội|15082021"
SECRETS = ["001099012345", "123456789", "Nguyễn Văn An", "01011990", "Tràng Tiền", "15082021"]

PAD = {"kind": "rating-pad", "id": "pad-1", "counter": "1", "source": "fake", "scale": 3, "bounce": 0}
READER = {"kind": "scanner", "id": "qr-1", "counter": "1", "source": "fake"}
DESK = {"kind": "document-scanner", "id": "desk-1", "source": "fake"}
DESK_READY = "ready: Fujitsu fi-7160 (04c5:132e, serial A0DEMO0001) as fujitsu:libusb:001:004"


async def wait_until(check, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while not (value := check()):
            await asyncio.sleep(0.01)
    return value


class Technician:
    """The person at the terminal: reads what the test says, types into a real pipe."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        self.screen = io.StringIO()
        self._cursor = 0

    async def sees(self, text: str, timeout: float = 10.0) -> None:
        """Wait until ``text`` appears after what was already seen."""
        async with asyncio.timeout(timeout):
            while (found := self.screen.getvalue().find(text, self._cursor)) < 0:
                await asyncio.sleep(0.01)
        self._cursor = found + len(text)

    def types(self, line: str) -> None:
        os.write(self._write_fd, (line + "\n").encode())

    def leaves(self) -> None:
        """The input ends (Ctrl-D, or a closed pipe)."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1

    def close(self) -> None:
        self.leaves()
        os.close(self.read_fd)


@pytest.fixture
def technician():
    person = Technician()
    yield person
    person.close()


@pytest.fixture
def start(tmp_path: Path, technician: Technician):
    """Starts the self-test of a node with the given peripherals; returns it and its task."""
    started: list[tuple[Console, asyncio.Task]] = []

    def begin(*peripherals: dict, timeout: float = 10.0, technician_name: str | None = None):
        settings = AgentSettings(node_id="bd-phuong-q1", state_dir=tmp_path / "state",
                                 peripherals=list(peripherals))
        console = Console(technician.read_fd, technician.screen)
        console.start()
        test = SelfTest(settings, console, timeout=timeout, monitor=FakeMonitor)
        task = asyncio.create_task(test.run(technician_name))
        started.append((console, task))
        return test, task

    yield begin
    for console, task in started:
        task.cancel()
        console.stop()


async def test_every_peripheral_passes_when_worked_as_asked(start, technician, tmp_path):
    secret = tmp_path / "scan-hash.key"
    secret.write_bytes(b"a-secret-for-tests-only-32-bytes\n")
    test, task = start(PAD, {**READER, "hash_secret_file": str(secret)}, DESK)
    pad, reader = test.drivers["pad-1"].adapter, test.drivers["qr-1"].adapter

    await technician.sees("Tên kỹ thuật viên (Enter để bỏ qua) / technician's name (Enter to skip):")
    technician.types("Trần Thị Bình")
    await technician.sees("[1/3] pad-1: bàn phím đánh giá, quầy 1\n      pad-1: rating pad, counter 1")
    await technician.sees("Nhấn lần lượt từng nút trên bàn phím đánh giá: 1, 2, 3.\n"
                          "    Press each button on the rating pad in turn: 1, 2, 3.")
    await wait_until(lambda: pad.is_open)
    for key in ("KEY_KP2", "KEY_KP1", "KEY_KP3"):
        pad.press(key)
    await technician.sees("Nút 3 ✓ — đã đủ các nút. / button 3 ✓ — every button seen.")
    await technician.sees("[2/3] qr-1")
    await technician.sees("Quét thẻ thử (mã vạch hoặc QR) bằng máy đọc.")
    await wait_until(lambda: reader.is_open)
    reader.scan(CITIZEN)  # the technician's own ID card: must leave no trace
    await technician.sees("[3/3] desk-1: máy quét tài liệu")
    await technician.sees("Did the test page come out clearly? (y/n)")
    technician.types("có")
    record = await task

    assert record.node == "bd-phuong-q1"
    assert record.technician == "Trần Thị Bình"
    assert [(r.peripheral, r.kind, r.passed, r.seen) for r in record.results] == [
        ("pad-1", "rating-pad", True, "ratings pressed: 1, 2, 3"),
        ("qr-1", "scanner", True, "read a citizen-id code (personal data, not kept)"),
        ("desk-1", "document-scanner", True,
         DESK_READY + "; technician: yes"),
    ]
    assert record.passed and record.started_at <= record.finished_at
    everything = record.to_json().decode() + technician.screen.getvalue()
    assert not [piece for piece in SECRETS if piece in everything]
    assert pad.thanked == 3, "the pad gives its feedback as it does for a citizen"
    assert not pad.is_open and not reader.is_open, "each device is closed after its step"
    assert not (tmp_path / "state" / "outbox.sqlite").exists(), "test taps are not ratings"


async def test_what_fails_says_what_was_seen_and_takes_the_technicians_note(start, technician):
    test, task = start(PAD, READER, DESK, timeout=2, technician_name="Lê Văn Cường")
    pad = test.drivers["pad-1"].adapter

    await technician.sees("Press each button")
    await wait_until(lambda: pad.is_open)
    pad.press("KEY_KP1")
    await technician.sees("KHÔNG ĐẠT / FAILED: ratings pressed: 1; not pressed: 2, 3; no more in 2s")
    await technician.sees("Ghi chú (Enter để bỏ qua) / note (Enter to skip):")
    technician.types("nút 2 và 3 không ăn")
    await technician.sees("KHÔNG ĐẠT / FAILED: nothing seen in 2s")  # the reader read nothing
    await technician.sees("note (Enter to skip):")
    technician.types("")
    await technician.sees("Did the test page come out clearly? (y/n)")
    technician.types("hmm")
    await technician.sees("Xin trả lời có (c) hoặc không (k) / please answer yes (y) or no (n)")
    technician.types("k")
    await technician.sees("note (Enter to skip):")
    technician.leaves()
    record = await task

    assert record.technician == "Lê Văn Cường"
    assert [(r.peripheral, r.passed, r.seen, r.note) for r in record.results] == [
        ("pad-1", False, "ratings pressed: 1; not pressed: 2, 3; no more in 2s", "nút 2 và 3 không ăn"),
        ("qr-1", False, "nothing seen in 2s", None),
        ("desk-1", False, DESK_READY + "; technician: no", None),
    ]
    assert not record.passed


async def test_enter_skips_a_step_and_no_one_at_the_terminal_means_no_answer(start, technician):
    test, task = start(PAD, DESK, timeout=1)

    await technician.sees("technician's name")
    technician.types("")
    await technician.sees("Press each button")
    technician.types("")
    await technician.sees("KHÔNG ĐẠT / FAILED: skipped by the technician (nothing seen)")
    await technician.sees("note (Enter to skip):")
    technician.leaves()
    record = await task

    assert record.technician is None
    assert [(r.passed, r.seen) for r in record.results] == [
        (False, "skipped by the technician (nothing seen)"),
        (False, DESK_READY + "; no answer in 1s"),
    ]


async def test_a_missing_device_is_told_at_once_and_recorded(start, technician, tmp_path):
    absent = tmp_path / "serial" / "by-id" / "usb-Acme_RatingPad_RP5-00999-if00"
    pad = {"kind": "rating-pad", "id": "exit-pad", "source": "serial", "device": str(absent)}
    technician.leaves()
    _, task = start(pad, timeout=1)

    await technician.sees("Chưa thấy thiết bị / device not found:")
    await technician.sees("sudo systemctl stop rpfleet-agent")
    record = await task

    [result] = record.results
    assert not result.passed
    assert result.seen.startswith("nothing seen in 1s; device missing: ")
    assert str(absent) in result.seen


async def test_a_driver_that_fails_fails_its_step(start, technician):
    technician.leaves()
    test, task = start(PAD, timeout=5)
    pad = test.drivers["pad-1"].adapter

    await technician.sees("Press each button")
    await wait_until(lambda: pad.is_open)
    pad.fail(RuntimeError("keypad firmware crashed"))
    record = await task

    assert [(r.passed, r.seen) for r in record.results] == [
        (False, "driver failed; device failed: RuntimeError: keypad firmware crashed")
    ]


async def test_stopping_mid_step_closes_the_device(start, technician):
    test, task = start(PAD, timeout=30)
    pad = test.drivers["pad-1"].adapter
    technician.types("Phạm Thu")
    await technician.sees("Press each button")
    await wait_until(lambda: pad.is_open)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not pad.is_open
