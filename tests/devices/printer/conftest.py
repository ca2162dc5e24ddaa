"""Fixtures of the ticket printer tests."""

from __future__ import annotations

import pytest

from devices.printer import driver as driver_module


@pytest.fixture(autouse=True)
def quick_job_reopen(monkeypatch):
    # A job looking for a printer that is not there gives up after these (not after ~3 s).
    monkeypatch.setattr(driver_module, "JOB_REOPEN_DELAYS_S", (0.0, 0.05, 0.1))
