"""The self-test's pure part: which step each peripheral gets, what the technician
is told, and how what was seen becomes a verdict and a record."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from agent.selftest import (
    Outcome,
    PadWatch,
    ScanWatch,
    handover,
    judge_answer,
    judge_probe,
    judge_watch,
    parse_answer,
    plan,
    step_for,
    summary,
)
from devices.rating_pad import RatingPadConfig
from devices.scanner import DocumentScannerConfig, ScannerConfig
from rpfleet.protocol import Channel, decode
from rpfleet.protocol.messages import SCHEMA_VERSION, RatingTap, Scan

AT = datetime(2026, 11, 25, 8, 0, tzinfo=timezone(timedelta(hours=7)))


class Soundbox:
    """A kind without a driver yet: only its id and kind are known."""

    id = "loa-1"
    kind = "soundbox"


def tap(rating: int) -> RatingTap:
    return RatingTap(pad="pad-1", rating=rating, scale=5)


def test_each_kind_gets_its_way_of_being_checked_in_config_order():
    steps = plan([
        RatingPadConfig(id="pad-1", counter="5", source="fake", scale=3),
        ScannerConfig(id="qr-1", source="fake"),
        DocumentScannerConfig(id="desk-1", source="fake"),
        Soundbox(),
    ])

    assert [(s.peripheral, s.kind, s.how) for s in steps] == [
        ("pad-1", "rating-pad", "watch"),
        ("qr-1", "scanner", "watch"),
        ("desk-1", "document-scanner", "probe"),
        ("loa-1", "soundbox", "ask"),
    ]
    assert steps[0].expected == (1, 2, 3)
    assert steps[2].question is not None and steps[3].question is not None


def test_prompts_are_vietnamese_with_diacritics_first_then_english():
    pad = step_for(RatingPadConfig(id="pad-1", counter="5", source="fake", scale=5))

    assert pad.title.vi == "pad-1: bàn phím đánh giá, quầy 5"
    assert pad.title.en == "pad-1: rating pad, counter 5"
    assert pad.instruction.vi == "Nhấn lần lượt từng nút trên bàn phím đánh giá: 1, 2, 3, 4, 5."
    assert pad.instruction.en == "Press each button on the rating pad in turn: 1, 2, 3, 4, 5."
    assert pad.instruction.text("  ") == f"  {pad.instruction.vi}\n  {pad.instruction.en}"
    assert step_for(ScannerConfig(id="qr-1", source="fake")).instruction.en == (
        "Scan the test card (barcode or QR) with the reader."
    )
    sound = step_for(Soundbox())
    assert (sound.instruction.vi, sound.instruction.en) == (
        "Nghe: loa phát câu thông báo thử.", "Listen: test announcement."
    )


def test_an_unknown_kind_is_asked_about_in_general_terms():
    class Turnstile:
        id = "gate-1"
        kind = "turnstile"

    step = step_for(Turnstile())

    assert step.how == "ask"
    assert step.question is not None
    assert step.question.vi == "Thiết bị hoạt động bình thường không?"


def test_a_pad_passes_once_every_button_was_pressed_and_repeats_are_counted():
    watch = PadWatch((1, 2, 3))

    first = watch.feed(tap(3))
    assert first is not None and first.en == "button 3 ✓ — left: 1, 2"
    assert first.vi == "Nút 3 ✓ — còn: 1, 2"
    assert watch.feed(tap(3)) is None, "a repeat is counted, not announced"
    watch.feed(tap(1))
    assert not watch.done
    last = watch.feed(tap(2))

    assert watch.done
    assert last is not None and last.en == "button 2 ✓ — every button seen."
    assert watch.seen() == "ratings pressed: 1, 2, 3 (×2)"
    assert judge_watch(watch, "done", 7.2) == Outcome(True, "ratings pressed: 1, 2, 3 (×2)")


def test_a_pad_missing_a_button_fails_and_says_which():
    watch = PadWatch((1, 2, 3, 4, 5))
    for rating in (1, 2, 4, 5):
        watch.feed(tap(rating))

    outcome = judge_watch(watch, "timeout", 60.0)

    assert outcome == Outcome(False, "ratings pressed: 1, 2, 4, 5; not pressed: 3; no more in 1m")


@pytest.mark.parametrize(
    "ending, device, seen",
    [
        ("timeout", None, "nothing seen in 1m"),
        ("timeout", "missing: [Errno 2] could not open port /dev/serial/by-id/x",
         "nothing seen in 1m; device missing: [Errno 2] could not open port /dev/serial/by-id/x"),
        ("skipped", None, "skipped by the technician (nothing seen)"),
        ("driver-failed", "failed: RuntimeError: boom", "driver failed; device failed: RuntimeError: boom"),
    ],
    ids=["timeout", "device missing", "skipped", "driver failed"],
)
def test_nothing_seen_fails_and_says_why(ending, device, seen):
    assert judge_watch(PadWatch((1, 2, 3)), ending, 60.0, device) == Outcome(False, seen)


def test_a_scanner_passes_on_a_whole_read_and_asks_again_after_a_partial_one():
    watch = ScanWatch()

    again = watch.feed(Scan(scanner="qr-1", code="<redacted unknown>", partial=True, redacted=True))
    assert again is not None and again.en == "Partial read — scan again."
    assert not watch.done
    watch.feed(Scan(scanner="qr-1", code="000.00.12.H26-261125-0042", code_kind="dossier-receipt"))

    assert watch.done
    assert judge_watch(watch, "done", 3) == Outcome(
        True, "read a dossier-receipt code 000.00.12.H26-261125-0042; 1 partial read(s)"
    )


def test_a_personal_code_is_recorded_by_its_kind_only():
    # What the driver hands over for a citizen ID: already redacted, the number only hashed.
    scan = Scan(scanner="qr-1", code="<redacted citizen-id>", code_kind="citizen-id", redacted=True,
                fields={"birth_year": "1990", "id_number_hash": "ab" * 32})
    watch = ScanWatch()

    feedback = watch.feed(scan)
    outcome = judge_watch(watch, "done", 2)

    assert outcome == Outcome(True, "read a citizen-id code (personal data, not kept)")
    assert feedback is not None and "ab" * 32 not in feedback.en + feedback.vi
    assert "1990" not in outcome.seen


def test_a_long_code_is_shortened():
    watch = ScanWatch()
    watch.feed(Scan(scanner="qr-1", code="X" * 300, code_kind="unknown"))

    assert judge_watch(watch, "done", 1).seen == f"read a unknown code {'X' * 64}…"


@pytest.mark.parametrize(
    "typed, answer",
    [
        ("c", True), ("Có", True), ("co", True), ("được", True), ("Đúng", True), ("y", True),
        ("YES", True), ("  ok ", True), ("k", False), ("không", False), ("KHONG", False),
        ("n", False), ("no", False), ("chưa", False), ("", None), ("maybe", None), ("có lẽ", None),
    ],
)
def test_answers_are_read_with_or_without_diacritics(typed, answer):
    assert parse_answer(typed) is answer


def test_a_question_passes_on_yes_only():
    assert judge_answer(True, 60) == Outcome(True, "technician: yes")
    assert judge_answer(False, 60) == Outcome(False, "technician: no")
    assert judge_answer(None, 60) == Outcome(False, "no answer in 1m")
    assert judge_answer(True, 60, probed="ok: FUJITSU fi-7160") == Outcome(
        True, "ok: FUJITSU fi-7160; technician: yes"
    )


def test_a_probe_that_does_not_find_the_device_ready_fails_without_asking():
    assert judge_probe("ok", "FUJITSU fi-7160") is None
    assert judge_probe("missing", "no USB device") == Outcome(False, "missing: no USB device")
    assert judge_probe("degraded", None) == Outcome(False, "degraded")


def test_the_record_holds_one_result_per_step_and_travels_the_wire():
    steps = plan([RatingPadConfig(id="pad-1", source="fake", scale=3),
                  ScannerConfig(id="qr-1", source="fake")])
    outcomes = [Outcome(True, "ratings pressed: 1, 2, 3"),
                Outcome(False, "nothing seen in 1m", note="  cáp USB lỏng ")]

    record = handover("bd-phuong-q1", steps, outcomes, technician="  Trần Thị Bình ",
                      started_at=AT, finished_at=AT + timedelta(minutes=3), agent_version="0.1.0")

    assert len(record.handover_id) == 32
    assert record.technician == "Trần Thị Bình"
    assert not record.passed
    assert [(r.peripheral, r.kind, r.passed, r.seen, r.note) for r in record.results] == [
        ("pad-1", "rating-pad", True, "ratings pressed: 1, 2, 3", None),
        ("qr-1", "scanner", False, "nothing seen in 1m", "  cáp USB lỏng "),
    ]
    assert decode(Channel.HANDOVER, record.to_json()) == record
    assert json.loads(record.to_json())["v"] == SCHEMA_VERSION


def test_no_technician_and_no_peripherals_still_make_a_record():
    record = handover("bd-phuong-q1", [], [], technician="   ", started_at=AT, finished_at=AT,
                      agent_version=None)

    assert record.technician is None
    assert record.passed
    assert summary(record).endswith("no peripherals configured")


def test_the_summary_marks_each_result_and_counts_the_passes():
    steps = plan([RatingPadConfig(id="pad-1", source="fake", scale=3),
                  ScannerConfig(id="qr-1", source="fake")])
    record = handover("n1", steps, [Outcome(True, "ratings pressed: 1, 2, 3"),
                                    Outcome(False, "nothing seen in 1m", "cáp lỏng")],
                      technician=None, started_at=AT, finished_at=AT, agent_version=None)

    assert summary(record) == (
        "  ✓ pad-1  ratings pressed: 1, 2, 3\n"
        "  ✗ qr-1   nothing seen in 1m\n"
        "           ghi chú / note: cáp lỏng\n"
        "1/2 đạt / passed"
    )
