"""What each command does on the node, with the node's real drivers (fake devices) where a
command touches them, and the real journalctl adapter against a stand-in executable."""

from __future__ import annotations

import asyncio
import stat
from datetime import datetime, timedelta, timezone

import pytest

from agent.commands.args import FetchLogsArgs, parse_args
from agent.commands.handlers import MAX_SCREENSHOT_BYTES, Handlers, NodeParts
from agent.commands.journal import MAX_LOG_BYTES, BadRange, bounded, log_range
from agent.commands.journal_adapter import JournalCtl
from agent.commands.system import FakeSystemActions
from devices.rating_pad.config import RatingPadConfig
from devices.registry import build_driver
from devices.soundbox.config import SoundboxConfig
from tests.agent.commands.helpers import NOW, FakeJournal, command


async def discard(detail, at):
    pass


def pad(counter: str | None = "5"):
    return build_driver(RatingPadConfig(kind="rating-pad", id="pad-1", counter=counter,
                                        source="fake"), discard)


def soundbox(counters=("5",)):
    return build_driver(SoundboxConfig(kind="soundbox", id="loa-1", counters=counters,
                                       output="fake"), discard)


def handlers(*drivers, journal=None, now=None) -> Handlers:
    when = now or datetime.now(timezone.utc)
    return Handlers(NodeParts(drivers=lambda: list(drivers), system=FakeSystemActions(),
                              journal=journal or FakeJournal(), clock=lambda: when))


def run(h: Handlers, name: str, **args):
    sent = command(name, args=args, issued_at=h.parts.clock())
    return asyncio.run(h.run(sent, parse_args(name, args))), sent


def test_identify_asks_the_soundbox_to_say_the_node_counter_and_says_the_pad_cannot_blink():
    box = soundbox()
    done, sent = run(handlers(pad("5"), box), "identify")
    assert done.outcome == "ok"
    assert done.output["counter"] == "5"
    assert done.output["soundboxes"] == ["loa-1"]
    assert "cannot blink" in done.output["pads"]["pad-1"]
    queued = box.queue.take().entry
    assert (queued.announce.kind, queued.announce.counter, queued.announce.id) == ("identify", "5", sent.id)


def test_identify_without_any_counter_fails_saying_how_to_give_one():
    done, _ = run(handlers(pad(None), soundbox(counters=())), "identify")
    assert done.outcome == "failed"
    assert "--arg counter=N" in done.detail


def test_identify_with_nothing_to_say_it_or_blink_fails():
    done, _ = run(handlers(pad("5")), "identify")
    assert done.outcome == "failed"
    assert "no soundbox" in done.detail


def test_test_sound_goes_to_every_soundbox_and_fails_without_one():
    box = soundbox()
    done, _ = run(handlers(pad(), box), "test-sound")
    assert done.outcome == "ok" and done.output["soundboxes"] == ["loa-1"]
    assert box.queue.take().entry.announce.kind == "test"
    assert run(handlers(pad()), "test-sound")[0].outcome == "failed"


def test_self_test_reports_each_peripheral_and_fails_when_one_is_not_ok():
    done, _ = run(handlers(pad(), soundbox()), "self-test")
    states = {p["id"]: p["state"] for p in done.output["peripherals"]}
    assert states == {"pad-1": "missing", "loa-1": "missing"}  # not started: no device open
    assert done.outcome == "failed" and done.output["passed"] is False
    assert "2 of 2" in done.detail


class Screen:
    """A browser driver's screenshot interface (devices/kiosk_browser), giving ``size`` bytes."""

    id, kind = "kiosk-1", "kiosk-browser"

    def __init__(self, size: int) -> None:
        self.size = size
        self.asked: list[int] = []

    async def screenshot(self, max_width: int = 640):
        self.asked.append(max_width)
        return b"\x89PNG" + b"\0" * (self.size - 4), "image/png"


