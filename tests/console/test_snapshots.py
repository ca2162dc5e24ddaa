"""Snapshots of the main screens at 80×24 (SSH) and 160×48 (full screen), on the seeded
fleet with the clock fixed (tests/console/conftest.py). After a deliberate change of
the screens: `pytest tests/console --snapshot-update`, then look at the SVGs."""

from __future__ import annotations

import pytest

from rpfleet.console.detail import NodeScreen
from rpfleet.console.rollouts import RolloutScreen, RolloutsScreen
from rpfleet.console.screens import AlertsScreen, NodesScreen, OverviewScreen
from tests.console.conftest import loaded

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


def settle_on(screen_type, *keys: str):
    """A `run_before` that presses ``keys`` and waits until ``screen_type`` has loaded,
    with the server's address (a free port, different each run) left out of the header."""

    async def run_before(pilot) -> None:
        await loaded(pilot, OverviewScreen)
        if keys:
            await pilot.press(*keys)
        await loaded(pilot, screen_type)
        pilot.app.sub_title = "http://fleet.example:8080"
        await pilot.pause()

    return run_before


@SIZES
def test_overview(snap_compare, console, size):
    assert snap_compare(console(), terminal_size=size, run_before=settle_on(OverviewScreen))


@SIZES
def test_node_table(snap_compare, console, size):
    assert snap_compare(console(), terminal_size=size, run_before=settle_on(NodesScreen, "n"))


@SIZES
def test_node_detail(snap_compare, console, size):
    """hk-01-c1: health, a faulty printer with its open alert, config not yet applied."""

    async def run_before(pilot) -> None:
        await settle_on(NodesScreen, "n")(pilot)
        pilot.app.screen.set_filter("hk-01-c1")
        await pilot.pause()
        await pilot.press("enter")
        await loaded(pilot, NodeScreen)
        await pilot.pause()

    assert snap_compare(console(), terminal_size=size, run_before=run_before)


@SIZES
def test_alerts(snap_compare, console, size):
    assert snap_compare(console(), terminal_size=size, run_before=settle_on(AlertsScreen, "a"))


@SIZES
def test_rollouts(snap_compare, console, rollout_id, size):
    """The seeded rollout of 1.1.0, halted in its first wave (tests/console/conftest.py)."""
    assert snap_compare(console(), terminal_size=size, run_before=settle_on(RolloutsScreen, "u"))


@SIZES
def test_rollout_detail(snap_compare, console, rollout_id, size):
    """Its waves with their bars and counts, the gate that halted it, the failed node."""

    async def run_before(pilot) -> None:
        await settle_on(RolloutsScreen, "u")(pilot)
        await pilot.press("enter")
        await loaded(pilot, RolloutScreen)
        await pilot.pause()

    assert snap_compare(console(), terminal_size=size, run_before=run_before)
