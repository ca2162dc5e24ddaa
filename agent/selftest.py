"""The guided self-test at handover: what to ask of each peripheral, and how to judge
what comes back. Pure: no devices, no terminal, no network (those are in
`agent.selftest_run` and `agent.selftest_send`).

Each configured peripheral is one `Step`, done in one of three ways:

- ``watch``: the node watches what the peripheral sends while the technician
  works it. A rating pad passes once every configured button has been pressed,
  a barcode/QR reader once it has read a whole code.
- ``probe``: the node looks at the device itself (a document scanner: udev and
  SANE), and only if it looks ready asks the technician the question.
- ``ask``: only a person can tell (a sound, a printed ticket, a screen), so the
  technician answers yes or no. Kinds without a driver yet are asked too.

Prompts are in Vietnamese with diacritics first, then English. What a result
records as ``seen`` is short English for IT support, and never the content of
personal data: a scanned citizen ID comes from the driver already redacted and
is recorded by its kind only.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Literal, Protocol, Sequence
from uuid import uuid4

from rpfleet.durations import format_duration
from rpfleet.protocol.messages import EventDetail, Handover, HandoverResult, RatingTap, Scan

SEEN_LIMIT = 500
"""The wire's limit for a result's ``seen``."""
NOTE_LIMIT = 2000
CODE_SHOWN = 64
"""At most this much of a (non-personal) code is recorded."""

How = Literal["watch", "probe", "ask"]


@dataclass(frozen=True)
class Prompt:
    """One thing said to the technician, in Vietnamese and in English."""

    vi: str
    en: str

    def text(self, indent: str = "") -> str:
        return f"{indent}{self.vi}\n{indent}{self.en}"


KIND_NAMES: dict[str, Prompt] = {
    "rating-pad": Prompt("bàn phím đánh giá", "rating pad"),
    "scanner": Prompt("máy đọc mã vạch/QR", "barcode/QR reader"),
    "document-scanner": Prompt("máy quét tài liệu", "document scanner"),
    "soundbox": Prompt("loa thông báo", "soundbox"),
    "ticket-printer": Prompt("máy in vé", "ticket printer"),
    "printer": Prompt("máy in", "printer"),
    "kiosk": Prompt("ki-ốt tự phục vụ", "self-service kiosk"),
    "dashboard": Prompt("màn hình hiển thị", "dashboard screen"),
}

# What only a person can check, for kinds whose check is a question.
QUESTIONS: dict[str, tuple[Prompt, Prompt]] = {
    "soundbox": (
        Prompt("Nghe: loa phát câu thông báo thử.", "Listen: test announcement."),
        Prompt("Bạn có nghe rõ câu thông báo thử không?", "Did you hear the test announcement clearly?"),
    ),
    "ticket-printer": (
        Prompt("Kiểm tra vé vừa in.", "Check the ticket printed."),
        Prompt("Vé in ra rõ chữ và được cắt gọn không?", "Is the ticket printed clearly and cut cleanly?"),
    ),
    "printer": (
        Prompt("Kiểm tra trang vừa in.", "Check the page printed."),
        Prompt("Trang in ra rõ chữ không?", "Is the page printed clearly?"),
    ),
    "kiosk": (
        Prompt("Chạm vào vài nút trên màn hình ki-ốt.", "Touch a few buttons on the kiosk screen."),
        Prompt("Màn hình phản hồi đúng chỗ bạn chạm không?", "Does the screen respond where you touch?"),
    ),
    "dashboard": (
        Prompt("Nhìn màn hình hiển thị.", "Look at the dashboard screen."),
        Prompt("Màn hình có hiện số thứ tự và đánh giá hôm nay không?",
               "Does it show the queue calls and today's ratings?"),
    ),
    "document-scanner": (
        Prompt("Quét thử một trang bằng phần mềm tại bàn.",
               "Scan a test page with the desk's own software."),
        Prompt("Trang quét thử có rõ không?", "Did the test page come out clearly?"),
    ),
}

DEFAULT_QUESTION = (
    Prompt("Kiểm tra thiết bị này.", "Check this device."),
    Prompt("Thiết bị hoạt động bình thường không?", "Does it work as it should?"),
)


@dataclass(frozen=True)
class Step:
    peripheral: str
    kind: str
    how: How
    title: Prompt
    """Which peripheral: its id, kind and counter."""
    instruction: Prompt
    """What the technician does now."""
    question: Prompt | None = None
    """The yes/no question (probe and ask steps)."""
    expected: tuple[int, ...] = ()
    """Rating pads: the ratings its buttons give."""


class PeripheralConfig(Protocol):
    id: str
    kind: str


def plan(peripherals: Sequence[PeripheralConfig]) -> list[Step]:
    """One step per configured peripheral, in the order of the config."""
    return [step_for(p) for p in peripherals]


def step_for(config: PeripheralConfig) -> Step:
    kind = config.kind
    name = KIND_NAMES.get(kind, Prompt(kind, kind))
    counter = getattr(config, "counter", None)
    title = Prompt(
        f"{config.id}: {name.vi}" + (f", quầy {counter}" if counter else ""),
        f"{config.id}: {name.en}" + (f", counter {counter}" if counter else ""),
    )
    if kind == "rating-pad":
        ratings = tuple(sorted(set(getattr(config, "keys").values())))
        shown = ", ".join(map(str, ratings))
        return Step(config.id, kind, "watch", title, Prompt(
            f"Nhấn lần lượt từng nút trên bàn phím đánh giá: {shown}.",
            f"Press each button on the rating pad in turn: {shown}.",
        ), expected=ratings)
    if kind == "scanner":
        return Step(config.id, kind, "watch", title, Prompt(
            "Quét thẻ thử (mã vạch hoặc QR) bằng máy đọc.",
            "Scan the test card (barcode or QR) with the reader.",
        ))
    instruction, question = QUESTIONS.get(kind, DEFAULT_QUESTION)
    return Step(config.id, kind, "probe" if kind == "document-scanner" else "ask",
                title, instruction, question)


# ---- watching -------------------------------------------------------------


class Watch(Protocol):
    """Judges a watch step from the events its peripheral sends."""

    def feed(self, detail: EventDetail) -> Prompt | None:
        """Take one event; returns feedback for the technician, if any."""

    @property
    def done(self) -> bool:
        """Nothing more is needed: the step has passed."""

    def seen(self) -> str:
        """What was seen so far, in short (empty: nothing)."""


@dataclass
class PadWatch:
    """Passes once each of the pad's ratings has been pressed."""

    expected: tuple[int, ...]
    pressed: Counter[int] = field(default_factory=Counter)

    def feed(self, detail: EventDetail) -> Prompt | None:
        if not isinstance(detail, RatingTap):
            return None
        self.pressed[detail.rating] += 1
        if self.pressed[detail.rating] > 1:
            return None  # said once per button; repeats are only counted
        left = self.missing()
        if not left:
            return Prompt(f"Nút {detail.rating} ✓ — đã đủ các nút.",
                          f"button {detail.rating} ✓ — every button seen.")
        rest = ", ".join(map(str, left))
        return Prompt(f"Nút {detail.rating} ✓ — còn: {rest}", f"button {detail.rating} ✓ — left: {rest}")

    def missing(self) -> list[int]:
        return [r for r in self.expected if not self.pressed[r]]

    @property
    def done(self) -> bool:
        return not self.missing()

    def seen(self) -> str:
        if not self.pressed:
            return ""
        counts = ", ".join(
            f"{r}" + (f" (×{n})" if n > 1 else "") for r, n in sorted(self.pressed.items())
        )
        missing = self.missing()
        return f"ratings pressed: {counts}" + (
            f"; not pressed: {', '.join(map(str, missing))}" if missing else ""
        )


