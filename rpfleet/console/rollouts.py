"""Software rollouts, read-only: the list (newest first) and one rollout in depth
(its waves with progress bars and counts, the last gate result, why it halted).

Steering a rollout (pause, resume, abort) stays with the server's command line
(`rpfleet server rollout …`): the detail screen shows the command for the
rollout's state, and the console sends nothing.
"""

from __future__ import annotations

from typing import Any, Iterable

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from rpfleet.console import view
from rpfleet.console.client import ApiError, RouteMissing
from rpfleet.console.widgets import FleetScreen, selected_key, sync_table

STATE_STYLE = {"running": "green", "completed": "green", "paused": "yellow",
               "halted": "bold red", "aborted": "dim",
               "done": "green", "open": "bold", "waiting": "dim",
               "proceed": "green", "wait": "yellow", "halt": "bold red"}
STANDING_STYLE = {"proven": "green", "soaking": "cyan", "updating": "cyan", "waiting": "dim",
                  "absent": "dim", "failed": "bold red", "stuck": "red", "regressed": "red"}
NO_API = "This fleet server has no rollouts API yet (GET /api/v1/rollouts)."


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def counts_line(counts: dict[str, Any] | None) -> Text:
    """The counts of a wave, each standing in its colour."""
    pairs = view.standing_counts(counts)
    if not pairs:
        return Text("none sent yet", style="dim")
    line = Text()
    for index, (name, n) in enumerate(pairs):
        if index:
            line.append(", ")
        line.append(f"{n} {name}", style=STANDING_STYLE.get(name, ""))
    return line


def wave_bar(counts: dict[str, Any] | None, nodes: int, width: int) -> Text:
    """Nodes as a bar: proven, soaking and updating, failed, each in its colour."""
    return Text.assemble(*((cells, STANDING_STYLE.get(standing, "dim") if standing else "dim")
                           for cells, standing in view.wave_bar(counts, nodes, width)))


