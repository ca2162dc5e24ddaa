"""The announcement channel over HTTP, on SQLite and PostgreSQL: scoped tokens,
validation, idempotency, and (with the real broker) which nodes hear a queue
call or a payment, what they receive, and which rating taps a call tags."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fleet_server.api import tokens
from fleet_server.api.app import create_app
from fleet_server.schema import announcements, events, services
from rpfleet.protocol import Channel, decode, topic
from rpfleet.protocol.messages import Announce, Event, EventBatch, RatingTap
from tests.conftest import eventually
from tests.fleet_server.announce_data import RecordingLink, seed_hall
from tests.fleet_server.api.conftest import bearer
from tests.fleet_server.api.test_endpoints import ROUTES

CALL = {"ticket": "1023", "counter": "5"}
PAYMENT = {"amount_vnd": 50000, "counter": "thu-ngan"}


def integration(engine, name: str, role: str, *site_ids: str) -> str:
    with engine.begin() as conn:
        return tokens.create(conn, name, role=role, sites=site_ids)


# ---- without a broker: the token rules, validation, idempotency -----------------


@pytest.fixture
def link() -> RecordingLink:
    return RecordingLink()


@pytest.fixture
def hall(engine):
    with engine.begin() as conn:
        return seed_hall(conn, lambda role: role.replace("_", "-"))


@pytest.fixture
def app_client(engine, link, hall):
    with TestClient(create_app(engine, link=link)) as http:
        yield http


@pytest.fixture
def queue_token(engine, hall) -> str:
    return integration(engine, "queue-hk", "queue", "hk-01")


@pytest.fixture
def payment_token(engine, hall) -> str:
    return integration(engine, "pay-hk", "payment", "hk-01")


def test_a_queue_token_calls_at_its_site_and_only_there(app_client, engine, queue_token,
                                                        link, hall) -> None:
    integration(engine, "elsewhere", "queue", "bd-01")

    ok = app_client.post("/api/v1/sites/hk-01/calls", json=CALL, headers=bearer(queue_token))
    refused = app_client.post("/api/v1/sites/bd-01/calls", json=CALL, headers=bearer(queue_token))

    assert ok.status_code == 202, ok.text
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("token 'queue-hk' does not serve site 'bd-01' "
                                        "(it serves hk-01)")
    assert {node for node, _, _ in link.published} == {hall.counter5, hall.soundbox, hall.dashboard}


@pytest.mark.parametrize(
    ("who", "route", "message"),
    [
        ("operator", "calls", "token 'console' is an operator token, which cannot announce"),
        ("payment", "calls", "token 'pay-hk' is a payment token: it may call "
                             "POST /api/v1/sites/{site}/payments, not this queue route"),
        ("queue", "payments", "token 'queue-hk' is a queue token: it may call "
                              "POST /api/v1/sites/{site}/calls, not this payment route"),
    ],
    ids=["operator-cannot-announce", "payment-token-cannot-call", "queue-token-cannot-pay"],
)
def test_a_token_announces_only_what_its_role_allows(app_client, make_token, queue_token,
                                                     payment_token, link, who, route,
                                                     message) -> None:
    token = {"operator": make_token("console"), "queue": queue_token,
             "payment": payment_token}[who]
    body = CALL if route == "calls" else PAYMENT

    response = app_client.post(f"/api/v1/sites/hk-01/{route}", json=body, headers=bearer(token))

    assert response.status_code == 403
    assert response.json()["detail"].startswith(message)
    assert link.published == []


def test_an_integration_token_reads_nothing(app_client, queue_token) -> None:
    statuses = {url: app_client.get(url, headers=bearer(queue_token)).status_code
                for url in ROUTES.values()}

    assert statuses == dict.fromkeys(ROUTES.values(), 403)
    detail = app_client.get("/api/v1/nodes", headers=bearer(queue_token)).json()["detail"]
    assert detail == ("token 'queue-hk' is a queue integration token: it may only call "
                      "POST /api/v1/sites/{site}/calls")


def test_a_revoked_integration_token_is_refused(app_client, engine, queue_token, link) -> None:
    with engine.begin() as conn:
        tokens.revoke(conn, "queue-hk")

    response = app_client.post("/api/v1/sites/hk-01/calls", json=CALL,
                               headers=bearer(queue_token))

    assert response.status_code == 401
    assert link.published == []


def test_no_token_no_call(app_client, link) -> None:
    assert app_client.post("/api/v1/sites/hk-01/calls", json=CALL).status_code == 401
    assert link.published == []


@pytest.mark.parametrize(
    ("route", "body", "field", "type_"),
    [
        ("calls", {**CALL, "name": "Nguyễn Văn A"}, "name", "extra_forbidden"),
        ("payments", {**PAYMENT, "payer": "Nguyễn Văn A"}, "payer", "extra_forbidden"),
        ("calls", {"counter": "5"}, "ticket", "missing"),
        ("calls", {**CALL, "ticket": "10 23"}, "ticket", "string_pattern_mismatch"),
        ("calls", {**CALL, "counter": "Quầy 5"}, "counter", "string_pattern_mismatch"),
        ("calls", {**CALL, "ttl_s": 0}, "ttl_s", "greater_than_equal"),
        ("calls", {**CALL, "ttl_s": 3600}, "ttl_s", "less_than_equal"),
        ("calls", {**CALL, "priority": "yes"}, "priority", "bool_type"),
        ("calls", {**CALL, "service": "Hộ tịch"}, "service", "string_pattern_mismatch"),
        ("calls", {**CALL, "id": "has space"}, "id", "string_pattern_mismatch"),
        ("payments", {**PAYMENT, "amount_vnd": "50000"}, "amount_vnd", "int_type"),
        ("payments", {**PAYMENT, "amount_vnd": 0}, "amount_vnd", "greater_than_equal"),
        ("payments", {"amount_vnd": 50000}, "counter", "missing"),
    ],
    ids=["citizen-name", "payer-name", "no-ticket", "ticket-with-space", "counter-not-an-id",
         "ttl-zero", "ttl-an-hour", "priority-not-bool", "service-not-a-key", "bad-id",
         "amount-as-text", "amount-zero", "payment-without-counter"],
)
def test_a_malformed_request_is_refused_naming_the_field(app_client, queue_token, payment_token,
                                                         link, route, body, field,
                                                         type_) -> None:
    token = queue_token if route == "calls" else payment_token

    response = app_client.post(f"/api/v1/sites/hk-01/{route}", json=body, headers=bearer(token))

    assert response.status_code == 422
    problems = response.json()["detail"]
    assert [(p["loc"], p["type"]) for p in problems] == [(["body", field], type_)]
    assert "Nguyễn" not in response.text, "a refused value is not echoed back"
    if type_ == "extra_forbidden":
        assert problems[0]["msg"].startswith(f"'{field}' is not a field of this request")
    assert link.published == []


@pytest.mark.parametrize(
    ("route", "body", "status", "message"),
    [
        ("calls", {**CALL, "counter": "9"}, 422, "site 'hk-01' has no counter '9' (its counters: "
                                                 "1, 2, 3, 5, thu-ngan)"),
        ("payments", {**PAYMENT, "counter": "3"}, 409,
         "no node at site 'hk-01' can announce at counter '3': none is placed at that counter"),
    ],
    ids=["unknown-counter", "no-node-at-the-cashier"],
)
def test_a_counter_nobody_serves_is_refused_saying_so(app_client, queue_token, payment_token,
                                                      link, engine, route, body, status,
                                                      message) -> None:
    token = queue_token if route == "calls" else payment_token

    response = app_client.post(f"/api/v1/sites/hk-01/{route}", json=body, headers=bearer(token))

    assert (response.status_code, response.json()["detail"]) == (status, message)
    assert link.published == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(announcements)).first() is None


def test_a_call_to_a_counter_without_a_node_is_still_heard_in_the_hall(app_client, queue_token,
                                                                       hall) -> None:
    response = app_client.post("/api/v1/sites/hk-01/calls", json={**CALL, "counter": "3"},
                               headers=bearer(queue_token))

    assert response.status_code == 202
    assert [(n["node"], n["reason"]) for n in response.json()["nodes"]] == sorted(
        [(hall.dashboard, "dashboard"), (hall.soundbox, "soundbox")])


def test_a_retry_with_the_same_id_is_announced_once(app_client, queue_token, link,
                                                    engine) -> None:
    body = {**CALL, "id": "q-20261125-1023", "officer": "CB Trần Thị B", "ttl_s": 60}

    first = app_client.post("/api/v1/sites/hk-01/calls", json=body, headers=bearer(queue_token))
    published = len(link.published)
    again = app_client.post("/api/v1/sites/hk-01/calls", json={**body, "ttl_s": 90},
                            headers=bearer(queue_token))
    other = app_client.post("/api/v1/sites/hk-01/calls", json={**body, "ticket": "1024"},
                            headers=bearer(queue_token))

    assert first.status_code == again.status_code == 202
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert {**first.json(), "duplicate": True} == again.json(), "the first answer, again"
    assert len(link.published) == published == 3, "nothing published for the retry"
    assert {m.id for _, _, m in link.published} == {"q-20261125-1023"}
    assert other.status_code == 409
    assert other.json()["detail"].startswith("announcement id 'q-20261125-1023' was used at "
                                             "'hk-01' for another queue-call")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(services)).scalar() == 1


def test_without_a_broker_nothing_is_announced_or_recorded(engine, hall, queue_token) -> None:
    down = RecordingLink()
    down.connected.clear()
    with TestClient(create_app(engine, link=down)) as http:
        response = http.post("/api/v1/sites/hk-01/calls", json={**CALL, "id": "a1"},
                             headers=bearer(queue_token))
        down.connected.set()
        retried = http.post("/api/v1/sites/hk-01/calls", json={**CALL, "id": "a1"},
                            headers=bearer(queue_token))

    assert response.status_code == 503
    assert "not connected to the broker: nothing was announced" in response.json()["detail"]
    assert retried.status_code == 202 and retried.json()["duplicate"] is False
    assert len(down.published) == 3


def test_the_same_id_at_two_sites_is_two_announcements(app_client, engine, link, hall) -> None:
    token = integration(engine, "queue-both", "queue", "hk-01", "bd-01")

    answers = [app_client.post(f"/api/v1/sites/{site}/calls",
                               json={"id": "x1", "ticket": "7", "counter": counter},
                               headers=bearer(token)).json()
               for site, counter in (("hk-01", "5"), ("bd-01", "1"))]

    assert [a["duplicate"] for a in answers] == [False, False]
    assert [n["node"] for n in answers[1]["nodes"]] == [hall.bd_soundbox]


# ---- with the real broker: who hears it, and what ----------------------------------


@pytest.fixture
def live(server, new_node):
    """The hall in the running server's store; its nodes have broker credentials."""
    with server.engine.begin() as conn:
        return seed_hall(conn, lambda role: new_node())