@dataclass
class ScanWatch:
    """Passes once the reader has read a whole code."""

    whole: Scan | None = None
    partial: int = 0

    def feed(self, detail: EventDetail) -> Prompt | None:
        if not isinstance(detail, Scan) or self.whole is not None:
            return None
        if detail.partial:
            self.partial += 1
            return Prompt("Mã đọc chưa trọn — quét lại.", "Partial read — scan again.")
        self.whole = detail
        return Prompt(f"Đã đọc: {describe_scan(detail)} ✓", f"read: {describe_scan(detail)} ✓")

    @property
    def done(self) -> bool:
        return self.whole is not None

    def seen(self) -> str:
        parts = []
        if self.whole is not None:
            parts.append(f"read {describe_scan(self.whole)}")
        if self.partial:
            parts.append(f"{self.partial} partial read(s)")
        return "; ".join(parts)


def describe_scan(scan: Scan) -> str:
    """A scan in a few words: its kind, and the code itself only when the driver kept it
    (a personal code arrives redacted and is never shown)."""
    kind = scan.code_kind or "unknown"
    if scan.redacted:
        return f"a {kind} code (personal data, not kept)"
    code = scan.code if len(scan.code) <= CODE_SHOWN else scan.code[:CODE_SHOWN] + "…"
    return f"a {kind} code {code}"


