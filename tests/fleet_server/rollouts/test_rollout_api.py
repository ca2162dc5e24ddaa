"""The rollout routes: operator tokens read releases and rollouts; nodes download
artifacts by their unguessable URL, resumable by byte range."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from fleet_server.api import tokens
from fleet_server.api.app import create_app
from fleet_server.api.rollout_routes import artifact_routes
from fleet_server.rollouts import progress
from fleet_server.rollouts.gates import Policy
from tests.fleet_server.rollouts.conftest import NEW, START, later


def test_rollouts_over_http(fleet, release):
    for node in ("hk-01-c1", "hk-01-c2", "hk-02-c1"):
        fleet.join(node, START)
    fleet.bad = {"hk-01-c1", "hk-01-c2", "hk-02-c1"}
    rollout_id = progress.start(fleet.engine, NEW, [0.5, 1.0], Policy(), sites=None, by="t", now=START)
    fleet.step(later(1))
    progress.advance(fleet.engine, later(2))
    with fleet.engine.begin() as conn:
        token = tokens.create(conn, "ops")
    client = TestClient(create_app(fleet.engine))
    auth = {"Authorization": f"Bearer {token}"}

    assert client.get("/api/v1/rollouts").status_code == 401
    releases = client.get("/api/v1/releases", headers=auth).json()["items"]
    assert [(r["version"], r["sha256"]) for r in releases] == [(NEW, release.sha256)]
    assert "download_key" not in releases[0] and "path" not in releases[0]
    page = client.get("/api/v1/rollouts", headers=auth).json()
    assert page["total"] == 1 and page["items"][0]["id"] == rollout_id
    detail = client.get(f"/api/v1/rollouts/{rollout_id}", headers=auth).json()
    assert detail["state"] == "halted" and "rolled-back" in detail["reason"]
    assert [w["nodes"] for w in detail["waves"]] == [2, 1]
    assert detail["waves"][0]["counts"] == {"failed": 2}
    assert detail["gates"]["action"] == "halt"
    assert client.get("/api/v1/rollouts/999", headers=auth).status_code == 404


def test_artifacts_are_served_only_at_their_key_and_resume_by_range(fleet, release):
    app = FastAPI()
    app.include_router(artifact_routes(fleet.engine))
    client = TestClient(app)
    url = f"/releases/{release.version}/{release.download_key}/artifact"
    whole = client.get(url)
    assert whole.status_code == 200
    with open(release.path, "rb") as kept:
        assert whole.content == kept.read()
    tail = client.get(url, headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == whole.content[1000:]
    assert client.get(f"/releases/{release.version}/{'0' * 32}/artifact").status_code == 404
    assert client.get(f"/releases/9.9/{release.download_key}/artifact").status_code == 404
