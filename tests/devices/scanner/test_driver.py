"""The Scanner driver with the in-memory reader: what it records, when it
acknowledges, how it serves on through faults, and what it never logs."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

import pytest
from pydantic import ValidationError

from devices.registry import build_driver
from devices.scanner import Scanner, ScannerConfig, build_scanner
from devices.scanner.codes import Classified, keyed_hash
from devices.scanner.fake import FakeReader, demo_code

CITIZEN = "001099012345|123456789|Nguyễn Văn An|01011990|Nam|Số 1 Phố Tràng Tiền, Hà Nội|15082021"
SECRETS = ["001099012345", "123456789", "Nguyễn Văn An", "01011990", "Tràng Tiền", "15082021"]
SECRET_KEY = b"a-secret-for-tests-only-32-bytes"


async def wait_until(check, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


class Desk:
    """A fake reader driven by a running Scanner; collects what it records."""

    def __init__(self, failures: list[Exception] | None = None, **overrides) -> None:
        self.recorded: list[tuple[object, int]] = []
        self.failures = failures or []
        self.config = ScannerConfig(id="qr-1", counter="3", source="fake", **overrides)
        self.scanner: Scanner = build_scanner(self.config, self.record)
        self.task: asyncio.Task | None = None

    @property
    def reader(self) -> FakeReader:
        return self.scanner.adapter  # type: ignore[return-value]

    async def record(self, detail, at) -> None:
        if self.failures:
            raise self.failures.pop()
        # Feedback must not have happened yet: the scan is not on disk until we return.
        self.recorded.append((detail, self.reader.acknowledged))

    async def __aenter__(self) -> "Desk":
        self.task = asyncio.create_task(self.scanner.run())
        await wait_until(lambda: self.reader.is_open)
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    @property
    def scans(self):
        return [detail for detail, _ in self.recorded]


async def test_a_scan_is_recorded_before_the_reader_acknowledges_it():
    async with Desk() as desk:
        desk.reader.scan("IHN-20241125-000731")
        await wait_until(lambda: desk.reader.acknowledged == 1)
    [(scan, acknowledged_before)] = desk.recorded
    assert acknowledged_before == 0
    assert scan.model_dump(exclude_none=True) == {
        "kind": "scan", "scanner": "qr-1", "counter": "3", "code": "IHN-20241125-000731",
        "partial": False, "code_kind": "ihanoi-booking", "fields": {"date": "20241125", "number": "000731"},
        "redacted": False,
    }


async def test_a_failed_record_gets_no_acknowledgement_and_the_reader_serves_on():
    async with Desk(failures=[sqlite3.OperationalError("database or disk is full")]) as desk:
        desk.reader.scan("IHN-20241125-000731")
        await wait_until(lambda: desk.scanner.health().state == "failed")
        assert desk.reader.acknowledged == 0
        assert "disk is full" in desk.scanner.health().detail
        desk.reader.scan("000.00.12.H26-241125-0042")
        await wait_until(lambda: desk.reader.acknowledged == 1)
    assert [s.code_kind for s in desk.scans] == ["dossier-receipt"]
    assert desk.scanner.health().state == "ok"


async def test_a_citizen_id_is_stored_only_as_what_its_kind_keeps(tmp_path):
    secret = tmp_path / "scan-hash.key"
    secret.write_bytes(SECRET_KEY + b"\n")
    async with Desk(hash_secret_file=secret) as desk:
        desk.reader.scan(CITIZEN)
        await wait_until(lambda: len(desk.scans) == 1)
    [scan] = desk.scans
    assert (scan.code, scan.code_kind, scan.redacted) == ("<redacted citizen-id>", "citizen-id", True)
    assert scan.fields == {
        "birth_year": "1990", "id_number_hash": keyed_hash(SECRET_KEY, "id_number", "001099012345")
    }
    stored = scan.model_dump_json()
    assert not [piece for piece in SECRETS if piece in stored]
    assert desk.scanner.health().state == "ok"


async def test_nothing_of_a_citizen_id_reaches_a_log_line_even_when_things_go_wrong(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "scan-hash.key"
    secret.write_bytes(SECRET_KEY)
    failures = [sqlite3.OperationalError("disk I/O error")]
    async with Desk(failures=failures, hash_secret_file=secret) as desk:
        desk.reader.scan(CITIZEN)  # this one's record fails and is logged
        await wait_until(lambda: desk.scanner.health().state == "failed")
        desk.reader.scan(CITIZEN)
        desk.reader.scan(CITIZEN[:40])  # a broken read of the card
        desk.reader.send(CITIZEN[:30].encode())  # cut off by the reader going away
        desk.reader.unplug()
        await wait_until(lambda: len(desk.scans) == 2 and desk.scanner.health().state == "missing")
    assert "dropped (30 characters)" in caplog.text
    logged = [caplog.text] + [repr(r.args) for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    assert not [piece for piece in SECRETS for text in logged if piece in text]
    assert [(s.code_kind, s.redacted) for s in desk.scans] == [("citizen-id", True), ("citizen-id", True)]


async def test_without_a_secret_id_numbers_are_not_stored_at_all_and_health_says_so():
    async with Desk() as desk:
        desk.reader.scan(CITIZEN)
        await wait_until(lambda: len(desk.scans) == 1)
    assert desk.scans[0].fields == {"birth_year": "1990"}
    assert desk.scanner.health().state == "ok"
    assert desk.scanner.health().detail == "no hash secret: hashed parts are not stored"


@pytest.mark.parametrize("content, problem", [(None, "unreadable"), (b"short", "shorter than 16 bytes")])
async def test_an_unusable_secret_degrades_the_reader_but_it_still_counts_scans(tmp_path, content, problem):
    secret = tmp_path / "scan-hash.key"
    if content is not None:
        secret.write_bytes(content)
    async with Desk(hash_secret_file=secret) as desk:
        desk.reader.scan(CITIZEN)
        await wait_until(lambda: len(desk.scans) == 1)
    assert desk.scans[0].fields == {"birth_year": "1990"}
    health = desk.scanner.health()
    assert health.state == "degraded" and problem in health.detail


async def test_a_code_that_stops_midway_is_reported_once_the_reader_falls_silent():
    async with Desk(timeout="30ms", partial_codes="keep", unknown_codes="keep") as desk:
        desk.reader.send(b"IHN-2024")
        await wait_until(lambda: len(desk.scans) == 1)
        desk.reader.scan("IHN-20241125-000731")
        await wait_until(lambda: len(desk.scans) == 2)
    assert [(s.code, s.partial) for s in desk.scans] == [("IHN-2024", True), ("IHN-20241125-000731", False)]


async def test_an_unplugged_reader_is_missing_and_reopened(monkeypatch):
    monkeypatch.setattr("devices.scanner.driver.REOPEN_DELAYS_S", (0.01,))
    async with Desk() as desk:
        await wait_until(lambda: desk.scanner.health().state == "ok")
        desk.reader.unplug()
        await wait_until(lambda: desk.scanner.health().state == "missing")
        await wait_until(lambda: desk.scanner.health().state == "ok")
        desk.reader.scan("IHN-20241125-000731")
        await wait_until(lambda: len(desk.scans) == 1)


async def test_a_failing_reader_library_is_a_fault_for_the_supervisor():
    desk = Desk()
    task = asyncio.create_task(desk.scanner.run())
    await wait_until(lambda: desk.reader.is_open)
    desk.reader.fail(RuntimeError("evdev exploded"))
    with pytest.raises(RuntimeError, match="evdev exploded"):
        await task
    assert desk.scanner.health().state == "failed"


async def test_aim_prefixes_give_the_symbology():
    async with Desk(aim_prefix=True) as desk:
        desk.reader.scan("]Q1IHN-20241125-000731")
        await wait_until(lambda: len(desk.scans) == 1)
    assert (desk.scans[0].symbology, desk.scans[0].code, desk.scans[0].code_kind) == (
        "qr", "IHN-20241125-000731", "ihanoi-booking"
    )


async def test_the_config_can_replace_the_classification_table():
    table = [{"name": "queue-ticket", "pattern": r"Q(?P<number>\d{4})", "keep": ["number"]}]
    async with Desk(code_kinds=table) as desk:
        desk.reader.scan("Q0042")
        desk.reader.scan("IHN-20241125-000731")
        await wait_until(lambda: len(desk.scans) == 2)
    assert [(s.code_kind, s.fields) for s in desk.scans] == [
        ("queue-ticket", {"number": "0042"}), ("unknown", {"length": "19"})
    ]
    assert desk.scans[1].code != "IHN-20241125-000731", "an unknown code is redacted by default"


async def test_unknown_codes_are_kept_only_when_configured():
    async with Desk(unknown_codes="keep") as desk:
        desk.reader.scan("SOMETHING-ELSE-42")
        await wait_until(lambda: len(desk.scans) == 1)
    assert desk.scans[0].code == "SOMETHING-ELSE-42" and desk.scans[0].code_kind == "unknown"


async def test_the_fake_reader_scans_demo_codes_by_itself():
    async with Desk(fake_scan_every="5ms") as desk:
        await wait_until(lambda: len(desk.scans) >= 5)
    assert {s.code_kind for s in desk.scans} <= {"ihanoi-booking", "dossier-receipt", "unknown", "citizen-id"}


def test_demo_codes_classify_as_their_kinds_and_the_citizen_is_invented():
    import random
    from datetime import date

    from devices.scanner.codes import CodeClassifier, shipped_kinds

    classifier = CodeClassifier(shipped_kinds(), hash_key=None)
    rng = random.Random(7)
    kinds = {classifier.classify(demo_code(rng, date(2026, 11, 25))).kind for _ in range(300)}
    assert kinds == {"ihanoi-booking", "dossier-receipt", "unknown", "citizen-id"}


def test_a_refused_scan_event_names_the_field_but_never_the_code():
    scanner = build_scanner(ScannerConfig(id="qr-1", source="fake"), record=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="code: String should have at most 4096 characters") as raised:
        scanner._event(Classified("unknown", "x" * 4096 + "SECRET-PART"), None, False)
    assert "SECRET" not in str(raised.value)


def test_the_registry_builds_scanners_from_config():
    scanner = build_driver(ScannerConfig(id="qr-1", source="fake"), record=None)  # type: ignore[arg-type]
    assert isinstance(scanner, Scanner) and scanner.kind == "scanner"


def test_every_reader_adapter_implements_the_interface():
    from devices.scanner.adapter import ReaderAdapter
    from devices.scanner.evdev_adapter import EvdevReader
    from devices.scanner.serial_adapter import SerialReader

    wanted = {n for n in dir(ReaderAdapter) if not n.startswith("_")}
    assert wanted == {"open", "items", "acknowledge", "close"}
    for adapter in (FakeReader, EvdevReader, SerialReader):
        assert wanted <= set(dir(adapter)), adapter


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"source": "evdev"}, "device or match is required when source is 'evdev'"),
        ({"source": "serial"}, "device or match is required when source is 'serial'"),
        ({"source": "evdev", "device": "/dev/input/by-id/x", "terminator": "cr"}, "is a serial byte"),
        ({"ack": "06"}, "ack is for serial readers only"),
        ({"source": "serial", "device": "/dev/serial/by-id/x", "ack": "beep"}, "not hex bytes"),
        ({"timeout": "soon"}, "'soon' is not a valid duration"),
        ({"code_kinds": [{"name": "x", "pattern": "(?P<a>", "keep": ["a"]}]}, "not a regular expression"),
        ({"counter": ""}, "counter"),
        ({"colour": "red"}, "colour"),
    ],
    ids=["evdev-without-device", "serial-without-device", "wedge-with-serial-terminator",
         "ack-on-fake", "ack-not-hex", "bad-timeout", "bad-table", "empty-counter", "unknown-key"],
)
def test_bad_scanner_config_is_refused_naming_the_problem(overrides, message):
    with pytest.raises(ValidationError, match=message):
        ScannerConfig(id="qr-1", source=overrides.pop("source", "fake"), **overrides)


def test_durations_and_the_table_survive_a_round_trip_through_json():
    config = ScannerConfig(id="qr-1", source="fake", timeout="250ms",
                           code_kinds=[{"name": "q", "pattern": r"Q\d+"}])
    again = ScannerConfig.model_validate(json.loads(config.model_dump_json()))
    assert again == config and again.timeout == 0.25
