"""Document scanners: scanimage output and udev properties (golden files), and the
driver that turns them into peripheral health, with the desk scanner faked."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from devices.registry import build_driver
from devices.scanner import DocumentScanner, DocumentScannerConfig
from devices.scanner.document import UsbIdentity
from devices.scanner.document_fake import FakeDeskScanner
from devices.scanner.sane import parse_device_list, probe_state

HERE = Path(__file__).parent
UDEV = HERE / "udev"
SANE_CASES = sorted(p.name for p in (HERE / "sane").iterdir() if p.is_dir())


def udevadm_properties(path: Path) -> dict[str, str]:
    """The ``E:`` lines of ``udevadm info`` output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line[3:].split("=", 1) for line in lines if line.startswith("E: "))


@pytest.mark.parametrize("case", SANE_CASES, ids=str)
def test_scanimage_listing_golden_case(case):
    devices = parse_device_list((HERE / "sane" / case / "input").read_text(encoding="utf-8"))
    expected = json.loads((HERE / "sane" / case / "expected").read_text(encoding="utf-8"))
    found = [
        {"name": d.name, "description": d.description, "backend": d.backend,
         "usb_address": list(d.usb_address) if d.usb_address else None}
        for d in devices
    ]
    assert found == expected


@pytest.mark.parametrize(
    "returncode, stderr, state, words",
    [
        (0, "", "ready", None),
        (1, "scanimage: open of device fujitsu:libusb:001:004 failed: Device busy\n", "busy", "Device busy"),
        (1, "scanimage: sane_start: Document feeder jammed\n", "jammed", "Document feeder jammed"),
        (1, "scanimage: sane_start: Scanner cover is open\n", "cover-open", "Scanner cover is open"),
        (1, "scanimage: open of device fujitsu:libusb:001:004 failed: Error during device I/O\n",
         "error", "scanimage: open of device fujitsu:libusb:001:004 failed: Error during device I/O"),
        (-1, "", "error", "scanimage exited with -1"),
    ],
    ids=["ready", "busy", "jammed", "cover-open", "io-error", "no-words"],
)
def test_what_opening_a_device_said(returncode, stderr, state, words):
    assert probe_state(returncode, stderr) == (state, words)


@pytest.mark.parametrize("device", ["epson-perfection-v500", "fujitsu-fi-7160"])
def test_identity_from_recorded_udev_properties(device):
    identity = UsbIdentity.from_udev(udevadm_properties(UDEV / f"{device}.txt"))
    expected = json.loads((UDEV / "expected.json").read_text(encoding="utf-8"))[device]
    assert identity.describe() == expected.pop("describe")
    assert {**identity.__dict__, "usb_address": list(identity.usb_address)} == expected


# ---- the driver --------------------------------------------------------------------------

FUJITSU = udevadm_properties(UDEV / "fujitsu-fi-7160.txt")
LISTED = "device `fujitsu:libusb:001:004' is a FUJITSU fi-7160 scanner\n"


