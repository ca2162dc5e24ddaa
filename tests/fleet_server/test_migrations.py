"""Alembic migrations on both backends: a database made by the previous
revision is upgraded in place, keeping its data, to exactly the schema the
code declares."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fleet_server import migrate
from fleet_server.schema import metadata
from fleet_server.store import engine_for

AT = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def rpfleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rpfleet", *args], capture_output=True, text=True,
                          timeout=120)


def schema_differences(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_a_database_of_the_previous_revision_is_upgraded_in_place(empty_db_url):
    engine = engine_for(empty_db_url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:  # what the walking skeleton stored
        conn.execute(sa.text("INSERT INTO sites (id, name, kind) VALUES ('bd', 'Phường Ba Đình', 'commune')"))
        conn.execute(sa.text("INSERT INTO nodes (id, site_id, state) VALUES ('bd-q1', 'bd', 'online')"))
        conn.execute(
            sa.text("INSERT INTO events (node_id, event_id, seq, kind, at, received_at, rating, scale, detail)"
                    " VALUES ('bd-q1', :id, 1, 'rating-tap', :at, :at, 5, 5, :detail)"),
            {"id": "a" * 32, "at": AT, "detail": '{"kind": "rating-tap", "pad": "p", "rating": 5, "scale": 5}'},
        )
    engine.dispose()

    result = rpfleet("server", "migrate", "--db", empty_db_url)
    assert result.returncode == 0, result.stderr
    assert f"revision 0001 -> {migrate.head()}" in result.stdout

    engine = engine_for(empty_db_url)
    assert migrate.current(engine) == migrate.head()
    assert schema_differences(engine) == []
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT node_id, rating, counter, suspect FROM events")).one()
        site = conn.execute(sa.text("SELECT name, region_id FROM sites")).one()
    assert tuple(row) == ("bd-q1", 5, None, None)
    assert tuple(site) == ("Phường Ba Đình", None)
    engine.dispose()


def test_a_new_database_gets_the_declared_schema(empty_db_url):
    engine = engine_for(empty_db_url)
    migrate.require_head(engine)
    assert migrate.current(engine) == migrate.head()
    assert schema_differences(engine) == []
    engine.dispose()


def test_every_migration_goes_down_and_up_again(empty_db_url):
    engine = engine_for(empty_db_url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert schema_differences(engine) == []
    engine.dispose()


def test_the_server_refuses_an_old_database_and_names_the_fix(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = engine_for(url)
    migrate.upgrade(engine, "0001")
    engine.dispose()
    result = rpfleet("server", "summary", "--db", url)
    assert result.returncode == 1
    assert "revision 0001" in result.stderr and "rpfleet server migrate" in result.stderr


@pytest.mark.parametrize("revision", ["0001", "0002"], ids=["skeleton", "registry"])
def test_each_revision_is_reachable(tmp_path, revision):
    engine = engine_for(f"sqlite:///{tmp_path / 'r.sqlite'}")
    migrate.upgrade(engine, revision)
    assert migrate.current(engine) == revision
    engine.dispose()
