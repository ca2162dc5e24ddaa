"""Services started by queue calls, and which rating taps belong to them, on the
store (SQLite and PostgreSQL) with chosen times; plus the rule for who hears
an announcement. (Over HTTP and the broker: tests/fleet_server/api/test_announcements.py.)"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from fleet_server import announcements, service_tagging, store
from fleet_server.announcements import SERVICE_TIMEOUT, Call, Payment, Recipient
from fleet_server.schema import enrollment_codes, events, nodes
from tests.fleet_server.announce_data import T0, RecordingLink, seed_hall

MIN = timedelta(minutes=1)


@pytest.fixture
def engine(db_url: str):
    engine = store.connect(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def hall(engine):
    with engine.begin() as conn:
        return seed_hall(conn, lambda role: role.replace("_", "-"))


@pytest.fixture
def link() -> RecordingLink:
    return RecordingLink()


def call(engine, link, at: datetime, ticket: str, counter: str = "5", site: str = "hk-01",
         **extra) -> announcements.Announced:
    return announcements.announce(engine, site, Call(ticket=ticket, counter=counter, **extra),
                                  token_name="queue", link=link, now=at)


def tap(engine, node: str, at: datetime, rating: int, counter: str | None = "5", *,
        suspect: bool = False, received_at: datetime | None = None) -> str:
    event_id = uuid.uuid4().hex
    with engine.begin() as conn:
        store.insert_events(conn, [{
            "node_id": node, "event_id": event_id, "seq": 1, "kind": "rating-tap", "at": at,
            "received_at": received_at or at, "clock_synced": True, "counter": counter,
            "suspect": suspect, "rating": rating, "scale": 5,
            "detail": {"kind": "rating-tap", "pad": "pad-1", "rating": rating, "scale": 5},
        }])
    return event_id


def shown(engine, site: str = "hk-01", **kwargs) -> dict[str, list[int]]:
    """Ticket -> ratings of its taps, for the services called on T0's day."""
    with engine.connect() as conn:
        found, _ = service_tagging.services_at(
            conn, site, start=T0 - timedelta(hours=9), end=T0 + timedelta(hours=15), limit=100,
            **kwargs)
    return {s.ticket: [t.rating for t in s.taps] for s in found}


# ---- tagging -------------------------------------------------------------------


def test_a_tap_belongs_to_the_last_call_at_its_counter_before_it(engine, hall, link) -> None:
    tap(engine, hall.counter5, T0 - MIN, 1)  # before any call
    call(engine, link, T0, "1023", officer="cb-017")
    tap(engine, hall.counter5, T0 + MIN, 5)
    tap(engine, hall.counter5, T0 + 2 * MIN, 4, counter=None)  # the node's own counter: 5
    tap(engine, hall.counter2, T0 + MIN, 2, counter="2")  # another counter
    call(engine, link, T0 + 5 * MIN, "1024")
    tap(engine, hall.counter5, T0 + 6 * MIN, 3)
    tap(engine, hall.counter5, T0 + 5 * MIN, 2)  # the very instant of the call: the new one

    assert shown(engine) == {"1024": [2, 3], "1023": [5, 4]}


def test_a_late_tap_goes_by_when_it_was_pressed_not_when_it_arrived(engine, hall, link) -> None:
    call(engine, link, T0, "1023")
    call(engine, link, T0 + 5 * MIN, "1024")
    call(engine, link, T0 + 10 * MIN, "1025")
    # Pressed during 1023, stored an hour later when the node's outbox drained.
    tap(engine, hall.counter5, T0 + 3 * MIN, 5, received_at=T0 + 60 * MIN)

    assert shown(engine) == {"1025": [], "1024": [], "1023": [5]}


def test_a_service_ends_at_the_timeout_without_a_next_call(engine, hall, link) -> None:
    made = call(engine, link, T0, "1023")
    tap(engine, hall.counter5, T0 + SERVICE_TIMEOUT - MIN, 5)
    tap(engine, hall.counter5, T0 + SERVICE_TIMEOUT, 1)

    assert shown(engine) == {"1023": [5]}
    with engine.connect() as conn:
        (service,), _ = service_tagging.services_at(
            conn, "hk-01", start=T0, end=T0 + MIN, limit=10)
    assert (service.id, service.called_at, service.ends_at) == (
        made.service_id, T0, T0 + SERVICE_TIMEOUT)
    assert service.announcement_id == made.message.id