@pytest.fixture
def http(server):
    with TestClient(create_app(server.engine, link=server.link)) as client:
        yield client


def listen(probe, node: str):
    """A client that is ``node``, subscribed to its own down/announce."""
    client = probe(node)
    client.subscribe(topic(node, Channel.ANNOUNCE))
    return client


def received(client) -> Announce:
    return received_raw(client)[0]


def received_raw(client) -> tuple[Announce, dict]:
    """The next announcement ``client`` gets (never retained), decoded and as sent."""
    message = client.next()
    assert not message.retain
    found = decode(Channel.ANNOUNCE, message.payload)
    assert isinstance(found, Announce)
    return found, json.loads(message.payload)


def test_a_call_reaches_its_counter_and_the_hall_and_no_one_else(server, live, http, probe):
    queue = integration(server.engine, "queue-sys", "queue", "hk-01", "bd-01")
    ears = {node: listen(probe, node) for node in
            (live.counter5, live.soundbox, live.counter2, live.cashier, live.bd_soundbox)}

    response = http.post("/api/v1/sites/hk-01/calls", headers=bearer(queue), json={
        **CALL, "service": "ho-tich", "priority": True, "officer": "cb-017", "ttl_s": 90})

    assert response.status_code == 202, response.text
    answer = response.json()
    assert [(n["node"], n["state"], n["reason"]) for n in answer["nodes"]] == sorted([
        (live.counter5, "online", "counter"), (live.soundbox, "online", "soundbox"),
        (live.dashboard, "offline", "dashboard")])
    sent_at = datetime.fromisoformat(answer["sent_at"])
    assert abs(sent_at - datetime.now(timezone.utc)) < timedelta(seconds=30)
    assert datetime.fromisoformat(answer["expires_at"]) == sent_at + timedelta(seconds=90)
    for node in (live.counter5, live.soundbox):
        heard, raw = received_raw(ears[node])
        assert heard.expires_at == sent_at + timedelta(seconds=90)
        # The officer is never said; the service and priority choose the pack's wording (1.4).
        assert raw == {"v": heard.v, "id": answer["id"], "kind": "queue-call", "ticket": "1023",
                       "counter": "5", "expires_at": raw["expires_at"],
                       "service": "ho-tich", "priority": True}

    # What each other node hears first is what was meant for it: the call above never came.
    for site, counter, node in (("hk-01", "2", live.counter2), ("bd-01", "1", live.bd_soundbox)):
        later = http.post(f"/api/v1/sites/{site}/calls", headers=bearer(queue),
                          json={"ticket": "2001", "counter": counter}).json()
        assert received(ears[node]).id == later["id"], node
    assert received(ears[live.soundbox]).counter == "2", "the hall hears every counter's calls"
    pay = integration(server.engine, "pay-gw", "payment", "hk-01")
    paid = http.post("/api/v1/sites/hk-01/payments", headers=bearer(pay), json=PAYMENT).json()
    assert received(ears[live.cashier]).id == paid["id"]


