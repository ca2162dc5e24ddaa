"""Presence in the store, on SQLite and PostgreSQL: the SQL follows the pure rules,
ingest orders statuses by receive time, and the sweep is idempotent."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet_server import presence_store, store
from fleet_server.ingest import Ingest
from fleet_server.presence import OFFLINE, ONLINE, Presence
from fleet_server.presence_store import StatusSeen
from fleet_server.schema import nodes
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Health, Status

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(seconds=45)
_names = itertools.count()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


@pytest.fixture
def engine(db_url):
    engine = store.connect(db_url)
    yield engine
    engine.dispose()


def stored(engine, node: str) -> Presence | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(nodes.c.state, nodes.c.state_at, nodes.c.last_seen).where(nodes.c.id == node)
        ).first()
    return None if row is None else Presence(row.state, utc(row.state_at), utc(row.last_seen))


# ---- the SQL does what the pure rules say ---------------------------------

steps = st.lists(
    st.tuples(
        st.sampled_from(["online", "offline", "retired", "heard", "replayed-online",
                         "replayed-offline", "sweep"]),
        st.integers(0, 300),
    ),
    min_size=1, max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_the_sql_follows_the_pure_rules_step_by_step(engine, sequence):
    node = f"p{next(_names)}-node"
    expected = Presence()
    for what, seconds in sequence:
        when = at(seconds)
        with engine.begin() as conn:
            if what == "heard":
                presence_store.record_heard(conn, {node: when})
                expected = expected.heard(when)
            elif what == "sweep":
                presence_store.sweep(conn, when, TIMEOUT)
                expected = expected.silent(when, TIMEOUT)
            else:
                replayed = what.startswith("replayed-")
                state = what.removeprefix("replayed-")
                presence_store.record_status(conn, StatusSeen(node, state, when, replayed))
                expected = expected.status(state, when, retained=replayed)
        actual = stored(engine, node)
        if actual is None:  # only a sweep so far: no row, nothing to say
            assert expected == Presence()
        else:
            assert actual == expected, (what, seconds)


# ---- ingest: statuses ordered by receive time -----------------------------


def status(node: str, state: str) -> tuple[str, bytes]:
    return topic(node, Channel.STATUS), Status(node=node, state=state).to_json()


def health(node: str) -> tuple[str, bytes]:
    return topic(node, Channel.HEALTH), Health(node=node, at=T0, uptime_s=5, outbox_pending=0).to_json()


@pytest.fixture
def ingest(engine):
    return Ingest(engine, publish_ack=lambda node, ack: None)


def test_two_workers_committing_a_will_after_the_newer_online_leave_the_node_online(engine, ingest):
    ingest.handle([(*status("a-node", "online"), at(0))])
    ingest.handle([(*status("a-node", "online"), at(11))])  # worker B: the reconnect
    ingest.handle([(*status("a-node", "offline"), at(10))])  # worker A: the old Will, stored late
    assert stored(engine, "a-node") == Presence(ONLINE, at(11), at(11))


def test_within_one_group_the_later_message_wins(engine, ingest):
    ingest.handle([
        (*health("a-node"), at(1)), (*status("a-node", "offline"), at(2)),
        (*status("b-node", "offline"), at(1)), (*health("b-node"), at(2)),
        (*health("c-node"), at(3)),
    ])
    assert stored(engine, "a-node").state == OFFLINE
    assert stored(engine, "b-node").state == ONLINE
    assert stored(engine, "c-node") == Presence(ONLINE, None, at(3))


def test_a_replayed_online_on_server_restart_neither_revives_nor_counts_as_heard(engine, ingest):
    ingest.handle([(*status("a-node", "online"), at(0)), (*status("a-node", "offline"), at(50))])
    ingest.handle([(*status("a-node", "online"), at(900), True)])  # retained, on subscribe
    assert stored(engine, "a-node") == Presence(OFFLINE, at(50), at(0))


def test_a_cleared_status_retires_the_node(engine, ingest):
    ingest.handle([(*status("a-node", "online"), at(0)), (topic("a-node", Channel.STATUS), b"", at(5))])
    assert stored(engine, "a-node").state == "retired"


# ---- the sweep --------------------------------------------------------------


def test_the_sweep_takes_silent_nodes_offline_once_and_leaves_talking_ones(engine, ingest):
    ingest.handle([(*status("quiet-node", "online"), at(0)), (*status("busy-node", "online"), at(0)),
                   (*health("busy-node"), at(40))])
    with engine.begin() as conn:
        assert presence_store.sweep(conn, at(46), TIMEOUT) == ["quiet-node"]
    with engine.begin() as conn:
        assert presence_store.sweep(conn, at(47), TIMEOUT) == []  # idempotent
    assert stored(engine, "quiet-node") == Presence(OFFLINE, at(0), at(0))
    assert stored(engine, "busy-node").state == ONLINE
    ingest.handle([(*health("quiet-node"), at(60))])
    assert stored(engine, "quiet-node").state == ONLINE