def watch_for(step: Step) -> Watch:
    if step.kind == "rating-pad":
        return PadWatch(step.expected)
    if step.kind == "scanner":
        return ScanWatch()
    raise ValueError(f"{step.kind} is not watched")


# ---- judging ---------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    passed: bool
    seen: str
    note: str | None = None


Ending = Literal["done", "timeout", "skipped", "driver-failed"]


def judge_watch(
    watch: Watch, ending: Ending, waited_s: float, device: str | None = None
) -> Outcome:
    """The verdict of a watch step. ``device``: what the driver said of its device when
    it was not serving (missing, failed), worth recording when nothing came."""
    seen = watch.seen()
    if ending == "timeout":
        why = f"no more in {format_duration(round(waited_s))}" if seen else (
            f"nothing seen in {format_duration(round(waited_s))}"
        )
    elif ending == "skipped":
        why = "skipped by the technician" + ("" if seen else " (nothing seen)")
    elif ending == "driver-failed":
        why = "driver failed"
    else:
        why = ""
    text = "; ".join(part for part in (seen, why, device and f"device {device}") if part)
    return Outcome(watch.done, clip(text or "nothing seen"))


def judge_probe(state: str, detail: str | None) -> Outcome | None:
    """A probe that did not find the device ready fails at once; None: ask the question."""
    if state == "ok":
        return None
    return Outcome(False, clip(f"{state}: {detail}" if detail else state))


YES = {"c", "co", "y", "yes", "ok", "d", "dung", "duoc", "1", "roi"}
NO = {"k", "ko", "khong", "n", "no", "0", "chua"}


def parse_answer(text: str) -> bool | None:
    """``có``/``yes``/``được``… -> True, ``không``/``no``… -> False, anything else None.

    Diacritics and case do not matter (``Có``, ``co``, ``KHÔNG``, ``khong``).
    """
    folded = _fold(text)
    if folded in YES:
        return True
    if folded in NO:
        return False
    return None


def judge_answer(answer: bool | None, waited_s: float, probed: str | None = None) -> Outcome:
    """The verdict of a question: ``None`` means no answer came in time."""
    said = {True: "technician: yes", False: "technician: no"}.get(
        answer, f"no answer in {format_duration(round(waited_s))}"  # type: ignore[arg-type]
    )
    text = f"{probed}; {said}" if probed else said
    return Outcome(answer is True, clip(text))


def clip(text: str, limit: int = SEEN_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fold(text: str) -> str:
    """Lower case without diacritics; đ becomes d."""
    decomposed = unicodedata.normalize("NFD", text.strip().lower().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# ---- the record -----------------------------------------------------------


def handover(
    node: str,
    steps: Iterable[Step],
    outcomes: Iterable[Outcome],
    *,
    technician: str | None,
    started_at: datetime,
    finished_at: datetime,
    agent_version: str | None,
    handover_id: str | None = None,
) -> Handover:
    """The record sent to the server: one result per step, in order."""
    return Handover(
        handover_id=handover_id or uuid4().hex,
        node=node,
        technician=(technician or "").strip()[:100] or None,
        started_at=started_at,
        finished_at=finished_at,
        agent_version=agent_version,
        results=[
            HandoverResult(
                peripheral=step.peripheral,
                kind=step.kind,
                passed=outcome.passed,
                seen=clip(outcome.seen),
                note=clip(outcome.note, NOTE_LIMIT) if outcome.note else None,
            )
            for step, outcome in zip(steps, outcomes, strict=True)
        ],
    )


def summary(record: Handover) -> str:
    """The results as the technician sees them at the end."""
    width = max((len(r.peripheral) for r in record.results), default=0)
    lines = [
        f"  {'✓' if r.passed else '✗'} {r.peripheral:<{width}}  {r.seen}"
        + (f"\n    {' ' * width}  ghi chú / note: {r.note}" if r.note else "")
        for r in record.results
    ]
    passed = sum(r.passed for r in record.results)
    total = len(record.results)
    lines.append(f"{passed}/{total} đạt / passed" if total else
                 "Không có thiết bị ngoại vi nào được cấu hình / no peripherals configured")
    return "\n".join(lines)