def test_counters_and_sites_keep_their_own_services(engine, hall, link) -> None:
    call(engine, link, T0, "1023", counter="5")
    call(engine, link, T0 + MIN, "2001", counter="2")  # does not end counter 5's service
    call(engine, link, T0 + MIN, "0007", counter="1", site="bd-01")
    tap(engine, hall.counter5, T0 + 2 * MIN, 5)
    tap(engine, hall.counter2, T0 + 2 * MIN, 4, counter="2")
    tap(engine, hall.bd_soundbox, T0 + 2 * MIN, 3, counter="1")
    tap(engine, hall.soundbox, T0 + 2 * MIN, 2, counter="1")  # hk-01 counter 1: no call there

    assert shown(engine) == {"2001": [4], "1023": [5]}
    assert shown(engine, counter="5") == {"1023": [5]}
    assert shown(engine, site="bd-01") == {"0007": [3]}


def test_misuse_flagged_taps_are_shown_but_not_counted(engine, hall, link) -> None:
    call(engine, link, T0, "1023")
    for rating, suspect in ((5, False), (1, True), (2, False)):
        tap(engine, hall.counter5, T0 + MIN, rating, suspect=suspect)

    with engine.connect() as conn:
        (service,), total = service_tagging.services_at(
            conn, "hk-01", start=T0, end=T0 + MIN, limit=10)

    assert total == 1 and len(service.taps) == 3
    assert (service.ratings, service.satisfied) == (2, 1)


def test_services_come_newest_first_in_pages(engine, hall, link) -> None:
    for n in range(5):
        call(engine, link, T0 + n * MIN, f"{1000 + n}")

    with engine.connect() as conn:
        pages = [service_tagging.services_at(conn, "hk-01", start=T0, end=T0 + 10 * MIN,
                                             limit=2, offset=offset) for offset in (0, 2, 4)]

    assert [[s.ticket for s in page] for page, _ in pages] == [
        ["1004", "1003"], ["1002", "1001"], ["1000"]]
    assert {total for _, total in pages} == {5}


# ---- who hears it ----------------------------------------------------------------


def test_the_rule_for_who_hears_what(engine, hall) -> None:
    with engine.begin() as conn:
        conn.execute(nodes.insert().values(id="newcomer", site_id="hk-01", counter="1",
                                           state="unknown"))  # never enrolled: no kind
        for_call = announcements.recipients(conn, "hk-01", "5", announcements.QUEUE_CALL)
        for_payment = announcements.recipients(conn, "hk-01", "thu-ngan", announcements.PAYMENT)
        at_counter_1 = announcements.recipients(conn, "hk-01", "1", announcements.QUEUE_CALL)

    assert for_call == sorted([
        Recipient(hall.counter5, "online", "counter"),
        Recipient(hall.soundbox, "online", "soundbox"),
        Recipient(hall.dashboard, "offline", "dashboard"),
    ], key=lambda r: r.node), "not the retired node, not the other counters, not the other site"
    assert for_payment == [Recipient(hall.cashier, "online", "counter")]
    assert [r.node for r in at_counter_1] == sorted([hall.dashboard, "newcomer", hall.soundbox])


def test_a_node_is_the_kind_it_last_enrolled_as(engine, hall) -> None:
    with engine.begin() as conn:
        conn.execute(enrollment_codes.insert().values(
            secret_hash="e" * 64, node_id=hall.counter2, site_id="hk-01", counter="2",
            kind="dashboard", created_by="tech", created_at=T0, expires_at=T0 + MIN, used_at=T0,
        ))
        conn.execute(enrollment_codes.insert().values(  # made, never used: not its kind
            secret_hash="d" * 64, node_id=hall.cashier, site_id="hk-01", counter="thu-ngan",
            kind="soundbox", created_by="tech", created_at=T0, expires_at=T0 + MIN,
        ))
        kinds = announcements.node_kinds(conn, [hall.counter2, hall.cashier, hall.soundbox])

    assert kinds == {hall.counter2: "dashboard", hall.cashier: "counter",
                     hall.soundbox: "soundbox"}


def test_a_payment_starts_no_service_and_sets_its_expiry(engine, hall, link) -> None:
    made = announcements.announce(engine, "hk-01", Payment(amount_vnd=1_250_000, counter="thu-ngan",
                                                           ttl_s=30),
                                  token_name="pay", link=link, now=T0)

    assert made.service_id is None and made.message.expires_at == T0 + timedelta(seconds=30)
    assert [(node, m.kind, m.amount_vnd, m.ticket) for node, _, m in link.published] == [
        (hall.cashier, "payment", 1_250_000, None)]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
        assert service_tagging.services_at(conn, "hk-01", start=T0, end=T0 + MIN,
                                           limit=10) == ([], 0)