def test_screenshot_without_a_browser_is_refused_saying_so():
    done, _ = run(handlers(pad()), "screenshot")
    assert done.outcome == "refused"
    assert "no kiosk or dashboard browser" in done.detail


def test_screenshot_is_downscaled_by_the_driver_and_bounded_in_size():
    small = Screen(2000)
    done, _ = run(handlers(pad(), small), "screenshot", max_width=320)
    assert done.outcome == "ok" and small.asked == [320]
    assert done.output["media_type"] == "image/png" and done.output["bytes"] == 2000
    huge, _ = run(handlers(Screen(MAX_SCREENSHOT_BYTES + 1)), "screenshot")
    assert huge.outcome == "failed" and "smaller max_width" in huge.detail


# fetch-logs --------------------------------------------------------------------


def test_fetch_logs_keeps_the_newest_lines_within_the_byte_cap():
    long_lines = [f"{n:06d} " + "x" * 993 for n in range(2000)]  # 1000 bytes each
    done, _ = run(handlers(journal=FakeJournal(long_lines)), "fetch-logs", lines=2000)
    kept = done.output["lines"]
    assert done.outcome == "ok" and done.output["truncated"] is True
    assert sum(len(line.encode()) + 1 for line in kept) <= MAX_LOG_BYTES
    assert kept[-1].startswith("001999") and len(kept) < 2000


def test_bounded_cuts_overlong_lines_and_counts_lines():
    kept, cut = bounded(["a", "b", "c"], 2)
    assert kept == ["b", "c"] and cut
    kept, cut = bounded(["é" * 5000], 10)
    assert cut and len(kept[0]) == 2001
    assert bounded(["a"], 10) == (["a"], False)


def test_the_log_range_is_at_most_a_day_and_never_backwards():
    now = NOW
    span = log_range(FetchLogsArgs(since="2h"), now)
    assert (span.since, span.until) == (now - timedelta(hours=2), now)
    assert log_range(FetchLogsArgs(), now).since == now - timedelta(hours=1)
    later = log_range(FetchLogsArgs(until=now + timedelta(days=3)), now)
    assert later.until == now  # never the future
    with pytest.raises(BadRange, match="args.since: the range is 2 days"):
        log_range(FetchLogsArgs(since="48h"), now)
    with pytest.raises(BadRange, match="is not before"):
        log_range(FetchLogsArgs(since=now, until=now - timedelta(minutes=1)), now)


def test_a_range_too_long_is_refused():
    done, _ = run(handlers(), "fetch-logs", since="3d")
    assert done.outcome == "refused" and "args.since" in done.detail


def stand_in_journalctl(tmp_path, script: str) -> str:
    path = tmp_path / "journalctl"
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_journalctl_is_asked_for_the_unit_range_and_line_count(tmp_path):
    exe = stand_in_journalctl(tmp_path, 'printf "%s\\n" "$@"\n')
    since = datetime(2026, 11, 25, 1, 0, tzinfo=timezone(timedelta(hours=7)))
    lines = asyncio.run(JournalCtl(exe).read("rpfleet-agent", since, NOW, 50))
    assert lines == ["--no-pager", "-q", "-o", "short-iso", "-u", "rpfleet-agent",
                     "--since", "2026-11-24 18:00:00 UTC", "--until", "2026-11-25 09:30:00 UTC",
                     "-n", "50"]


def test_a_failing_journalctl_is_an_oserror_with_its_message(tmp_path):
    exe = stand_in_journalctl(tmp_path, 'echo "No journal files were found." >&2; exit 1\n')
    with pytest.raises(OSError, match="No journal files were found"):
        asyncio.run(JournalCtl(exe).read("x", NOW - timedelta(hours=1), NOW, 5))
    with pytest.raises(OSError, match="not installed"):
        asyncio.run(JournalCtl(str(tmp_path / "absent")).read("x", NOW - timedelta(hours=1), NOW, 5))
