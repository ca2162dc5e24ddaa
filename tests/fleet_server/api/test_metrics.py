"""/metrics: the exposition parses as Prometheus text, and the numbers follow the
store and a real ingest (nodes publishing through the test broker)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from fleet_server.api import tokens
from fleet_server.api.metrics import CONTENT_TYPE, FleetReading, exposition, families, read_fleet
from fleet_server.ingest import Stats
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Event, EventBatch, Health, RatingTap, Status
from tests.conftest import eventually
from tests.fleet_server.api.conftest import bearer
from tests.fleet_server.api.fleet_data import seed
from tests.fleet_server.api.scrape import samples, types, value
from tests.mqtt import Probe

# ---- pure: families -> text ------------------------------------------------------


def test_the_families_render_as_parseable_text_with_the_given_numbers() -> None:
    stats = Stats(received=12, events_new=7, events_duplicate=3, rejected=2, commits=4)
    fleet = FleetReading(
        nodes_by_state={"online": 5, "retired": 1}, outbox_pending=40,
        invalid_payloads={"not-json": 2, 'we"ird\\reason': 1}, open_alerts={"node-offline": 3},
    )

    text = exposition(families(stats, fleet)).decode()

    assert samples(text) == {
        ("rpfleet_ingest_messages_received_total", ()): 12,
        ("rpfleet_ingest_events_total", (("result", "new"),)): 7,
        ("rpfleet_ingest_events_total", (("result", "duplicate"),)): 3,
        ("rpfleet_ingest_rejected_total", ()): 2,
        ("rpfleet_ingest_commits_total", ()): 4,
        ("rpfleet_invalid_payloads_total", (("reason", "not-json"),)): 2,
        ("rpfleet_invalid_payloads_total", (("reason", 'we"ird\\reason'),)): 1,
        ("rpfleet_nodes", (("state", "offline"),)): 0,
        ("rpfleet_nodes", (("state", "online"),)): 5,
        ("rpfleet_nodes", (("state", "retired"),)): 1,
        ("rpfleet_nodes", (("state", "unknown"),)): 0,
        ("rpfleet_outbox_pending_events", ()): 40,
        ("rpfleet_alerts_open", (("kind", "node-offline"),)): 3,
    }
    assert types(text) == {
        "rpfleet_ingest_messages_received": "counter", "rpfleet_ingest_events": "counter",
        "rpfleet_ingest_rejected": "counter", "rpfleet_ingest_commits": "counter",
        "rpfleet_invalid_payloads": "counter", "rpfleet_nodes": "gauge",
        "rpfleet_outbox_pending_events": "gauge", "rpfleet_alerts_open": "gauge",
    }


def test_without_an_ingest_only_the_fleet_numbers_are_shown() -> None:
    text = exposition(families(None, FleetReading())).decode()

    assert not any(name.startswith("rpfleet_ingest") for name, _ in samples(text))
    assert value(text, "rpfleet_nodes", state="online") == 0
    assert value(text, "rpfleet_outbox_pending_events") == 0


# ---- the store -> a reading --------------------------------------------------------


def test_the_fleet_reading_sums_the_store(engine) -> None:
    with engine.begin() as conn:
        seed(conn)
    with engine.connect() as conn:
        fleet = read_fleet(conn)

    assert fleet.nodes_by_state == {"online": 2, "offline": 1, "unknown": 1, "retired": 1}
    assert fleet.outbox_pending == 2 + 5, "the retired node's stale backlog is not counted"
    assert fleet.invalid_payloads == {"not-json": 3 + 1, "schema": 2}
    assert fleet.open_alerts == {"node-offline": 1, "peripheral-faulty": 1}


def test_an_empty_store_reads_as_zeros(engine) -> None:
    with engine.connect() as conn:
        assert read_fleet(conn) == FleetReading()


def test_a_scrape_reads_the_counters_before_the_store(engine) -> None:
    """Ingest counts a group after committing it: a scrape that shows the count
    must show the rows too, so the counters are read first."""
    from fleet_server import store
    from fleet_server.api.metrics import scrape
    from tests.fleet_server.api.fleet_data import health as health_json

    def ingest_commits_meanwhile() -> Stats:
        with engine.begin() as conn:
            store.update_node(conn, "n1", state="online", last_health=health_json("n1", 8))
        return Stats(received=1)

    text = scrape(engine, ingest_commits_meanwhile).decode()

    assert value(text, "rpfleet_ingest_messages_received_total") == 1
    assert value(text, "rpfleet_outbox_pending_events") == 8


def test_metrics_over_http_are_prometheus_text(client, token, engine, ingest_stats) -> None:
    with engine.begin() as conn:
        seed(conn)
    ingest_stats.received = 9

    response = client.get("/metrics", headers=bearer(token))

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert value(response.text, "rpfleet_ingest_messages_received_total") == 9
    assert value(response.text, "rpfleet_outbox_pending_events") == 7
    assert value(response.text, "rpfleet_nodes", state="online") == 2


# ---- a real ingest ------------------------------------------------------------------


def batch(node: str, *ratings: int) -> EventBatch:
    now = datetime.now(timezone.utc)
    return EventBatch(node=node, events=[
        Event(id=uuid.uuid4().hex, seq=i + 1, at=now, detail=RatingTap(pad="p", rating=r, scale=5))
        for i, r in enumerate(ratings)
    ])


def health(node: str, outbox_pending: int) -> Health:
    return Health(node=node, at=datetime.now(timezone.utc), uptime_s=5,
                  outbox_pending=outbox_pending)


QUIET_NODES = ("m1-node", "m2-node")


@pytest.fixture
def quiet_fleet(tmp_path, db_url):
    """A broker of this test's own (so no other test's retained statuses or late Last
    Wills reach the server), the fleet server on it, and a token for /metrics."""
    from fleet_server.service import FleetServer
    from fleet_server.settings import ServerSettings
    from tests.conftest import tls_broker
    from tests.servers import server_broker

    with tls_broker(tmp_path) as broker:
        fleet = FleetServer(ServerSettings(
            db_url=db_url, http_port=0, broker=server_broker(broker, client_id="rpfleet-server"),
        ))
        fleet.start()
        try:
            assert fleet.link.connected.wait(10)
            yield broker, fleet
        finally:
            fleet.stop()


@pytest.fixture
def scrape(quiet_fleet):
    """Scrapes /metrics of an app over the running server's store and ingest."""
    from fastapi.testclient import TestClient

    from fleet_server.api.app import create_app

    _, server = quiet_fleet
    with server.engine.begin() as conn:
        token = tokens.create(conn, "prometheus")
    with TestClient(create_app(server.engine, lambda: server.ingest.stats)) as http:

        def get() -> str:
            response = http.get("/metrics", headers=bearer(token))
            assert response.status_code == 200
            return response.text

        yield get


