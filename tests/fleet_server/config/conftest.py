"""Fixtures for config as desired state: a migrated store with a small registry."""

from __future__ import annotations

from typing import Iterator

import pytest
import sqlalchemy as sa

from fleet_server.schema import nodes, regions, sites

PAD = {"kind": "rating-pad", "id": "pad-1", "source": "fake", "counter": "1", "bounce": 0}


def place(engine: sa.Engine, node: str, site: str | None, region: str | None = None,
          state: str = "unknown") -> None:
    """Register ``node`` at ``site`` (in ``region``), creating both as needed."""
    with engine.begin() as conn:
        if region and conn.execute(sa.select(regions.c.id).where(regions.c.id == region)).first() is None:
            conn.execute(regions.insert().values(id=region, name=f"Vùng {region}"))
        if site and conn.execute(sa.select(sites.c.id).where(sites.c.id == site)).first() is None:
            conn.execute(sites.insert().values(id=site, name=f"Phường {site}", kind="commune",
                                               region_id=region))
        conn.execute(nodes.insert().values(id=node, site_id=site, state=state))


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A store at the newest schema: SQLite, then PostgreSQL."""
    from fleet_server.store import connect

    engine = connect(db_url)
    yield engine
    engine.dispose()