class RolloutsScreen(FleetScreen):
    """Rollouts, newest first: version, state, open wave, nodes proven."""

    BINDINGS = [Binding("enter", "open_rollout", "Open rollout", priority=True)]
    # Narrow: 76 columns with the cell padding, as the node table.
    COLUMNS = {"rollouts": (("Id", "id", 3, 4), ("Version", "version", 8, 12),
                            ("State", "state", 9, 10), ("Wave", "wave", 6, 6),
                            ("Progress", "bar", 10, 20), ("", "counts", 20, 48),
                            ("Age", "age", 6, 8))}

    def body(self) -> Iterable[Any]:
        yield Static(id="rollouts-status")
        yield DataTable(id="rollouts", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#rollouts", DataTable).focus()

    async def load(self) -> list[dict[str, Any]] | None:
        try:
            return await self.app.api.rollouts()
        except RouteMissing:
            return None

    def show(self, rollouts: list[dict[str, Any]] | None) -> None:
        status = self.query_one("#rollouts-status", Static)
        if rollouts is None:
            status.update(Text(NO_API, style="yellow"))
            rollouts = []
        else:
            active = [r for r in rollouts if r["state"] not in view.FINISHED_ROLLOUTS]
            line = Text(f"{len(rollouts)} rollouts", style="dim")
            for rollout in active[:1]:  # at most one is active at a time
                line.append(" · active: ", style="dim")
                line.append(f"{rollout['version']} ")
                line.append_text(state_text(rollout["state"]))
            status.update(line)
        now = self.app.now()
        width = 20 if self.has_class("-wide") else 10  # the Progress column's
        rows = []
        for rollout in rollouts:
            progress = view.rollout_progress(rollout)
            counts = f"{progress.proven}/{progress.nodes} proven"
            rows.append((str(rollout["id"]), [
                str(rollout["id"]), Text(rollout["version"], overflow="ellipsis", no_wrap=True),
                state_text(rollout["state"]),
                f"{rollout['wave']}/{len(rollout.get('waves') or [])}",
                wave_bar(view.total_counts(rollout), progress.nodes, width),
                Text.assemble(counts, (f", {progress.bad} failed" if progress.bad else "",
                                       "bold red")),
                view.age(rollout["created_at"], now),
            ]))
        sync_table(self.query_one("#rollouts", DataTable), rows)

    def action_open_rollout(self) -> None:
        key = selected_key(self.query_one("#rollouts", DataTable))
        if key is not None:
            self.app.push_screen(RolloutScreen(int(key)))


class RolloutScreen(FleetScreen):
    """One rollout: what it rolls out where, each wave's progress, the gate, the reason."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, rollout_id: int) -> None:
        super().__init__()
        self.rollout_id = rollout_id

    def body(self) -> Iterable[Any]:
        with VerticalScroll(id="rollout-detail"):
            yield Static(id="rollout-reason", classes="panel")
            with Horizontal(classes="columns"):
                with Vertical(classes="column"):
                    yield Static(id="rollout-status", classes="panel")
                    yield Static(id="rollout-waves", classes="panel")
                with Vertical(classes="column"):
                    yield Static(id="rollout-gates", classes="panel")
                    yield Static(id="rollout-failures", classes="panel")
            yield Static(id="rollout-hint")

    def on_mount(self) -> None:
        self.sub_title = f"rollout {self.rollout_id}"
        self.query_one("#rollout-detail").focus()  # arrows and PgUp/PgDn scroll it at 80×24
        for panel, title in (("reason", "Why"), ("status", f"Rollout {self.rollout_id}"),
                             ("waves", "Waves"), ("gates", "Gate (open wave, last check)"),
                             ("failures", "Failed nodes")):
            self.query_one(f"#rollout-{panel}").border_title = title
        self.query_one("#rollout-reason").display = False

    async def load(self) -> dict[str, Any]:
        try:
            return await self.app.api.rollout(self.rollout_id)
        except ApiError as exc:
            if exc.status != 404 or isinstance(exc, RouteMissing):
                raise
            return {"missing": exc.detail}

    def show(self, rollout: dict[str, Any]) -> None:
        status = self.query_one("#rollout-status", Static)
        if "missing" in rollout:
            status.update(Text(rollout["missing"], style="red"))
            return
        now = self.app.now()
        progress = view.rollout_progress(rollout)
        facts = [
            ("version", Text(rollout["version"], style="bold")),
            ("state", state_text(rollout["state"])),
            ("wave", Text(view.rollout_wave(rollout))),
            ("proven", Text(f"{progress.proven} of {progress.nodes} nodes"
                            + (f" · {progress.bad} failed" if progress.bad else ""),
                            style="bold red" if progress.bad else "")),
            ("sites", Text(view.rollout_sites(rollout))),
            ("policy", Text(view.policy_text(rollout.get("policy")))),
            ("started", Text(f"{view.age(rollout['created_at'], now)} ago by "
                             f"{rollout['created_by']}")),
            ("wave open", Text(f"{view.age(rollout['wave_opened_at'], now)} ago")),
        ]
        if rollout.get("finished_at"):
            facts.append(("finished", Text(f"{view.age(rollout['finished_at'], now)} ago")))
        status.update(_grid(facts))
        self._show_reason(rollout)
        self._show_waves(rollout["waves"])
        self._show_gates(rollout.get("gates"))
        hint = view.steering_hint(rollout)
        self.query_one("#rollout-hint", Static).update(
            Text(f"on the server: {hint}", style="dim") if hint else "")

    def _show_reason(self, rollout: dict[str, Any]) -> None:
        panel = self.query_one("#rollout-reason", Static)
        reason = rollout.get("reason")
        panel.display = bool(reason)
        if reason:
            halted = rollout["state"] == "halted"
            panel.border_title = "Why it halted" if halted else "Why"
            panel.set_class(halted, "-alarm")
            panel.update(Text(reason, style="bold red" if halted else ""))

    def _show_waves(self, waves: list[dict[str, Any]]) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for wave in waves:
            counts = wave.get("counts") or {}
            table.add_row(
                Text(f"{wave['wave']}", style="bold"), Text(view.percent(wave["share"])),
                Text(f"{wave['nodes']} nodes"), state_text(wave["state"]),
                wave_bar(counts, int(wave.get("nodes") or 0), 12), counts_line(counts))
        self.query_one("#rollout-waves", Static).update(table)

    def _show_gates(self, gates: dict[str, Any] | None) -> None:
        facts = view.gate_facts(gates)
        self.query_one("#rollout-gates", Static).update(
            _grid([(label, state_text(value) if label == "action" else Text(value))
                   for label, value in facts])
            if facts else Text("not checked yet", style="dim"))
        failures = view.gate_failures(gates)
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for node, status, reason in failures:
            table.add_row(Text(node), Text(status, style=STANDING_STYLE.get(status, "")),
                          Text(reason, style="dim"))
        self.query_one("#rollout-failures", Static).update(
            table if failures else Text("none", style="dim"))


def _grid(facts: list[tuple[str, Text]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for label, value in facts:
        table.add_row(label, value)
    return table
