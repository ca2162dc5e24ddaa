"""Schema migrations (Alembic), run from code: `rpfleet server migrate`, tests, the demo."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

SCRIPTS = Path(__file__).parent / "migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` in place (each step in a transaction)."""
    with engine.begin() as conn:
        command.upgrade(_config(conn), revision)


class OutOfDate(RuntimeError):
    pass


def require_head(engine: sa.Engine) -> None:
    """Create an empty database; refuse an older one with the command that upgrades it."""
    at = current(engine)
    if at is None and not sa.inspect(engine).get_table_names():
        upgrade(engine)
    elif at != head():
        raise OutOfDate(
            f"the database is at revision {at or 'none'}, this server needs {head()}: "
            "run `rpfleet server migrate` first"
        )


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the database back to ``revision`` ("base": empty)."""
    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)
