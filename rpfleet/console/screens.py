"""The console's four top-level screens: fleet overview, node table, alerts, jobs."""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from rpfleet.console import view
from rpfleet.console.client import JobRequest, RouteMissing
from rpfleet.console.detail import JobScreen, NodeScreen
from rpfleet.console.widgets import FleetScreen, selected_key, sync_table

STATE_STYLE = {"online": "green", "offline": "bold red", "unknown": "dim", "retired": "dim"}
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "dim"}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


class OverviewScreen(FleetScreen):
    """Regions, then their sites: nodes online / offline, open alerts, satisfaction today."""

    BINDINGS = [
        Binding("enter", "open_nodes", "Nodes here", priority=True),
        Binding("x", "command", "Send"),
    ]
    COLUMNS = {"sites": (("Region / site", "name", 26, 40), ("Online", "online", 7, 7),
                         ("Off", "offline", 4, 4), ("Alerts", "alerts", 6, 6),
                         ("Satisfied today", "today", 22, 24))}

    def body(self) -> Iterable[Any]:
        yield Static(id="fleet-summary")
        with Horizontal(id="overview"):
            yield DataTable(id="sites", cursor_type="row", zebra_stripes=False)
            with Vertical(id="side"):
                yield Static(id="side-alerts", classes="panel")
                yield Static(id="side-jobs", classes="panel")

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, view.OverviewRow] = {}

    def on_mount(self) -> None:
        self.query_one("#side-alerts", Static).border_title = "Open alerts"
        self.query_one("#side-jobs", Static).border_title = "Jobs"

    async def load(self) -> dict[str, Any]:
        api = self.app.api
        sites, nodes, alerts, report = await asyncio.gather(
            api.sites(), api.nodes(), api.alerts(), api.satisfaction(self.app.today()))
        await self._learn_region_names(sites)
        try:
            jobs = await api.jobs()
        except RouteMissing:
            jobs = None
        return {"sites": sites, "nodes": nodes, "alerts": alerts, "report": report, "jobs": jobs}

    async def _learn_region_names(self, sites: list[dict[str, Any]]) -> None:
        """Region names come with a site's detail: one site per region not yet named."""
        names = self.app.region_names
        first_site: dict[str, str] = {}
        for site in sites:
            region = site.get("region_id")
            if region and region not in names:
                first_site.setdefault(region, site["id"])
        details = await asyncio.gather(*(self.app.api.site(s) for s in first_site.values()))
        for detail in details:
            names[detail["region_id"]] = detail.get("region_name") or detail["region_id"]

    def show(self, data: dict[str, Any]) -> None:
        counts = view.fleet_counts(data["nodes"])
        total_alerts = len(data["alerts"])
        summary = Text.assemble(
            ("Nodes ", "bold"), (f"{counts['online']} online", "green"), " · ",
            (f"{counts['offline']} offline", "bold red" if counts["offline"] else ""), " · ",
            f"{counts['unknown']} never heard · ",
            (f"{total_alerts} alerts", "yellow" if total_alerts else ""),
            f" · today {self.app.today():%d/%m/%Y}",
        )
        self.query_one("#fleet-summary", Static).update(summary)
        rows = view.overview_rows(data["sites"], data["alerts"], data["report"],
                                  self.app.region_names)
        self._rows = {row.key: row for row in rows}
        sync_table(self.query_one("#sites", DataTable), [_overview_cells(r) for r in rows])
        self._show_side(data["alerts"], data["jobs"])

    def _show_side(self, alerts: list[dict[str, Any]], jobs: list[dict[str, Any]] | None) -> None:
        now = self.app.now()
        lines = Text()
        for alert in alerts[:12]:
            lines.append(f"{view.age(alert['opened_at'], now):>6} ", style="dim")
            lines.append(f"{alert['kind']} ", style=SEVERITY_STYLE.get(alert["severity"], ""))
            lines.append(f"{alert['subject']}\n")
        self.query_one("#side-alerts", Static).update(lines or Text("none", style="dim"))
        if jobs is None:
            text = Text("no jobs API on this server", style="dim")
        else:
            text = Text()
            for job in jobs[:8]:
                progress = view.job_progress(job)
                text.append(f"{job['command']:<13} {view.bar(progress.finished, 8)} ")
                text.append(f"{progress.text()}\n", style="dim")
        self.query_one("#side-jobs", Static).update(text or Text("none yet", style="dim"))

    def _selected(self) -> view.OverviewRow | None:
        return self._rows.get(selected_key(self.query_one("#sites", DataTable)) or "")

    async def action_open_nodes(self) -> None:
        """The node table, filtered to the region's or site's nodes."""
        row = self._selected()
        await self.app.switch_mode("nodes")
        nodes = self.app.screen_stack[0]
        if row is not None and isinstance(nodes, NodesScreen):
            nodes.set_filter(f"{'region' if row.is_region else 'site'}:{row.ident}")

    def action_command(self) -> None:
        row = self._selected()
        if row is None or not row.ident:
            return
        if row.is_region:
            self.app.ask_command(f"region {row.label}",
                                 lambda c: JobRequest(c, region=row.ident), many=True)
        else:
            self.app.ask_command(f"site {row.label}",
                                 lambda c: JobRequest(c, site=row.ident), many=True)


