"""Drill-down screens: one node (health, peripherals, alerts, config, commands, logs)
and one job (progress and each node's outcome)."""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, ProgressBar, Static

from rpfleet.console import view
from rpfleet.console.client import (
    DESTRUCTIVE,
    ApiError,
    JobRequest,
    RouteMissing,
    ServerUnreachable,
)
from rpfleet.console.widgets import CommandPicker, Confirm, FleetScreen, sync_table

LOG_LINES_SHOWN = 100
"""The newest lines of a fetched log shown under a node (the node sends at most 2000)."""
EVENTS_SHOWN = 10
"""The node's newest stored events shown on its screen."""
REVOKE = "revoke"
"""The node screen's last choice in the command list: lock the node out (the server's)."""
STATE_STYLE = {"online": "green", "offline": "bold red", "ok": "green", "faulty": "bold red",
               "done": "green", "failed": "bold red", "expired": "yellow", "pending": "dim"}


def facts_table(facts: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for label, value in facts:
        table.add_row(label, Text(value, style=STATE_STYLE.get(value, "")))
    return table


class NodeScreen(FleetScreen):
    """Everything about one node, with its remote commands on keys."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("x", "command", "Send"),
        Binding("i", "send('identify')", "Identify"),
        Binding("l", "send('fetch-logs')", "Logs", show=False),
        Binding("R", "revoke", "Revoke", show=False),
    ]
    # Reboot and the rest are in the x list (reboot asks first): one key fewer keeps the
    # footer whole at 80 columns. So is fetch-logs, whose `l` the Logs panel names. Revoke is last in that list too (it asks first), and on
    # a shifted key not shown: it is not a command to the node but the server's, and
    # locks the node out until it is enrolled again on site.
    COLUMNS = {"node-commands": (("Age", "age", 6, 6), ("Command", "command", 13, 13),
                                 ("Outcome", "state", 8, 8), ("By", "by", 10, 16)),
               "node-events": (("Age", "age", 6, 6), ("Kind", "kind", 12, 12),
                               ("Ctr", "counter", 3, 4), ("Detail", "detail", 40, 24))}

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id
        self._logs_of: str | None = None
        """The job whose fetch-logs lines are in ``_logs``."""
        self._logs: list[str] = []
        self._revoked: str | None = None
        """What the last revocation from this screen did, in words."""

    def body(self) -> Iterable[Any]:
        with VerticalScroll(id="node-detail"):
            with Horizontal(classes="columns"):
                with Vertical(classes="column"):
                    yield Static(id="node-status", classes="panel")
                    yield Static(id="node-health", classes="panel")
                    yield Static(id="node-config", classes="panel")
                with Vertical(classes="column"):
                    yield Static(id="node-peripherals", classes="panel")
                    yield Static(id="node-alerts", classes="panel")
                    yield DataTable(id="node-commands", cursor_type="row", classes="panel")
                    yield DataTable(id="node-events", cursor_type="row", classes="panel")
            yield Static(id="node-logs", classes="panel")

    def on_mount(self) -> None:
        self.sub_title = self.node_id
        self.query_one("#node-detail").focus()  # arrows and PgUp/PgDn scroll it at 80×24
        for panel, title in (("status", self.node_id), ("health", "Health"),
                             ("config", "Config"), ("peripherals", "Peripherals"),
                             ("alerts", "Open alerts"), ("commands", "Commands"),
                             ("events", "Recent events"),
                             ("logs", "Logs (last fetch-logs)")):
            self.query_one(f"#node-{panel}").border_title = title

    async def load(self) -> dict[str, Any]:
        api = self.app.api

        async def optional(call) -> Any:
            try:
                return await call
            except RouteMissing:
                return None

        try:
            node = await api.node(self.node_id)
        except ApiError as exc:
            if exc.status != 404 or isinstance(exc, RouteMissing):
                raise
            return {"missing": exc.detail}
        config, commands, events = await asyncio.gather(
            optional(api.node_config(self.node_id)), optional(api.node_commands(self.node_id)),
            optional(api.node_events(self.node_id, limit=EVENTS_SHOWN)))
        if commands:
            await self._fetch_logs(commands)
        return {"node": node, "config": config, "commands": commands, "events": events}

    async def _fetch_logs(self, commands: list[dict[str, Any]]) -> None:
        """Read the lines of the newest fetch-logs that came back, once per job: only that
        one command is asked for with its output (others may hold screenshots)."""
        for index, command in enumerate(commands):
            if command.get("command") == "fetch-logs" and command.get("state") == "done":
                break
        else:
            return
        if command["job_id"] == self._logs_of:
            return
        found = await self.app.api.node_commands(self.node_id, limit=1, offset=index, output=True)
        if found and found[0].get("job_id") == command["job_id"]:
            self._logs_of, self._logs = command["job_id"], view.log_lines(found[0])

    def show(self, data: dict[str, Any]) -> None:
        if "missing" in data:
            self.query_one("#node-status", Static).update(Text(data["missing"], style="red"))
            return
        node, now = data["node"], self.app.now()
        status = [
            ("state", node["state"]), ("since", view.age(node.get("state_at"), now)),
            ("last seen", view.age(node.get("last_seen"), now) + " ago"),
            ("site", node.get("site_id") or view.NO_VALUE),
            ("counter", node.get("counter") or view.NO_VALUE),
            ("kind", node.get("kind") or view.NO_VALUE),
            ("version", node.get("agent_version") or view.NO_VALUE),
        ]
        if self._revoked:
            status.append(("revoked", self._revoked))
        self.query_one("#node-status", Static).update(facts_table(status))
        health = view.health_facts(node.get("last_health"))
        if node.get("last_health_at"):
            health.insert(0, ("reported", view.age(node["last_health_at"], now) + " ago"))
        self.query_one("#node-health", Static).update(
            facts_table(health) if health else Text("no health report yet", style="dim"))
        self._show_peripherals(node["peripherals"])
        alerts = Text()
        for alert in node["open_alerts"]:
            alerts.append(f"{alert['kind']} ", style="yellow")
            alerts.append(f"{alert.get('detail') or alert['subject']}"
                          f" ({view.age(alert['opened_at'], now)})\n")
        self.query_one("#node-alerts", Static).update(alerts or Text("none", style="dim"))
        config = data["config"]
        self.query_one("#node-config", Static).update(
            Text("no config API on this server yet", style="dim") if config is None
            else facts_table(view.config_facts(config)))
        self._show_commands(data["commands"])
        self._show_events(data.get("events"))

    def _show_peripherals(self, peripherals: list[dict[str, Any]]) -> None:
        table = Table.grid(padding=(0, 1))
        for p in peripherals:
            table.add_row(Text(p["kind"]),
                          Text(p["state"], style=STATE_STYLE.get(p["state"], "")),
                          Text(p["id"], style="dim", overflow="ellipsis", no_wrap=True),
                          Text(p.get("detail") or ""))
        self.query_one("#node-peripherals", Static).update(
            table if peripherals else Text("none reported", style="dim"))

    def _show_commands(self, commands: list[dict[str, Any]] | None) -> None:
        table = self.query_one("#node-commands", DataTable)
        logs = self.query_one("#node-logs", Static)
        if commands is None:
            table.border_subtitle = "no commands API on this server yet"
            logs.update(Text("fetch-logs needs the commands API", style="dim"))
            return
        now = self.app.now()
        rows = []
        for record in commands:
            state = record["state"]
            rows.append((record["job_id"], [
                view.age(record.get("finished_at") or record["created_at"], now),
                record["command"], Text(state, style=STATE_STYLE.get(state, "")),
                Text(record.get("issuer") or "", overflow="ellipsis", no_wrap=True),
            ]))
        sync_table(table, rows)
        table.border_subtitle = f"{len(commands)} latest" if commands else "none yet"
        if self._logs_of is None:
            logs.update(Text("press l to fetch the node's logs", style="dim"))
        else:
            logs.border_subtitle = f"job {view.short_id(self._logs_of)}"
            logs.update(Text("\n".join(self._logs[-LOG_LINES_SHOWN:]) or "(no lines)"))

    def _show_events(self, events: list[dict[str, Any]] | None) -> None:
        table = self.query_one("#node-events", DataTable)
        if events is None:
            table.border_subtitle = "no events API on this server yet"
            return
        now = self.app.now()
        sync_table(table, [
            (f"{event['id']}", [
                view.age(event["at"], now), event["kind"], event.get("counter") or "",
                Text(view.event_text(event.get("detail") or {}), overflow="ellipsis",
                     no_wrap=True),
            ])
            for event in events
        ])
        table.border_subtitle = f"{len(events)} newest" if events else "none stored"

    def action_command(self) -> None:
        def picked(command: str | None) -> None:
            if command == REVOKE:
                self.action_revoke()
            elif command is not None:
                self.action_send(command)

        self.app.push_screen(CommandPicker(self.node_id, actions=(REVOKE,)), picked)

    def action_revoke(self) -> None:
        """Ask, then revoke the node's certificates on the server and say what it did."""

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._revoke(), group="revoke")

        self.app.push_screen(
            Confirm(f"revoke {self.node_id}? It is locked out until enrolled again."), answered)

    async def _revoke(self) -> None:
        try:
            done = await self.app.api.revoke(self.node_id, "revoked from the console")
        except RouteMissing:
            self.notify("This fleet server cannot revoke nodes yet "
                        "(POST /api/v1/nodes/{id}/revoke).", severity="error", timeout=8)
        except ServerUnreachable as exc:
            self.app.connection_problem = (f"Fleet server {exc.server} does not answer "
                                           f"({exc.reason})")
        except ApiError as exc:
            self.notify(f"revoke refused: {exc.detail}", severity="error", timeout=10)
        else:
            count = len(done.get("revoked") or [])
            self._revoked = f"{count} certificate(s) by {done.get('by')}, CRL rewritten"
            self.notify(f"{self.node_id}: {count} certificate(s) revoked. {done.get('broker')}",
                        timeout=12)
            self.app.refresh_now()

    def action_send(self, command: str) -> None:
        self.app.send_command(JobRequest(command, nodes=(self.node_id,)),
                              confirm=command in DESTRUCTIVE)


