"""A job over the real broker with several real agents (fake pads): progress as nodes answer,
an offline node that returns before the expiry and gets its command, a node that never
connected before the job (no broker session to keep it) that gets it when it first comes
online, a node that never returns counted expired, and the audit record read back."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from fleet_server.api import tokens
from fleet_server.api.job_routes import detail
from fleet_server.schema import nodes
from provisioning.mosquitto import free_port
from tests.conftest import eventually
from tests.servers import server_settings


def states(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(nodes.c.id, nodes.c.state)).all())


def job_now(engine, job_id):
    with engine.connect() as conn:
        return detail(conn, job_id)


@pytest.fixture
def fleet(broker, tmp_path):
    """A fleet server with its HTTP API on a free port."""
    from fleet_server.service import FleetServer

    settings = server_settings(broker, tmp_path, f"sqlite:///{tmp_path / 'fleet.sqlite'}", "jobs")
    server = FleetServer(settings.model_copy(update={"http_port": free_port()}))
    server.start()
    try:
        assert server.link.connected.wait(10), "server did not connect to the test broker"
        yield server
    finally:
        server.stop()


def test_a_job_reaches_online_returning_and_new_nodes_and_counts_the_lost_one_expired(
    fleet, running_agent, new_node
):
    with fleet.engine.begin() as conn:
        token = tokens.create(conn, "ops-console")
    api = httpx.Client(base_url=f"http://127.0.0.1:{fleet.settings.http_port}/api/v1",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    online, returning, lost, newcomer = new_node(), new_node(), new_node(), new_node()
    agents = {node: running_agent(node) for node in (online, returning, lost)}
    eventually(lambda: all(states(fleet.engine).get(n) == "online" for n in agents))
    agents[returning].stop()
    agents[lost].stop()
    eventually(lambda: states(fleet.engine)[returning] == states(fleet.engine)[lost] == "offline")
    with fleet.engine.begin() as conn:  # registered (e.g. by its enrollment), never connected yet
        conn.execute(nodes.insert().values(id=newcomer, state="unknown"))

    made = api.post("/jobs", json={"command": "self-test", "expires_in_s": 15,
                                   "nodes": [online, returning, lost, newcomer]})
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    eventually(lambda: {n.node_id: n.state for n in job_now(fleet.engine, job_id).nodes}[online] == "done")
    progress = job_now(fleet.engine, job_id).progress
    assert (progress.done, progress.pending) == (1, 3)

    running_agent(returning)  # the same state directory: the same node back
    running_agent(newcomer)
    eventually(lambda: job_now(fleet.engine, job_id).progress.done == 3)
    final = eventually(lambda: (j := job_now(fleet.engine, job_id)).finished and j, timeout=30)
    assert final.progress.model_dump() == {"total": 4, "done": 3, "failed": 0, "expired": 1,
                                           "pending": 0}

    # The audit record: who asked what, when, for which nodes, and what came back.
    listed = api.get("/jobs").json()["items"][0]
    assert (listed["id"], listed["issuer"], listed["finished"]) == (job_id, "ops-console", True)
    history = api.get(f"/nodes/{returning}/commands").json()["items"]
    assert [(h["job_id"], h["command"], h["state"]) for h in history] == [(job_id, "self-test", "done")]
    assert (final.command, final.issuer, final.selector) == (
        "self-test", "ops-console", {"nodes": sorted([online, returning, lost, newcomer])})
    by_node = {n.node_id: n for n in final.nodes}
    assert by_node[lost].state == "expired" and by_node[lost].outcome is None
    for node in (online, returning, newcomer):
        assert by_node[node].outcome == "ok"
        assert by_node[node].detail == "1 peripheral(s) ok"
        assert by_node[node].received_at is not None
    assert by_node[newcomer].sends >= 2  # the first send found no session; again once it came
    with fleet.engine.connect() as conn:
        kept = detail(conn, job_id, with_output=True)
    output = {n.node_id: n.output for n in kept.nodes}[online]
    assert output["passed"] is True
    assert [(p["id"], p["state"]) for p in output["peripherals"]] == [("pad-1", "ok")]
