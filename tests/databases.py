"""Throwaway databases for the server's store: a SQLite file, or a PostgreSQL
database on the machine's server, copied from a migrated template and dropped
after the test. PostgreSQL tests are skipped, with the reason, when no server
answers."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

ADMIN_URL = os.environ.get(
    "RPFLEET_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


class PostgresDatabases:
    """Creates and drops databases through an admin connection (AUTOCOMMIT)."""

    def __init__(self, admin_url: str) -> None:
        self._admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self._url = sa.make_url(admin_url)
        self._prefix = f"rpfleet_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._made: list[str] = []
        self.template: str | None = None

    def reachable(self) -> str | None:
        """None when the server answers, else why not."""
        try:
            with self._admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means: skip, saying why
            return f"no PostgreSQL at {self._url.render_as_string(hide_password=True)}: {exc}"
        return None

    def url(self, name: str) -> str:
        return self._url.set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"{self._prefix}_{len(self._made)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
        self._made.append(name)
        return name

    def migrated_copy(self) -> str:
        """A fresh database at the newest schema (a copy of a template migrated once)."""
        from fleet_server import migrate
        from fleet_server.store import engine_for

        if self.template is None:
            self.template = self.create()
            engine = engine_for(self.url(self.template))
            migrate.upgrade(engine)
            engine.dispose()
        return self.url(self.create(template=self.template))

    def drop_all(self) -> None:
        with self._admin.connect() as conn:
            for name in reversed(self._made):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> PostgresDatabases:
    databases = PostgresDatabases(ADMIN_URL)
    why_not = databases.reachable()
    if why_not:
        pytest.skip(why_not)
    yield databases
    databases.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A throwaway store at the newest schema, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    return request.getfixturevalue("postgres").migrated_copy()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A throwaway database with no schema at all, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    databases = request.getfixturevalue("postgres")
    return databases.url(databases.create())
