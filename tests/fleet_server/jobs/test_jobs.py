"""Jobs in the store, on SQLite and PostgreSQL: choosing nodes, refusals naming the field,
what the dispatcher sends and when, the first outcome kept, and progress."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from fleet_server import job_store, jobs
from fleet_server.jobs import Dispatcher, JobError, JobRequest
from fleet_server.schema import job_targets, nodes
from rpfleet.protocol import Channel
from rpfleet.protocol.messages import CommandResult
from tests.fleet_server.api.fleet_data import seed

T = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def fleet(engine):
    with engine.begin() as conn:
        seed(conn)
    return engine


def targets_of(engine, job_id) -> list[str]:
    with engine.connect() as conn:
        return [t.node_id for t in job_store.targets(conn, job_id)]


CHOICES = [
    (JobRequest("self-test", site="hk-01"), ["hk-01-c1", "hk-01-c2"]),
    (JobRequest("self-test", region="hk"), ["hk-01-c1", "hk-01-c2", "hk-02-c1"]),
    (JobRequest("self-test", all=True), ["hk-01-c1", "hk-01-c2", "hk-02-c1", "n-free"]),
    (JobRequest("self-test", nodes=("n-free", "hk-02-c1", "n-free")), ["hk-02-c1", "n-free"]),
]


def test_a_job_goes_to_the_nodes_chosen(fleet):
    # One store for all the cases: a PostgreSQL database per case is slow to make.
    for request_, expected in CHOICES:
        job_id = jobs.create_job(fleet, request_, "ops", now=T)
        assert targets_of(fleet, job_id) == expected, request_
        assert len(job_id) == 32 and int(job_id, 16) >= 0


REFUSALS = [
    (JobRequest("format-disk", all=True), 422, "command: 'format-disk' is not a command"),
    (JobRequest("fetch-logs", args={"colour": 1}, all=True), 422, "args.colour: fetch-logs does not take it"),
    (JobRequest("reboot", args={"lines": 1}, all=True), 422, "takes no args"),
    (JobRequest("reboot"), 422, "exactly one of nodes, site, region or all"),
    (JobRequest("reboot", site="hk-01", all=True), 422, "got site, all"),
    (JobRequest("reboot", all=True, expires_in_s=5), 422, "expires_in_s: between 10 s and 7d"),
    (JobRequest("reboot", nodes=("ghost",)), 404, "nodes: no node ghost"),
    (JobRequest("reboot", nodes=("n-gone",)), 409, "n-gone retired"),
    (JobRequest("reboot", site="nowhere"), 404, "site: no site 'nowhere'"),
    (JobRequest("reboot", region="nowhere"), 404, "region: no site is registered in region"),
    (JobRequest("reboot", site="bd-01"), 409, "chooses none"),
]


def test_a_job_that_cannot_be_made_is_refused_naming_why(fleet):
    for request_, status, message in REFUSALS:
        with pytest.raises(JobError, match=message) as refused:
            jobs.create_job(fleet, request_, "ops", now=T)
        assert refused.value.status == status, request_
    with fleet.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_targets)).scalar() == 0


class Published:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, node, channel, message) -> None:
        assert channel is Channel.CMD
        self.sent.append((node, message.id))


def dispatcher(engine, clock) -> tuple[Dispatcher, Published]:
    published = Published()
    return Dispatcher(engine, published, lambda: True, clock=clock), published


def set_node(engine, node, **values) -> None:
    with engine.begin() as conn:
        conn.execute(nodes.update().where(nodes.c.id == node).values(**values))


def test_the_dispatcher_sends_once_then_again_only_when_the_node_comes_back(fleet):
    now = [T]
    job_id = jobs.create_job(fleet, JobRequest("identify", site="hk-01", expires_in_s=600), "ops", now=T)
    d, published = dispatcher(fleet, lambda: now[0])
    assert d.dispatch() == 2
    assert sorted(published.sent) == [("hk-01-c1", job_id), ("hk-01-c2", job_id)]
    now[0] = T + timedelta(seconds=5)
    assert d.dispatch() == 0  # nothing new: the broker keeps it for the offline node's session

    set_node(fleet, "hk-01-c2", state="online", state_at=T + timedelta(seconds=30))
    now[0] = T + timedelta(seconds=31)
    assert d.dispatch() == 1
    assert published.sent[-1] == ("hk-01-c2", job_id)
    assert d.dispatch() == 0


def test_no_send_after_an_answer_or_after_the_expiry_or_to_a_node_retired_since(fleet):
    now = [T]
    answered = jobs.create_job(fleet, JobRequest("self-test", nodes=("hk-01-c1",)), "ops", now=T)
    lapsed = jobs.create_job(fleet, JobRequest("self-test", nodes=("hk-02-c1",), expires_in_s=10),
                             "ops", now=T)
    retired = jobs.create_job(fleet, JobRequest("self-test", nodes=("n-free",)), "ops", now=T)
    with fleet.begin() as conn:
        job_store.record_results(conn, [(result("hk-01-c1", answered, "ok"), T)])
    set_node(fleet, "n-free", state="retired")
    now[0] = T + timedelta(seconds=11)
    d, published = dispatcher(fleet, lambda: now[0])
    assert d.dispatch() == 0
    assert published.sent == []
    assert lapsed and retired


def test_two_workers_claim_each_send_once(fleet):
    jobs.create_job(fleet, JobRequest("self-test", region="hk"), "ops", now=T)
    with fleet.begin() as conn:
        due = job_store.due(conn, T)
        assert len(due) == 3
        first = [job_store.claim(conn, t.job_id, t.node_id, t.sends, T) for t in due]
        second = [job_store.claim(conn, t.job_id, t.node_id, t.sends, T) for t in due]
    assert first == [True] * 3 and second == [False] * 3


def result(node, job_id, outcome, detail=None) -> CommandResult:
    return CommandResult(node=node, id=job_id, outcome=outcome, detail=detail, finished_at=T)


def test_progress_counts_done_failed_expired_and_pending_and_keeps_the_first_answer(fleet):
    job_id = jobs.create_job(fleet, JobRequest("self-test", all=True, expires_in_s=60), "ops", now=T)
    with fleet.begin() as conn:
        unknown = job_store.record_results(conn, [
            (result("hk-01-c1", job_id, "ok"), T),
            (result("hk-01-c2", job_id, "refused", "args.x"), T),
            (result("hk-01-c1", job_id, "failed", "a late second answer"), T),
            (result("n-gone", job_id, "ok"), T),  # not a target of this job
        ])
    assert unknown == [f"n-gone/{job_id}"]
    with fleet.connect() as conn:
        before = job_store.job(conn, job_id, T + timedelta(seconds=30))
        after = job_store.job(conn, job_id, T + timedelta(seconds=61))
        first = {t.node_id: t.outcome for t in job_store.targets(conn, job_id)}
    assert (before.total, before.done, before.failed, before.expired, before.pending) == (4, 1, 1, 0, 2)
    assert (after.done, after.failed, after.expired, after.pending) == (1, 1, 2, 0)
    assert first["hk-01-c1"] == "ok"


def test_target_state():
    assert jobs.target_state("ok", T, T) == "done"
    assert jobs.target_state("refused", T, T) == "failed"
    assert jobs.target_state(None, T + timedelta(seconds=1), T) == "pending"
    assert jobs.target_state(None, T, T) == "expired"
    assert jobs.target_state("expired", T + timedelta(days=1), T) == "expired"