def test_a_payment_reaches_the_cashier_only_with_the_amount(server, live, http, probe):
    pay = integration(server.engine, "pay-gw", "payment", "hk-01")
    cashier, soundbox = listen(probe, live.cashier), listen(probe, live.soundbox)

    response = http.post("/api/v1/sites/hk-01/payments", headers=bearer(pay),
                         json={**PAYMENT, "id": "pay-0088", "ttl_s": 45})

    assert response.status_code == 202, response.text
    answer = response.json()
    assert [(n["node"], n["reason"]) for n in answer["nodes"]] == [(live.cashier, "counter")]
    assert (answer["kind"], answer["amount_vnd"], answer["ticket"], answer["service_id"]) == (
        "payment", 50000, None, None)
    heard, raw = received_raw(cashier)
    assert heard.expires_at == datetime.fromisoformat(answer["sent_at"]) + timedelta(seconds=45)
    assert raw == {"v": heard.v, "id": "pay-0088", "kind": "payment", "counter": "thu-ngan",
                   "amount_vnd": 50000, "expires_at": raw["expires_at"]}
    queue = integration(server.engine, "queue-sys", "queue", "hk-01")
    call = http.post("/api/v1/sites/hk-01/calls", headers=bearer(queue), json=CALL).json()
    assert received(soundbox).id == call["id"], "the hall never heard the payment"