class JobScreen(FleetScreen):
    """One job: its progress bar and what each node answered."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    COLUMNS = {"job-nodes": (("Node", "node", 16, 24), ("Outcome", "state", 8, 8),
                             ("Age", "age", 6, 8), ("Detail", "detail", 38, 100))}

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id

    def body(self) -> Iterable[Any]:
        yield Static(id="job-summary")
        yield ProgressBar(id="job-progress", show_eta=False)
        yield DataTable(id="job-nodes", cursor_type="row")

    def on_mount(self) -> None:
        self.sub_title = f"job {view.short_id(self.job_id)}"
        self.query_one("#job-nodes", DataTable).focus()

    async def load(self) -> dict[str, Any]:
        return await self.app.api.job(self.job_id)

    def show(self, job: dict[str, Any]) -> None:
        progress = view.job_progress(job)
        self.query_one("#job-summary", Static).update(Text.assemble(
            (f"{job['command']} ", "bold"), f"to {view.job_target(job)} · ", progress.text(),
            f" · by {job['issuer']}",
        ))
        self.query_one("#job-progress", ProgressBar).update(
            total=max(progress.total, 1), progress=progress.total - progress.pending)
        now = self.app.now()
        rows = []
        for outcome in job.get("nodes", []):
            state = outcome["state"]
            rows.append((outcome["node_id"], [
                outcome["node_id"], Text(state, style=STATE_STYLE.get(state, "")),
                view.age(outcome.get("finished_at") or outcome.get("sent_at"), now),
                Text(outcome.get("detail") or "", overflow="ellipsis", no_wrap=True),
            ]))
        sync_table(self.query_one("#job-nodes", DataTable), rows)
