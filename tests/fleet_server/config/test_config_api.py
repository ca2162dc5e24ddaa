"""The config routes of the HTTP API (operator tokens; writes logged with the token's
name), on both backends: the paths the console is built against."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fleet_server.api import tokens
from fleet_server.schema import config_changes
from rpfleet.node_config import config_version
from tests.fleet_server.config.conftest import PAD, place


@pytest.fixture
def http(engine):
    from fastapi.testclient import TestClient

    from fleet_server.api.app import create_app

    place(engine, "bd-1", "bd", "hn")
    place(engine, "bd-2", "bd", "hn")
    with engine.begin() as conn:
        token = tokens.create(conn, "ops-an")
        queue_token = tokens.create(conn, "queue-vendor", role=tokens.QUEUE, sites=["bd"])
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.queue_token = queue_token
        yield client


def test_layers_are_set_read_listed_and_deleted_and_each_write_is_logged(http, engine):
    put = http.put("/api/v1/config/layers/fleet/-", json={"health_interval": 20, "peripherals": [PAD]})
    assert put.status_code == 200, put.text
    assert put.json() == {"scope": "fleet", "target": "-", "action": "set", "changed": ["bd-1", "bd-2"],
                          "published": [], "unpublished": ["bd-1", "bd-2"]}  # no broker link here
    assert http.put("/api/v1/config/layers/site/bd", json={"health_interval": 10}).json()["changed"] == [
        "bd-1", "bd-2"]

    layers = http.get("/api/v1/config/layers").json()["items"]
    assert [(l["scope"], l["target"], l["updated_by"]) for l in layers] == [
        ("fleet", "-", "ops-an"), ("site", "bd", "ops-an")]
    assert http.get("/api/v1/config/layers/site/bd").json()["body"] == {"health_interval": 10}
    assert http.get("/api/v1/config/layers/site/nowhere").status_code == 404

    node = http.get("/api/v1/nodes/bd-1/config").json()
    want = {"health_interval": 10, "peripherals": [PAD]}
    assert (node["desired"], node["version"], node["layers"]) == (want, config_version(want), ["fleet", "site:bd"])
    assert (node["reported_version"], node["in_sync"]) == (None, False)

    deleted = http.delete("/api/v1/config/layers/site/bd")
    assert deleted.json()["changed"] == ["bd-1", "bd-2"]
    assert http.get("/api/v1/nodes/bd-1/config").json()["desired"] == {"health_interval": 20, "peripherals": [PAD]}
    assert http.delete("/api/v1/config/layers/site/bd").status_code == 404
    with engine.connect() as conn:
        logged = conn.execute(sa.select(config_changes.c.token_name, config_changes.c.action)
                              .order_by(config_changes.c.id)).all()
    assert [tuple(row) for row in logged] == [("ops-an", "set"), ("ops-an", "set"), ("ops-an", "delete")]


def test_an_invalid_layer_is_refused_naming_path_layer_and_node(http):
    http.put("/api/v1/config/layers/fleet/-", json={"peripherals": [PAD]})

    refused = http.put("/api/v1/config/layers/node/bd-2", json={"peripherals": [{"id": "pad-1", "scale": 7}]})

    assert refused.status_code == 422
    assert refused.json()["problems"] == [{
        "path": "peripherals[pad-1].scale", "msg": "7: Input should be less than or equal to 5",
        "layer": "node:bd-2", "node": "bd-2"}]
    assert http.get("/api/v1/config/layers/node/bd-2").status_code == 404  # nothing stored
    malformed = http.put("/api/v1/config/layers/site/bd", json={"broker": {"host": "x"}})
    assert malformed.status_code == 422 and "broker: not a key a layer may set" in malformed.json()["detail"]
    assert http.put("/api/v1/config/layers/city/hn", json={}).status_code == 422  # no such scope


def test_drift_pages_the_nodes_not_on_the_latest_and_only_operators_may_call(http):
    http.put("/api/v1/config/layers/fleet/-", json={"batch_size": 50})

    page = http.get("/api/v1/config/drift", params={"limit": 1})
    assert page.status_code == 200
    body = page.json()
    assert (body["total"], body["limit"], [i["node"] for i in body["items"]]) == (2, 1, ["bd-1"])
    assert body["items"][0]["reported_state"] is None
    assert http.get("/api/v1/nodes/nobody/config").status_code == 404

    as_queue = {"Authorization": f"Bearer {http.queue_token}"}
    assert http.get("/api/v1/config/drift", headers=as_queue).status_code == 403
    assert http.put("/api/v1/config/layers/fleet/-", json={}, headers=as_queue).status_code == 403