def test_a_retried_call_reaches_the_node_once(server, live, http, probe):
    queue = integration(server.engine, "queue-sys", "queue", "hk-01")
    ear = listen(probe, live.counter5)
    body = {**CALL, "id": f"retry-{uuid.uuid4().hex[:8]}"}

    answers = [http.post("/api/v1/sites/hk-01/calls", headers=bearer(queue), json=body).json()
               for _ in range(3)]
    last = http.post("/api/v1/sites/hk-01/calls", headers=bearer(queue),
                     json={**CALL, "ticket": "1024"}).json()

    assert [a["duplicate"] for a in answers] == [False, True, True]
    assert [received(ear).ticket for _ in range(2)] == ["1023", "1024"]
    assert last["id"] != body["id"]


# ---- tagging: rating taps belong to the service a call starts ----------------------


def tap_batch(node: str, at: datetime, rating: int, counter: str | None = "5") -> bytes:
    event = Event(id=uuid.uuid4().hex, seq=int(at.timestamp() * 1000), at=at,
                  detail=RatingTap(pad="pad-1", counter=counter, rating=rating, scale=5))
    return EventBatch(node=node, events=[event]).to_json()


def test_taps_are_tagged_with_the_call_before_them_even_when_they_arrive_late(
        server, live, http, probe, token):
    queue = integration(server.engine, "queue-sys", "queue", "hk-01")
    pad = probe(live.counter5)

    def call(ticket: str, officer: str) -> dict:
        return http.post("/api/v1/sites/hk-01/calls", headers=bearer(queue),
                         json={**CALL, "ticket": ticket, "officer": officer}).json()

    first = call("1023", "cb-017")
    first_at = datetime.fromisoformat(first["sent_at"])
    pad.publish(topic(live.counter5, Channel.EVENTS), tap_batch(live.counter5,
                first_at - timedelta(seconds=1), 1))  # before any call: no service
    pad.publish(topic(live.counter5, Channel.EVENTS), tap_batch(live.counter5,
                first_at + timedelta(milliseconds=5), 5))
    eventually(lambda: datetime.now(timezone.utc) > first_at + timedelta(milliseconds=300))
    second = call("1024", "cb-017")
    second_at = datetime.fromisoformat(second["sent_at"])
    # Pressed during the first service, stored only now (an outbox draining after an outage).
    pad.publish(topic(live.counter5, Channel.EVENTS), tap_batch(live.counter5,
                first_at + timedelta(milliseconds=200), 4))
    pad.publish(topic(live.counter5, Channel.EVENTS), tap_batch(live.counter5,
                second_at + timedelta(milliseconds=1), 2))
    pad.publish(topic(live.counter5, Channel.EVENTS), tap_batch(live.counter5,
                second_at + timedelta(minutes=31), 5))  # after the timeout: no service
    pad.publish(topic(live.counter5, Channel.EVENTS), tap_batch(live.counter5,
                second_at + timedelta(seconds=1), 3, counter=None))  # the node's own counter

    def stored() -> int:
        with server.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()

    eventually(lambda: stored() == 6)
    page = http.get("/api/v1/sites/hk-01/services", headers=bearer(token)).json()
    assert page["total"] == 2
    newest, oldest = page["items"]
    assert (newest["ticket"], newest["officer"], newest["id"]) == ("1024", "cb-017",
                                                                   second["service_id"])
    assert (oldest["ticket"], oldest["announcement_id"]) == ("1023", first["id"])
    assert [t["rating"] for t in oldest["taps"]] == [5, 4]
    assert [t["rating"] for t in newest["taps"]] == [2, 3]
    assert (oldest["ratings"], oldest["satisfied"]) == (2, 2)
    assert (newest["ratings"], newest["satisfied"]) == (2, 0)
    assert datetime.fromisoformat(oldest["ends_at"]) == second_at
    assert datetime.fromisoformat(newest["ends_at"]) == second_at + timedelta(minutes=30)
