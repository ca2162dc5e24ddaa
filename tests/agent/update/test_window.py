"""The maintenance window (Hanoi time) and the busy check."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from agent.update.settings import MaintenanceWindow, UpdateSettings, may_install_now


def utc(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 25, hour, minute, tzinfo=timezone.utc)


@pytest.mark.parametrize("start, end, moment, inside", [
    ("01:00", "05:00", utc(18, 0), True),    # 01:00 Hanoi: start is inside
    ("01:00", "05:00", utc(21, 59), True),   # 04:59
    ("01:00", "05:00", utc(22, 0), False),   # 05:00: end is outside
    ("01:00", "05:00", utc(3, 0), False),    # 10:00, opening hours
    ("22:00", "05:00", utc(15, 0), True),    # 22:00, across midnight
    ("22:00", "05:00", utc(20, 0), True),    # 03:00
    ("22:00", "05:00", utc(14, 59), False),  # 21:59
    ("00:00", "00:00", utc(5, 0), True),     # all day
], ids=["start", "before-end", "end", "daytime", "cross-start", "cross-night", "cross-before", "all-day"])
def test_the_window_is_read_in_hanoi_time(start, end, moment, inside):
    assert MaintenanceWindow(start=start, end=end).contains(moment) is inside


@pytest.mark.parametrize("moment, busy, forced, allowed, says", [
    (utc(19), None, False, True, "inside the maintenance window"),
    (utc(5), None, False, False, "outside the maintenance window 01:00–05:00 Hanoi time"),
    (utc(19), "a call is being spoken", False, False, "node busy: a call is being spoken"),
    (utc(5), "a ticket printing", True, True, "forced by the server"),
], ids=["window-idle", "outside", "busy", "forced"])
def test_may_install_now(moment, busy, forced, allowed, says):
    decision = may_install_now(MaintenanceWindow(), moment, busy, forced)
    assert decision.allowed is allowed and says in decision.reason


def test_bad_settings_name_the_field():
    with pytest.raises(ValidationError, match="start"):
        UpdateSettings.model_validate({"window": {"start": "25:00"}})
    with pytest.raises(ValidationError, match="proving"):
        UpdateSettings.model_validate({"timeouts": {"proving": 0}})
    with pytest.raises(ValueError, match="timezone-aware"):
        MaintenanceWindow().contains(datetime(2026, 1, 1))
