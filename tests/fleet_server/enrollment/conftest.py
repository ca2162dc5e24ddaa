"""Fixtures for enrollment: a migrated store with one registered site, a fleet
PKI in a temp dir, and the enrollment endpoint served over real HTTPS."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
import sqlalchemy as sa

from fleet_server import enrollment
from fleet_server.settings import EnrollmentSettings
from provisioning.fleet_dir import FleetDir

SITE = "pv-bach-dang"
OTHER_SITE = "pv-cua-nam"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A store at the newest schema (SQLite, then PostgreSQL) with two sites of 3 counters."""
    from fleet_server.schema import counters
    from fleet_server.store import add_site, connect

    engine = connect(db_url)
    with engine.begin() as conn:
        for site, name in ((SITE, "Phường Bạch Đằng"), (OTHER_SITE, "Phường Cửa Nam")):
            add_site(conn, site, name, "commune")
            conn.execute(counters.insert(), [{"site_id": site, "id": str(n)} for n in (1, 2, 3)])
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetDir:
    return FleetDir.create(tmp_path_factory.mktemp("pki") / "pki")


@pytest.fixture
def make_code(engine: sa.Engine, fleet: FleetDir) -> Callable[..., enrollment.NewCode]:
    import datetime as dt

    def make(counter: str = "1", *, site: str = SITE, kind: str = "counter", ttl_s: float = 3600,
             now: dt.datetime | None = None) -> enrollment.NewCode:
        with engine.begin() as conn:
            return enrollment.create_code(
                conn, fleet, site_id=site, counter=counter, kind=kind, created_by="tester",
                ttl=dt.timedelta(seconds=ttl_s), now=now,
            )

    return make


class Endpoint:
    """The enrollment app on a free loopback port, over HTTPS with the fleet server's certificate."""

    def __init__(self, engine: sa.Engine, fleet: FleetDir, settings: EnrollmentSettings) -> None:
        from fleet_server.api.enroll_app import create_enroll_app
        from fleet_server.api.serving import HttpService

        self.crl_rewrites = 0

        def rewrite_crl() -> None:
            self.crl_rewrites += 1
            with engine.begin() as conn:
                fleet.write_crl(enrollment.revoked(conn))

        self.service = HttpService(
            create_enroll_app(engine, fleet, settings, on_revoked=rewrite_crl),
            "127.0.0.1", 0, tls=(fleet.server.cert, fleet.server.key), name="enrollment endpoint",
        )

    @property
    def url(self) -> str:
        return self.service.url


@pytest.fixture
def endpoint_settings() -> EnrollmentSettings:
    return EnrollmentSettings(node_broker_host="127.0.0.1", node_broker_port=8883, max_failures=5)


@pytest.fixture
def endpoint(engine: sa.Engine, fleet: FleetDir, endpoint_settings: EnrollmentSettings) -> Iterator[Endpoint]:
    running = Endpoint(engine, fleet, endpoint_settings)
    running.service.start()
    yield running
    running.service.stop()


@pytest.fixture
def node_dir(tmp_path: Path):
    from agent.identity import IdentityFiles

    return IdentityFiles.in_dir(tmp_path / "node-etc")
