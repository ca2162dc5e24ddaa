"""The job routes over HTTP: who may send, what is refused and why, the audit log read back."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fleet_server import job_store
from fleet_server.api import tokens
from rpfleet.protocol.messages import CommandResult
from tests.fleet_server.api.conftest import bearer
from tests.fleet_server.api.fleet_data import seed


@pytest.fixture
def fleet(engine):
    with engine.begin() as conn:
        seed(conn)
    return engine


def send(client, token, **body):
    return client.post("/api/v1/jobs", json=body, headers=bearer(token))


def answer(engine, node, job_id, outcome, **fields):
    with engine.begin() as conn:
        job_store.record_results(conn, [(CommandResult(
            node=node, id=job_id, outcome=outcome, finished_at=datetime.now(timezone.utc), **fields,
        ), datetime.now(timezone.utc))])


def test_a_job_is_made_for_the_site_with_the_token_name_as_issuer_and_read_back(client, fleet, make_token):
    token = make_token("an-nguyen-laptop")
    made = send(client, token, command="fetch-logs", args={"lines": 50}, site="hk-01",
                expires_in_s=300)
    assert made.status_code == 201, made.text
    job = made.json()
    assert job["issuer"] == "an-nguyen-laptop"
    assert job["selector"] == {"site": "hk-01"}
    assert job["progress"] == {"total": 2, "done": 0, "failed": 0, "expired": 0, "pending": 2}
    assert [n["node_id"] for n in job["nodes"]] == ["hk-01-c1", "hk-01-c2"]

    answer(fleet, "hk-01-c1", job["id"], "ok", detail="2 line(s)",
           output={"lines": ["a", "b"], "truncated": False})
    answer(fleet, "hk-01-c2", job["id"], "refused", detail="args.lines: too many")
    shown = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(token)).json()
    assert shown["progress"] == {"total": 2, "done": 1, "failed": 1, "expired": 0, "pending": 0}
    assert shown["finished"] is True
    by_node = {n["node_id"]: n for n in shown["nodes"]}
    assert by_node["hk-01-c1"]["state"] == "done" and by_node["hk-01-c1"]["output"] is None
    assert by_node["hk-01-c2"]["detail"] == "args.lines: too many"
    with_output = client.get(f"/api/v1/jobs/{job['id']}?output=true", headers=bearer(token)).json()
    assert with_output["nodes"][0]["output"]["lines"] == ["a", "b"]

    history = client.get("/api/v1/nodes/hk-01-c1/commands?output=true", headers=bearer(token)).json()
    assert history["total"] == 1
    item = history["items"][0]
    assert (item["job_id"], item["command"], item["args"], item["issuer"], item["outcome"]) == (
        job["id"], "fetch-logs", {"lines": 50}, "an-nguyen-laptop", "ok")


REFUSALS = [
    ({"command": "reboot", "site": "nowhere"}, 404, "no site 'nowhere'"),
    ({"command": "screenshot", "args": {"width": 5}, "all": True}, 422, "args.width"),
    ({"command": "reboot"}, 422, "exactly one of nodes, site, region or all"),
    ({"command": "reboot", "site": "bd-01"}, 409, "chooses none"),
    ({"command": "format-disk", "all": True}, 422, "command"),
    ({"command": "reboot", "all": True, "expires_in_s": 30 * 86400}, 422, "expires_in_s"),
]


def test_a_refused_job_says_why_and_stores_nothing(client, fleet, token):
    for body, status, says in REFUSALS:
        refused = send(client, token, **body)
        assert refused.status_code == status, (body, refused.text)
        assert says in refused.text, body
    assert client.get("/api/v1/jobs", headers=bearer(token)).json()["total"] == 0


def test_integration_tokens_cannot_send_commands(client, fleet):
    with fleet.begin() as conn:
        queue = tokens.create(conn, "queue-vendor", role=tokens.QUEUE, sites=["hk-01"])
    refused = send(client, queue, command="reboot", all=True)
    assert refused.status_code == 403
    assert client.get("/api/v1/jobs", headers=bearer(queue)).status_code == 403


def test_jobs_are_listed_newest_first_and_paged(client, fleet, token):
    ids = [send(client, token, command=name, nodes=["hk-02-c1"]).json()["id"]
           for name in ("self-test", "identify", "test-sound")]
    first = client.get("/api/v1/jobs?limit=2", headers=bearer(token)).json()
    second = client.get("/api/v1/jobs?limit=2&offset=2", headers=bearer(token)).json()
    assert first["total"] == 3
    assert [j["id"] for j in first["items"] + second["items"]] == ids[::-1]
    assert [j["command"] for j in first["items"]] == ["test-sound", "identify"]
    assert client.get("/api/v1/jobs/" + "0" * 32, headers=bearer(token)).status_code == 404
    assert client.get("/api/v1/nodes/ghost/commands", headers=bearer(token)).status_code == 404
    assert client.get("/api/v1/nodes/n-free/commands", headers=bearer(token)).json()["total"] == 0
