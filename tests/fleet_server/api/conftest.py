"""Fixtures for the HTTP API: a migrated store on each backend, a token, a client."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest
import sqlalchemy as sa

from fleet_server.api import tokens
from fleet_server.ingest import Stats


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A store at the newest schema: SQLite, then PostgreSQL."""
    from fleet_server.store import connect

    engine = connect(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_token(engine: sa.Engine) -> Callable[[str], str]:
    """Creates an active API token with the given name and returns it."""

    def make(name: str) -> str:
        with engine.begin() as conn:
            return tokens.create(conn, name)

    return make


@pytest.fixture
def token(make_token) -> str:
    return make_token("tester")


@pytest.fixture
def ingest_stats() -> Stats:
    """Counters the app reports as this process's ingest (tests set them)."""
    return Stats()


@pytest.fixture
def client(engine: sa.Engine, ingest_stats: Stats):
    """An in-process HTTP client for the app (no token set)."""
    from fastapi.testclient import TestClient

    from fleet_server.api.app import create_app

    with TestClient(create_app(engine, lambda: ingest_stats)) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