def test_metrics_follow_a_real_ingest(quiet_fleet, scrape) -> None:
    broker, _ = quiet_fleet
    first, second = QUIET_NODES
    a, b = (Probe(broker.host, broker.port, tls=broker.tls_for(n)).connect() for n in QUIET_NODES)
    try:
        assert value(scrape(), "rpfleet_ingest_messages_received_total") == 0
        a.publish(topic(first, Channel.STATUS), Status(node=first, state="online").to_json())
        b.publish(topic(second, Channel.STATUS), Status(node=second, state="online").to_json())
        three = batch(first, 5, 4, 1)
        a.publish(topic(first, Channel.EVENTS), three.to_json())
        a.publish(topic(first, Channel.EVENTS), three.to_json())  # a redelivery: 3 duplicates
        b.publish(topic(second, Channel.EVENTS), batch(second, 2).to_json())
        a.publish(topic(first, Channel.EVENTS), b"{not json")
        b.publish(topic(second, Channel.EVENTS), b"\xff\xfe")
        b.publish(topic(second, Channel.EVENTS), b"[1]")
        a.publish(topic(first, Channel.HEALTH), health(first, outbox_pending=6).to_json())
        b.publish(topic(second, Channel.HEALTH), health(second, outbox_pending=4).to_json())

        text = eventually(lambda: (t := scrape())
                          and value(t, "rpfleet_ingest_messages_received_total") == 10 and t)
        assert value(text, "rpfleet_ingest_events_total", result="new") == 4
        assert value(text, "rpfleet_ingest_events_total", result="duplicate") == 3
        assert value(text, "rpfleet_ingest_rejected_total") == 3
        assert value(text, "rpfleet_ingest_commits_total") >= 1
        assert {reason: value(text, "rpfleet_invalid_payloads_total", reason=reason)
                for reason in ("not-json", "not-utf8", "not-object")} == {
            "not-json": 1, "not-utf8": 1, "not-object": 1}
        assert value(text, "rpfleet_nodes", state="online") == 2
        assert value(text, "rpfleet_outbox_pending_events") == 6 + 4

        # The next health report replaces the last one: the backlog drains; a node leaves.
        a.publish(topic(first, Channel.HEALTH), health(first, outbox_pending=0).to_json())
        b.publish(topic(second, Channel.STATUS), Status(node=second, state="offline").to_json())
        text = eventually(lambda: (t := scrape())
                          and value(t, "rpfleet_ingest_messages_received_total") == 12 and t)
        assert value(text, "rpfleet_nodes", state="offline") == 1
        assert value(text, "rpfleet_nodes", state="online") == 1
        assert value(text, "rpfleet_outbox_pending_events") == 4
    finally:
        a.close()
        b.close()
