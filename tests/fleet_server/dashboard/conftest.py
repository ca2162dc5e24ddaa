"""Fixtures for the dashboard: a store (SQLite, then PostgreSQL) holding the hall of
tests/fleet_server/dashboard/hall.py, and tokens."""

from __future__ import annotations

from typing import Iterator

import pytest
import sqlalchemy as sa

from fleet_server import store
from fleet_server.api import tokens
from tests.fleet_server.dashboard import hall


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    from fleet_server.store import connect

    engine = connect(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    """The store with the hall's morning, its day ending at hall.NOW."""
    with engine.begin() as conn:
        hall.seed(conn)
    return engine


def make_token(engine: sa.Engine, name: str, role: str = tokens.OPERATOR, *sites: str) -> str:
    with engine.begin() as conn:
        return tokens.create(conn, name, role=role, sites=sites)


@pytest.fixture
def today(engine):
    """The hall seeded with its day ending now, so that calls made now join it."""
    with engine.begin() as conn:
        hall.seed(conn, now=store.utc_now())
    return engine
