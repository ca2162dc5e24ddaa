"""When a dashboard's screen should be on (pure code): office hours on working days, local
time, switched on `on_before` ahead of opening and off `off_after` past closing."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from devices.kiosk_browser.config import ScreenSchedule

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def screen_on(schedule: ScreenSchedule, now: datetime) -> bool:
    """True when the screen should be on at ``now`` (an aware datetime, any zone)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(ZoneInfo(schedule.timezone))
    day = local.date()
    opens = datetime.combine(day, schedule.opens, local.tzinfo) - timedelta(seconds=schedule.on_before)
    closes = datetime.combine(day, schedule.closes, local.tzinfo) + timedelta(seconds=schedule.off_after)
    return _DAYS[local.weekday()] in schedule.days and opens <= local < closes