def _overview_cells(row: view.OverviewRow) -> tuple[str, list[Any]]:
    style = "bold" if row.is_region else ""
    name = Text(row.label if row.is_region else f"  {row.label}", style=style,
                overflow="ellipsis", no_wrap=True)
    today = Text()
    if row.share is None:
        today.append("no ratings", style="dim")
    else:
        colour = "green" if row.share >= 0.9 else "yellow" if row.share >= 0.7 else "red"
        drawn = view.bar(row.share, 10)
        filled = drawn.rstrip(view.TRACK)
        today.append(filled, style=colour)
        today.append(drawn[len(filled):], style="dim")
        today.append(f" {view.percent(row.share):>4} ({row.ratings})")
    return row.key, [
        name,
        Text(f"{row.online}/{row.total}", style=style),
        Text(str(row.offline), style="bold red" if row.offline else "dim"),
        Text(str(row.alerts), style="yellow" if row.alerts else "dim"),
        today,
    ]


class NodesScreen(FleetScreen):
    """Every node, filtered live by what is typed in the filter box."""

    BINDINGS = [
        # The filter box says "/ filter" itself: the footer keeps its room for the keys
        # that show nowhere else, whole at 80 columns.
        Binding("slash", "focus_filter", "Filter", show=False),
        Binding("escape", "leave_filter", "Table", show=False),
        Binding("enter", "open_node", "Open", priority=True),
        Binding("x", "command", "Send"),
        Binding("X", "command_shown", "Send shown"),
    ]
    # Narrow: 76 columns with the cell padding, room for a scroll bar at 80.
    COLUMNS = {"nodes": (("Node", "id", 14, 24), ("Site", "site", 9, 20),
                         ("Ctr", "counter", 3, 6), ("State", "state", 7, 8),
                         ("Version", "version", 7, 10), ("Out", "outbox", 3, 6),
                         ("Alerts", "alerts", 11, 36), ("Seen", "seen", 6, 8))}

    def __init__(self) -> None:
        super().__init__()
        self._node_list: list[dict[str, Any]] = []
        self._node_alerts: dict[str, list[str]] = {}
        self._node_filter = view.NodeFilter()
        self._drifting: set[str] | None = None
        """Nodes not on their latest config; None from a server without the config API."""

    def body(self) -> Iterable[Any]:
        yield Input(placeholder="/ filter: words, region: site: state: kind: version: alert: drift:",
                    id="filter")
        yield Static(id="filter-status")
        yield DataTable(id="nodes", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#nodes", DataTable).focus()

    def set_filter(self, text: str) -> None:
        """Put ``text`` in the filter box (and so filter the table)."""
        self.query_one("#filter", Input).value = text

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_leave_filter(self) -> None:
        self.query_one("#nodes", DataTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        try:
            self._node_filter = view.NodeFilter.parse(event.value)
        except ValueError as exc:
            self.query_one("#filter-status", Static).update(Text(str(exc), style="red"))
            return
        self._render_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_leave_filter()

    async def load(self) -> dict[str, Any]:
        api = self.app.api

        async def drift() -> list[dict[str, Any]] | None:
            try:
                return await api.drift()
            except RouteMissing:
                return None

        nodes, sites, alerts, drifting = await asyncio.gather(
            api.nodes(), api.sites(), api.alerts(), drift())
        return {"nodes": nodes, "sites": sites, "alerts": alerts, "drift": drifting}

    def show(self, data: dict[str, Any]) -> None:
        region_of = {site["id"]: site.get("region_id") for site in data["sites"]}
        self._node_list = [n | {"region_id": region_of.get(n.get("site_id"))}
                           for n in data["nodes"]]
        self._node_alerts = view.alerts_by_node(data["alerts"])
        self._drifting = None if data["drift"] is None else {d["node"] for d in data["drift"]}
        self._render_table()

    def shown_nodes(self) -> list[dict[str, Any]]:
        """The nodes that pass the filter, by id."""
        drifting = self._drifting or set()
        return [n for n in self._node_list
                if self._node_filter.matches(n, self._node_alerts.get(n["id"], ()),
                                             n["id"] in drifting)]

    def _render_table(self) -> None:
        now = self.app.now()
        shown = self.shown_nodes()
        rows = []
        for node in shown:
            kinds = self._node_alerts.get(node["id"], [])
            alerts = Text(f"{len(kinds)} {kinds[0]}" if kinds else "", style="yellow",
                          overflow="ellipsis", no_wrap=True)
            outbox = node.get("outbox_pending")
            rows.append((node["id"], [
                node["id"], node.get("site_id") or view.NO_VALUE, node.get("counter") or "",
                state_text(node["state"]), node.get("agent_version") or view.NO_VALUE,
                "" if outbox is None else str(outbox), alerts,
                view.age(node.get("last_seen"), now),
            ]))
        sync_table(self.query_one("#nodes", DataTable), rows)
        status = f"{len(shown)} of {len(self._node_list)} nodes"
        if self._drifting:
            status += f" · {len(self._drifting)} not on their latest config (drift:yes)"
        self.query_one("#filter-status", Static).update(Text(status, style="dim"))

    def _selected(self) -> str | None:
        return selected_key(self.query_one("#nodes", DataTable))

    def action_open_node(self) -> None:
        if self.focused is self.query_one("#filter", Input):
            self.action_leave_filter()
            return
        node = self._selected()
        if node is not None:
            self.app.push_screen(NodeScreen(node))

    def action_command(self) -> None:
        node = self._selected()
        if node is not None:
            self.app.ask_command(node, lambda c: JobRequest(c, nodes=(node,)))

    def action_command_shown(self) -> None:
        ids = tuple(n["id"] for n in self.shown_nodes())
        if ids:
            self.app.ask_command(f"the {len(ids)} nodes shown",
                                 lambda c: JobRequest(c, nodes=ids), many=len(ids) > 1)


class AlertsScreen(FleetScreen):
    """Open alerts, newest first."""

    BINDINGS = [Binding("enter", "open_node", "Open node", priority=True)]
    COLUMNS = {"alerts": (("Open", "age", 6, 8), ("Severity", "severity", 8, 9),
                          ("Kind", "kind", 18, 22), ("Subject", "subject", 24, 36),
                          ("Detail", "detail", 14, 60))}

    def body(self) -> Iterable[Any]:
        yield Static(id="alerts-status")
        yield DataTable(id="alerts", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#alerts", DataTable).focus()

    async def load(self) -> list[dict[str, Any]]:
        return await self.app.api.alerts()

    def show(self, alerts: list[dict[str, Any]]) -> None:
        self._open_alerts = {str(a["id"]): a for a in alerts}
        now = self.app.now()
        sync_table(self.query_one("#alerts", DataTable), [
            (str(a["id"]), [
                view.age(a["opened_at"], now),
                Text(a["severity"], style=SEVERITY_STYLE.get(a["severity"], "")),
                a["kind"], Text(a["subject"], overflow="ellipsis", no_wrap=True),
                Text(a.get("detail") or "", overflow="ellipsis", no_wrap=True),
            ])
            for a in alerts
        ])
        self.query_one("#alerts-status", Static).update(
            Text(f"{len(alerts)} open alerts", style="dim"))

    def action_open_node(self) -> None:
        key = selected_key(self.query_one("#alerts", DataTable))
        alert = getattr(self, "_open_alerts", {}).get(key or "")
        if alert and alert.get("node_id"):
            self.app.push_screen(NodeScreen(alert["node_id"]))


class JobsScreen(FleetScreen):
    """Jobs, newest first, each with its progress."""

    BINDINGS = [Binding("enter", "open_job", "Open job", priority=True)]
    COLUMNS = {"jobs": (("Job", "id", 8, 8), ("Command", "command", 12, 14),
                        ("Target", "target", 13, 24), ("Progress", "bar", 10, 20),
                        ("", "counts", 17, 36), ("Age", "age", 5, 8))}

    def body(self) -> Iterable[Any]:
        yield Static(id="jobs-status")
        yield DataTable(id="jobs", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#jobs", DataTable).focus()

    async def load(self) -> list[dict[str, Any]] | None:
        try:
            return await self.app.api.jobs()
        except RouteMissing:
            return None

    def show(self, jobs: list[dict[str, Any]] | None) -> None:
        status = self.query_one("#jobs-status", Static)
        if jobs is None:
            status.update(Text("This fleet server has no jobs API yet (GET /api/v1/jobs).",
                               style="yellow"))
            jobs = []
        else:
            status.update(Text(f"{len(jobs)} jobs", style="dim"))
        now = self.app.now()
        rows = []
        for job in jobs:
            progress = view.job_progress(job)
            rows.append((job["id"], [
                view.short_id(job["id"]), job["command"],
                Text(view.job_target(job), overflow="ellipsis", no_wrap=True),
                Text(view.bar(progress.finished, 10),
                     style="red" if progress.failed else "green"),
                progress.text(), view.age(job["created_at"], now),
            ]))
        sync_table(self.query_one("#jobs", DataTable), rows)

    def action_open_job(self) -> None:
        key = selected_key(self.query_one("#jobs", DataTable))
        if key is not None:
            self.app.push_screen(JobScreen(key))
