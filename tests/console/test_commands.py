"""Remote commands from the console: a real agent runs what the console sent, through
the real server's jobs API and the broker; destructive commands wait for a yes."""

from __future__ import annotations

import httpx
from textual.widgets import DataTable, OptionList

from rpfleet.console.detail import JobScreen, NodeScreen
from rpfleet.console.screens import JobsScreen, NodesScreen, OverviewScreen
from rpfleet.console.widgets import CommandPicker, Confirm
from tests.console.conftest import loaded, until


def jobs_on_server(fleet) -> list[dict]:
    response = httpx.get(f"{fleet.url}/api/v1/jobs",
                         headers={"Authorization": f"Bearer {fleet.token}"})
    response.raise_for_status()
    return response.json()["items"]


async def open_node(pilot, node: str) -> NodeScreen:
    """From the overview: the node table, filtered to ``node``, then its screen."""
    await loaded(pilot, OverviewScreen)
    await pilot.press("n")
    nodes = await loaded(pilot, NodesScreen)
    await until(pilot, lambda: any(n["id"] == node for n in nodes.shown_nodes()), f"{node} listed")
    nodes.set_filter(node)
    await pilot.pause()
    await pilot.press("enter")
    return await loaded(pilot, NodeScreen)


async def pick(pilot, command: str) -> None:
    """Opens the command list (x) and picks ``command`` with the arrows."""
    await pilot.press("x")
    picker = await until(pilot, lambda: isinstance(pilot.app.screen, CommandPicker)
                         and pilot.app.screen, "the command picker")
    names = [o.id for o in picker.query_one(OptionList).options]
    await pilot.press(*["down"] * names.index(command), "enter")


async def test_a_command_sent_from_the_console_runs_on_the_node_and_its_result_shows(
        console, seeded_fleet, new_node, running_agent):
    node = new_node()
    running_agent(node)
    app = console(refresh_s=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        detail = await open_node(pilot, node)

        await pick(pilot, "self-test")

        table = detail.query_one("#node-commands", DataTable)
        await until(pilot, lambda: table.row_count and
                    str(table.get_row_at(0)[2]) == "done", "self-test done on the node screen")
        assert str(table.get_row_at(0)[1]) == "self-test"
        assert str(table.get_row_at(0)[3]) == "console"  # the token's name is the issuer

        # fetch-logs on its key: the node's answer (its journal lines, none on this
        # machine for the unit) is read with its output and shown under the node.
        logs = detail.query_one("#node-logs")
        await pilot.press("l")
        await until(pilot, lambda: str(table.get_row_at(0)[1]) == "fetch-logs"
                    and str(table.get_row_at(0)[2]) == "done", "fetch-logs done")
        await until(pilot, lambda: str(logs.border_subtitle).startswith("job "), "the log shown")
        assert str(logs.border_subtitle) == f"job {table.ordered_rows[0].key.value[:8]}"

        await pilot.press("j")
        jobs = await loaded(pilot, JobsScreen)
        job_table = jobs.query_one("#jobs", DataTable)
        await until(pilot, lambda: job_table.row_count, "the job listed")
        assert [str(c) for c in job_table.get_row_at(1)][1:3] == ["self-test", node]
        assert "1 done" in str(job_table.get_row_at(1)[4])
        job_table.move_cursor(row=1)
        await pilot.press("enter")
        job = await loaded(pilot, JobScreen)
        outcome = [str(c) for c in job.query_one("#job-nodes", DataTable).get_row_at(0)]
        assert outcome[:2] == [node, "done"]
        assert "ok" in outcome[3]


async def test_reboot_asks_first_and_no_means_nothing_is_sent(console, seeded_fleet):
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_node(pilot, "hk-01-c1")
        await pick(pilot, "reboot")
        question = await until(pilot, lambda: isinstance(app.screen, Confirm) and app.screen,
                               "the confirmation")
        assert question.question == "reboot on hk-01-c1?"
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NodeScreen), "back on the node")
        assert jobs_on_server(seeded_fleet) == []

        await pick(pilot, "reboot")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation again")
        await pilot.press("y")
        sent = await until(pilot, lambda: jobs_on_server(seeded_fleet), "the reboot job")
        assert [(j["command"], j["selector"]) for j in sent] == [
            ("reboot", {"nodes": ["hk-01-c1"]})]


async def test_a_command_for_a_whole_site_is_one_job_and_asks_first(console, seeded_fleet):
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        overview = await loaded(pilot, OverviewScreen)
        table = overview.query_one("#sites", DataTable)
        table.move_cursor(row=[r.key.value for r in table.ordered_rows].index("site:hk-01"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, CommandPicker), "the command picker")
        await pilot.press("enter")  # the first: identify, harmless, but for many nodes
        question = await until(pilot, lambda: isinstance(app.screen, Confirm) and app.screen,
                               "the confirmation")
        assert question.question == "identify on every node of site hk-01?"
        await pilot.press("y")
        sent = await until(pilot, lambda: jobs_on_server(seeded_fleet), "the job")
        assert [(j["command"], j["selector"], j["progress"]["total"]) for j in sent] == [
            ("identify", {"site": "hk-01"}, 2)]
