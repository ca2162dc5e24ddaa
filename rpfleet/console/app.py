"""`FleetConsole`: the Textual app IT support runs, often over SSH.

Five top-level screens (overview, nodes, alerts, jobs, rollouts) are Textual modes, so
each keeps its own stack (a node's detail opened from the alerts stays there).
A timer refreshes the screen on top from the API every ``refresh_s`` seconds;
a refresh that fails because the server does not answer (or refuses the
token) sets `connection_problem`, which every screen shows as a banner, and
the next refresh that works clears it. Nothing the server does ends the app.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.reactive import reactive

from rpfleet.console.client import (
    DESTRUCTIVE,
    ApiError,
    FleetApi,
    JobRequest,
    RouteMissing,
    ServerUnreachable,
)
from rpfleet.console.rollouts import RolloutsScreen
from rpfleet.console.screens import AlertsScreen, JobsScreen, NodesScreen, OverviewScreen
from rpfleet.console.widgets import CommandPicker, Confirm, FleetScreen

CITY_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
"""Where "today" is for the satisfaction bars (the server's reports use the same)."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class FleetConsole(App):
    """The console over ``api``; ``clock`` says what now is (tests fix it)."""

    TITLE = "rpfleet console"
    CSS_PATH = "console.tcss"
    ENABLE_COMMAND_PALETTE = False
    MODES = {"overview": OverviewScreen, "nodes": NodesScreen,
             "alerts": AlertsScreen, "jobs": JobsScreen, "rollouts": RolloutsScreen}
    BINDINGS = [
        Binding("f", "switch_mode('overview')", "Fleet"),
        Binding("n", "switch_mode('nodes')", "Nodes"),
        Binding("a", "switch_mode('alerts')", "Alerts"),
        Binding("j", "switch_mode('jobs')", "Jobs"),
        Binding("u", "switch_mode('rollouts')", "Rollouts"),  # u: software updates
        Binding("r", "refresh_now", "Refresh", show=False),
        Binding("q", "quit", "Quit"),
    ]

    connection_problem: reactive[str | None] = reactive(None, init=False)
    """Why the last refresh failed (no answer, token refused); None while all is well."""

    def __init__(self, api: FleetApi, *, refresh_s: float = 5.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self.api = api
        self.refresh_s = refresh_s
        self.clock = clock
        self.sub_title = api.server
        self.region_names: dict[str, str] = {}
        self._loading = False

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        """Today in Hanoi."""
        return self.clock().astimezone(CITY_ZONE).date()

    def on_mount(self) -> None:
        self.switch_mode("overview")
        self.set_interval(self.refresh_s, self.refresh_now)

    async def on_unmount(self) -> None:
        await self.api.aclose()

    def action_refresh_now(self) -> None:
        self.refresh_now()

    def _top(self) -> object:
        """The screen on top; None while the app starts or ends (no screens then)."""
        try:
            return self.screen
        except (ScreenStackError, KeyError):
            return None

    def refresh_now(self) -> None:
        """Reload the screen on top, unless a load is already under way."""
        screen = self._top()
        if isinstance(screen, FleetScreen) and not self._loading:
            self._loading = True
            self.run_worker(self._load(screen), group="refresh")

    async def _load(self, screen: FleetScreen) -> None:
        try:
            data = await screen.load()
        except ServerUnreachable as exc:
            self.connection_problem = f"Fleet server {exc.server} does not answer ({exc.reason})"
        except ApiError as exc:
            if exc.status in (401, 403):
                self.connection_problem = f"The server refused the API token: {exc.detail}"
            else:
                self.connection_problem = None
                self.notify(f"{exc.path}: {exc.detail}", severity="error", timeout=8)
        else:
            self.connection_problem = None
            if screen.is_attached:
                screen.last_data = data
                screen.show(data)
                screen.loaded += 1
        finally:
            self._loading = False
            if self._top() not in (screen, None):  # switched meanwhile: the new one must not wait
                self.refresh_now()

    # ---- commands --------------------------------------------------------------

    def ask_command(self, target: str, make: Callable[[str], JobRequest],
                    *, many: bool = False) -> None:
        """Ask which command to send to ``target`` (words), then send ``make(command)``,
        asking first when it is destructive or ``many`` nodes get it."""

        def picked(command: str | None) -> None:
            if command is not None:
                self.send_command(make(command), confirm=many or command in DESTRUCTIVE)

        self.push_screen(CommandPicker(target), picked)

    def send_command(self, request: JobRequest, *, confirm: bool = False) -> None:
        """Send ``request`` as a job; with ``confirm``, only after a yes."""
        if not confirm:
            self.run_worker(self._send(request), group="send")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._send(request), group="send")

        self.push_screen(Confirm(f"{request.command} on {request.target()}?"), answered)

    async def _send(self, request: JobRequest) -> None:
        try:
            job = await self.api.send(request)
        except RouteMissing:
            self.notify("This fleet server has no jobs API yet (POST /api/v1/jobs).",
                        severity="error", timeout=8)
        except ServerUnreachable as exc:
            self.connection_problem = f"Fleet server {exc.server} does not answer ({exc.reason})"
        except ApiError as exc:
            self.notify(f"{request.command} refused: {exc.detail}", severity="error", timeout=8)
        else:
            self.notify(f"Job {job.get('id', '?')}: {request.command} sent to {request.target()}")
            self.refresh_now()