async def wait_until(check, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def running(desk: FakeDeskScanner, **overrides):
    config = DocumentScannerConfig(id="desk-1", match={"vendor_id": "04c5", "product_id": "132e"}, **overrides)
    scanner = DocumentScanner(config, desk, desk)
    return scanner, asyncio.create_task(scanner.run())


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_presence_identity_and_readiness_follow_plug_and_unplug():
    desk = FakeDeskScanner(listing=LISTED)
    scanner, task = await running(desk)
    try:
        await wait_until(lambda: scanner.health().detail == "not plugged in")
        assert scanner.health().state == "missing"

        desk.plug(FUJITSU)
        scanner.attach("/dev/bus/usb/001/004")  # hot-plug matched 04c5:132e
        await wait_until(lambda: scanner.health().state == "ok")
        assert scanner.health().detail == (
            "ready: Fujitsu, Ltd fi-7160 (04c5:132e, serial A0AB001234) as fujitsu:libusb:001:004"
        )

        desk.unplug()
        scanner.detach()
        await wait_until(lambda: scanner.health().state == "missing")

        # Back in another port: a new bus address, the same scanner.
        desk.plug({**FUJITSU, "DEVNAME": "/dev/bus/usb/001/007", "DEVNUM": "007"})
        desk.listing = "device `fujitsu:libusb:001:007' is a FUJITSU fi-7160 scanner\n"
        scanner.attach("/dev/bus/usb/001/007")
        await wait_until(lambda: scanner.health().state == "ok")
        assert scanner.health().detail.endswith("as fujitsu:libusb:001:007")
    finally:
        await stop(task)


@pytest.mark.parametrize(
    "overrides, listing, open_result, state, detail",
    [
        ({"sane": "open"}, LISTED, (1, "scanimage: sane_start: Document feeder jammed\n"), "degraded",
         "jammed (Document feeder jammed): Fujitsu, Ltd fi-7160 (04c5:132e, serial A0AB001234) as fujitsu:libusb:001:004"),
        ({"sane": "open"}, LISTED, (1, "scanimage: open of device fujitsu:libusb:001:004 failed: Device busy\n"),
         "ok", "busy: Fujitsu, Ltd fi-7160 (04c5:132e, serial A0AB001234) as fujitsu:libusb:001:004"),
        ({}, "", (0, ""), "degraded",
         "Fujitsu, Ltd fi-7160 (04c5:132e, serial A0AB001234): plugged in but SANE does not list it "
         "(no permission on the USB device?)"),
        ({}, None, (0, ""), "ok",
         "Fujitsu, Ltd fi-7160 (04c5:132e, serial A0AB001234): present; readiness unknown (scanimage is not installed)"),
        ({"sane": "off"}, None, (0, ""), "ok", "Fujitsu, Ltd fi-7160 (04c5:132e, serial A0AB001234): present"),
        ({"sane_device": "escl:https://10.0.0.9:443"}, "device `escl:https://10.0.0.9:443' is a FUJITSU fi-7160 scanner\n",
         (0, ""), "ok", "ready: Fujitsu, Ltd fi-7160 (04c5:132e, serial A0AB001234) as escl:https://10.0.0.9:443"),
    ],
    ids=["jammed", "busy-is-fine", "not-listed", "no-scanimage", "sane-off", "named-sane-device"],
)
async def test_what_sane_says_becomes_the_peripheral_state(overrides, listing, open_result, state, detail):
    desk = FakeDeskScanner(properties=FUJITSU, listing=listing, open_result=open_result)
    scanner, task = await running(desk, device="/dev/bus/usb/001/004", **overrides)
    try:
        await wait_until(lambda: scanner.health().state != "missing" or scanner.health().detail == detail)
        assert (scanner.health().state, scanner.health().detail) == (state, detail)
        assert desk.opened == (["fujitsu:libusb:001:004"] if overrides.get("sane") == "open" else [])
    finally:
        await stop(task)


async def test_the_registry_builds_a_fake_desk_scanner_that_is_ready():
    scanner = build_driver(DocumentScannerConfig(id="desk-1", source="fake"), record=None)  # type: ignore[arg-type]
    task = asyncio.create_task(scanner.run())
    try:
        await wait_until(lambda: scanner.health().state == "ok")
        assert scanner.health().detail.startswith("ready: Fujitsu fi-7160")
    finally:
        await stop(task)


def test_a_desk_scanner_must_name_its_device():
    with pytest.raises(ValidationError, match="match or device is required"):
        DocumentScannerConfig(id="desk-1")


# ---- the real adapters, against what this machine has -----------------------------------

@pytest.mark.skipif(shutil.which("scanimage") is not None, reason="scanimage is installed here")
async def test_without_scanimage_the_sane_adapter_says_so():
    from devices.scanner.sane_adapter import ScanimageProbe

    assert await ScanimageProbe().list_devices() is None
    assert await ScanimageProbe().open_device("fujitsu:libusb:001:004") == (127, "scanimage is not installed")


async def test_the_udev_adapter_finds_nothing_at_a_node_that_does_not_exist():
    from devices.scanner.udev_adapter import UdevProperties

    assert await UdevProperties().usb_properties("/dev/bus/usb/999/999") is None
