"""Pieces every console screen uses: the base screen with its connection banner,
in-place table updates, and the two questions (which command, are you sure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Label, OptionList, Static
from textual.widgets.option_list import Option

from rpfleet.console.client import COMMANDS

if TYPE_CHECKING:
    from rpfleet.console.app import FleetConsole

Cell = str | Text
WIDE = 120
"""From this many columns a screen shows its side panels."""


def sync_table(table: DataTable, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
    """Make ``table`` show ``rows`` (key, cells) in that order, without flicker.

    When the keys are the same as shown, only changed cells are written;
    otherwise the rows are rebuilt in one go and the cursor stays on the row
    it was on (by key) when that row is still there.
    """
    # A str cell would be read as Rich markup ("peripherals[pad-1]" is not a style).
    rows = [(key, [Text(c) if isinstance(c, str) else c for c in cells]) for key, cells in rows]
    shown = [row.key.value for row in table.ordered_rows]
    wanted = [key for key, _ in rows]
    columns = [column.key for column in table.ordered_columns]
    if shown == wanted:
        for key, cells in rows:
            for column, cell in zip(columns, cells):
                if table.get_cell(key, column) != cell:
                    table.update_cell(key, column, cell)
        return
    current = shown[table.cursor_row] if shown and 0 <= table.cursor_row < len(shown) else None
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if current in wanted:
        table.move_cursor(row=wanted.index(current), animate=False)


def selected_key(table: DataTable) -> str | None:
    """The key of the row under the cursor; None for an empty table."""
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


class ConnectionBanner(Static):
    """Hidden while the server answers; says what is wrong while it does not."""

    def show_problem(self, problem: str | None) -> None:
        self.display = problem is not None
        if problem is not None:
            self.update(Text(f"⚠ {problem} — retrying"))  # not markup: "[Errno 111] …"


class FleetScreen(Screen):
    """A console screen: header, connection banner, body, footer.

    Subclasses compose their ``body`` and implement `load` (read the API,
    async) and `show` (put what was read on screen, in place). The app calls
    them on each refresh while the screen is on top. (Textual calls the
    ``on_mount`` of every class in the MRO: subclasses do not call super's.)
    """

    app: "FleetConsole"
    loaded = 0
    """How many loads have been shown (tests wait on it)."""
    last_data: Any = None
    """What the last load read, shown again when the table columns change with the width."""
    COLUMNS: dict[str, tuple[tuple[str, str, int, int], ...]] = {}
    """Table id -> its columns: (label, key, width under WIDE columns, width from WIDE)."""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        yield ConnectionBanner(id="banner")
        yield from self.body()
        yield Footer(compact=True)

    def body(self) -> Iterable[Any]:
        return ()

    def on_mount(self) -> None:
        self.query_one(ConnectionBanner).show_problem(self.app.connection_problem)
        self.watch(self.app, "connection_problem", self._connection_changed, init=False)
        self._fit(self.app.size.width)

    def on_resize(self) -> None:
        self._fit(self.size.width)

    def _fit(self, width: int) -> None:
        """Side panels and column widths for a terminal ``width`` columns wide."""
        wide = width >= WIDE
        self.set_class(wide, "-wide")
        changed = False
        for table_id, columns in self.COLUMNS.items():
            table = self.query_one(f"#{table_id}", DataTable)
            widths = [w if wide else n for _, _, n, w in columns]
            if [c.width for c in table.ordered_columns] == widths:
                continue
            table.clear(columns=True)
            for (label, key, _, _), column_width in zip(columns, widths):
                table.add_column(label, key=key, width=column_width)
            changed = True
        if changed and self.last_data is not None:
            self.show(self.last_data)

    def on_screen_resume(self) -> None:
        self.app.refresh_now()

    def _connection_changed(self, problem: str | None) -> None:
        self.query_one(ConnectionBanner).show_problem(problem)

    async def load(self) -> Any:
        """Read what the screen shows from ``self.app.api``."""
        return None

    def show(self, data: Any) -> None:
        """Show ``data`` from `load`."""


class CommandPicker(ModalScreen[str | None]):
    """Asks which command to send to ``target``; dismisses with its name or None.
    ``actions`` are offered after the commands (server-side actions, e.g. revoke)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, target: str, actions: Sequence[str] = ()) -> None:
        super().__init__()
        self.target = target
        self.actions = tuple(actions)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Send a command to {self.target}", classes="question")
            yield OptionList(*(Option(name, id=name) for name in COMMANDS + self.actions),
                             id="commands")
            yield Label("Enter send · Esc cancel", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class Confirm(ModalScreen[bool]):
    """Asks ``question``; y confirms, n or Esc does not."""

    BINDINGS = [
        Binding("y", "dismiss(True)", "Yes"),
        Binding("n,escape", "dismiss(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Label("y yes · n no", classes="hint")
