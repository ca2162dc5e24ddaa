"""The real console (Pilot) against a real fleet server with a seeded fleet."""

from __future__ import annotations

import io
import re

import httpx
from rich.console import Console
from textual.widgets import DataTable, Input, Static

from fleet_server import store
from fleet_server.api import tokens
from rpfleet.console.detail import NodeScreen
from rpfleet.console.screens import NodesScreen, OverviewScreen
from tests.console.conftest import loaded, until


def rows(table: DataTable) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


def text_of(screen, selector: str) -> str:
    """What a Static shows, as plain text (tables included)."""
    out = Console(width=200, file=io.StringIO(), color_system=None)
    out.print(screen.query_one(selector, Static).content)
    return out.file.getvalue()


async def test_the_overview_shows_regions_sites_counts_and_satisfaction(console):
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, OverviewScreen)
        table = screen.query_one("#sites", DataTable)
        assert rows(table) == [
            "region:bd", "site:bd-01",
            "region:cg", "site:cg-03", "site:cg-01", "site:cg-02",  # by name: Bưu, Dịch, Nghĩa
            "region:hk", "site:hk-02", "site:hk-01",
        ]
        hoan_kiem = [str(c) for c in table.get_row("region:hk")]
        assert hoan_kiem[:4] == ["Hoàn Kiếm", "2/3", "1", "2"]
        # 4 taps at hk-01 today, 3 satisfied; 1 at hk-02, not: 3 of 5 in the region.
        assert "60%" in hoan_kiem[4] and "(5)" in hoan_kiem[4]
        assert "75%" in str(table.get_cell("site:hk-01", "today"))
        assert [str(c) for c in table.get_row("region:cg")][:4] == ["Cầu Giấy", "3/5", "2", "1"]
        assert "90%" in str(table.get_cell("region:cg", "today"))  # (19 + 8) of 30
        assert "no ratings" in str(table.get_cell("site:bd-01", "today"))
        summary = text_of(screen, "#fleet-summary")
        assert "5 online" in summary and "2 offline" in summary and "3 alerts" in summary


async def test_the_node_table_filters_live_and_drills_down(console):
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, OverviewScreen)
        await pilot.press("n")
        nodes = await loaded(pilot, NodesScreen)
        table = nodes.query_one("#nodes", DataTable)
        assert rows(table) == ["cg-01-c1", "cg-01-c2", "cg-02-c1", "cg-02-c2", "cg-03-c1",
                               "hk-01-c1", "hk-01-c2", "hk-02-c1", "n-free", "n-gone"]

        filter_box = nodes.query_one("#filter", Input)
        await pilot.press("slash", *"state:off")  # typed: the table follows each key
        assert rows(table) == ["cg-02-c2", "hk-01-c2"]
        await pilot.press(*" hk")
        assert rows(table) == ["hk-01-c2"]
        for typed, shown in [("version:0.2", ["cg-01-c1", "cg-01-c2"]),
                             ("site:hk-01 alert:peri", ["hk-01-c1"])]:
            filter_box.value = typed  # as if pasted
            await pilot.pause()
            assert rows(table) == shown, typed
        assert "1 of 10 nodes" in text_of(nodes, "#filter-status")

        assert nodes.focused is filter_box
        await pilot.press("escape")
        assert nodes.focused is table
        await pilot.press("slash")
        assert nodes.focused is filter_box
        await pilot.press("enter", "enter")  # leave the filter box, open the node
        detail = await loaded(pilot, NodeScreen)
        assert detail.node_id == "hk-01-c1"
        peripherals = text_of(detail, "#node-peripherals")
        assert "ticket-printer" in peripherals and "faulty" in peripherals
        assert "paper out" in text_of(detail, "#node-alerts")
        assert "2 events waiting" in text_of(detail, "#node-health")

        await pilot.press("escape")
        assert pilot.app.screen is nodes


async def test_enter_on_a_site_or_region_opens_its_nodes(console):
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        overview = await loaded(pilot, OverviewScreen)
        table = overview.query_one("#sites", DataTable)
        table.move_cursor(row=rows(table).index("site:hk-01"))
        await pilot.press("enter")
        nodes = await loaded(pilot, NodesScreen)
        assert rows(nodes.query_one("#nodes", DataTable)) == ["hk-01-c1", "hk-01-c2"]

        await pilot.press("f")
        assert pilot.app.screen is overview
        table.move_cursor(row=rows(table).index("region:cg"))
        await pilot.press("enter")
        assert pilot.app.screen is nodes
        assert nodes.query_one("#filter", Input).value == "region:cg"
        assert rows(nodes.query_one("#nodes", DataTable)) == [
            "cg-01-c1", "cg-01-c2", "cg-02-c1", "cg-02-c2", "cg-03-c1"]


async def test_a_lost_server_is_a_banner_and_the_console_recovers(console, seeded_fleet):
    app = console(refresh_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        overview = await loaded(pilot, OverviewScreen)
        banner = overview.query_one("#banner", Static)
        assert not banner.display

        seeded_fleet.stop()
        for _ in range(200):
            if banner.display:
                break
            await pilot.pause(0.05)
        assert banner.display, "no banner after the server stopped"
        shown = text_of(overview, "#banner")
        assert re.search(rf"{seeded_fleet.url} does not answer \(.+\) — retrying", shown), shown
        assert app.is_running
        before = overview.loaded

        seeded_fleet.add_node("hk-02-c2", site_id="hk-02", state="online", agent_version="0.2.0")
        # The new node shows once the server is back: the console reads it again by itself.
        seeded_fleet.start()
        await loaded(pilot, OverviewScreen, times=before + 1)
        assert not banner.display
        assert [str(c) for c in overview.query_one("#sites", DataTable).get_row("site:hk-02")][1] \
            == "2/2"


async def test_a_config_change_shows_as_drift_until_the_nodes_apply_it(console, seeded_fleet):
    changed = httpx.put(f"{seeded_fleet.url}/api/v1/config/layers/site/hk-01",
                        json={"health_interval": "20s"},
                        headers={"Authorization": f"Bearer {seeded_fleet.token}"})
    assert changed.status_code == 200, changed.text
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, OverviewScreen)
        await pilot.press("n")
        nodes = await loaded(pilot, NodesScreen)
        assert "2 not on their latest config" in text_of(nodes, "#filter-status")
        nodes.set_filter("drift:yes")
        await pilot.pause()
        assert rows(nodes.query_one("#nodes", DataTable)) == ["hk-01-c1", "hk-01-c2"]

        await pilot.press("enter")
        detail = await loaded(pilot, NodeScreen)
        config = text_of(detail, "#node-config")
        assert "site:hk-01" in config and "in sync  NO" in config and "— (—)" in config


async def test_a_refused_token_is_a_banner_too(console, seeded_fleet):
    engine = store.connect(seeded_fleet.db_url)
    with engine.begin() as conn:
        revoked = tokens.create(conn, "leaked")
        tokens.revoke(conn, "leaked")
    engine.dispose()
    app = console(token=revoked)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = pilot.app.screen.query_one("#banner", Static)
        await until(pilot, lambda: banner.display, "the banner")
        assert "The server refused the API token" in text_of(pilot.app.screen, "#banner")
        assert app.is_running
