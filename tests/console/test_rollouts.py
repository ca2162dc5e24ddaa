"""The rollouts screens (Pilot) against a real fleet server with a rollout seeded
through the real rollout code (tests/console/conftest.py `seed_rollout`)."""

from __future__ import annotations

from datetime import timedelta

from textual.widgets import DataTable

from fleet_server import store
from fleet_server.rollouts import progress
from rpfleet.console.rollouts import RolloutScreen, RolloutsScreen
from tests.console.conftest import BAD_NODE, NOW, loaded, until
from tests.console.test_flows import rows, text_of


async def test_the_rollouts_show_a_halted_rollout_its_waves_gate_and_reason(
        console, seeded_fleet, rollout_id):
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("u")
        screen = await loaded(pilot, RolloutsScreen)
        table = screen.query_one("#rollouts", DataTable)
        assert rows(table) == [str(rollout_id)]
        cells = [str(c) for c in table.get_row(str(rollout_id))]
        assert cells[1:4] == ["1.1.0", "halted", "1/2"]
        assert cells[5] == "0/7 proven, 1 failed"
        assert "active: 1.1.0 halted" in text_of(screen, "#rollouts-status")

        await pilot.press("enter")
        detail = await loaded(pilot, RolloutScreen)
        reason = text_of(detail, "#rollout-reason")
        assert f"{BAD_NODE} failed: rolled-back: rating pad missing" in reason
        assert detail.query_one("#rollout-reason").border_title == "Why it halted"
        waves = text_of(detail, "#rollout-waves").splitlines()
        assert "4 nodes" in waves[0] and "open" in waves[0]
        assert "2 soaking, 1 absent, 1 failed" in waves[0]
        assert "3 nodes" in waves[1] and "waiting" in waves[1] and "none sent yet" in waves[1]
        gates = text_of(detail, "#rollout-gates")
        assert "halt" in gates and "1 of 4 nodes failed, past the limit of 5%" in gates
        assert "not judged" in gates  # no tap gate: the wave halted before it
        failures = text_of(detail, "#rollout-failures")
        assert BAD_NODE in failures and "rating pad missing" in failures
        status = text_of(detail, "#rollout-status")
        assert "0 of 7 nodes · 1 failed" in status and "cg-01, cg-02, hk-01, hk-02" in status
        hint = text_of(detail, "#rollout-hint")
        assert f"rpfleet server rollout resume {rollout_id}" in hint
        assert f"rpfleet server rollout abort {rollout_id}" in hint

        # Aborted on the server's command line: the next refresh shows it, with no hint.
        engine = store.connect(seeded_fleet.db_url)
        try:
            progress.abort(engine, rollout_id, by="ops", now=NOW - timedelta(minutes=1))
        finally:
            engine.dispose()
        await pilot.press("r")
        await until(pilot, lambda: "aborted" in text_of(detail, "#rollout-status"),
                    "the abort shown")
        assert "aborted by ops" in text_of(detail, "#rollout-reason")
        assert detail.query_one("#rollout-reason").border_title == "Why"
        assert "rpfleet server" not in text_of(detail, "#rollout-hint")

        await pilot.press("escape")
        assert isinstance(pilot.app.screen, RolloutsScreen)
