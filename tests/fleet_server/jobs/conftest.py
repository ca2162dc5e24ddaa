"""Fixtures of the job tests: the API's store, token and client fixtures, and a small fleet."""

from tests.fleet_server.api.conftest import (  # noqa: F401 - fixtures
    client,
    engine,
    ingest_stats,
    make_token,
    token,
)
