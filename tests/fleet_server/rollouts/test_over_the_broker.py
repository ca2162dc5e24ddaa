"""A rollout end to end over the real broker (mutual TLS) and the real server's
ingest: nodes are independent MQTT clients with their own certificates; the
rollout duty publishes each node's desired update retained on its down/update."""

from __future__ import annotations

import json
import threading

from fleet_server import store as db
from fleet_server.rollouts import progress, store
from fleet_server.rollouts.gates import Policy
from fleet_server.rollouts.plan import plan_waves
from fleet_server.rollouts.publish import step
from fleet_server.rollouts.releases import add_release
from fleet_server.store import utc_now
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Health, Status, UpdateProgress
from tests.conftest import eventually
from tests.fleet_server.rollouts.conftest import NEW, OLD, make_artifact


class Node:
    """A node as the broker sees it: its certificate, its up/ topics, its down/update."""

    def __init__(self, node_id: str, probe) -> None:
        self.id = node_id
        self.client = probe(node_id)
        self.client.subscribe(topic(node_id, Channel.UPDATE_DESIRED))
        self.version = OLD

    def say(self, channel: Channel, message) -> None:
        self.client.publish(topic(self.id, channel), message.to_json(), retain=channel is Channel.STATUS)

    def online(self) -> None:
        self.say(Channel.STATUS, Status(node=self.id, state="online", agent_version=self.version))
        self.say(Channel.HEALTH, Health(node=self.id, at=utc_now(), uptime_s=1, outbox_pending=0,
                                        agent_version=self.version))

    def desired(self) -> dict:
        received = self.client.wait_for(lambda m: m.payload != b"", timeout=20)
        assert received.retain or received.topic.endswith("down/update")
        return json.loads(received.payload)

    def update(self, desired: dict) -> None:
        self.version = desired["version"]
        self.say(Channel.UPDATE_PROGRESS, UpdateProgress(node=self.id, version=self.version,
                                                         state="done", at=utc_now()))
        self.online()


def test_waves_reach_nodes_over_the_broker_and_a_late_node_goes_straight_to_the_target(
        server, new_node, probe, release_keys, tmp_path):
    private, public = release_keys
    release = add_release(server.engine, make_artifact(tmp_path, NEW, private), [public],
                          tmp_path / "releases", by="t", now=utc_now())
    ids = [new_node(), new_node()]
    with server.engine.begin() as conn:  # the broker also replays other tests' nodes: a site of our own
        db.add_site(conn, "rollout-site", "Phường Ngọc Hà", "commune")
        for node_id in ids:
            db.assign_node(conn, node_id, "rollout-site", "1")
    nodes = {node_id: Node(node_id, probe) for node_id in ids}
    for node in nodes.values():
        node.online()
    eventually(lambda: all(_state(server, n) == "online" for n in ids))
    first, second = sorted(ids, key=lambda n: plan_waves(ids, [0.5, 1.0]).waves[n])

    stop = threading.Event()

    def duty() -> None:  # the fleet duty's rounds, faster than the server's own
        while not stop.wait(0.2):
            step(server.engine, server.link.publish, "https://fleet.test:8443", utc_now())

    rollout_id = progress.start(server.engine, NEW, [0.5, 1.0], Policy(soak_s=0), sites=["rollout-site"],
                                by="t", now=utc_now())
    stepping = threading.Thread(target=duty, name="rollout duty")
    stepping.start()
    try:
        desired = nodes[first].desired()
        assert desired["version"] == NEW and desired["sha256"] == release.sha256
        assert desired["url"] == (f"https://fleet.test:8443/releases/{NEW}/"
                                  f"{release.download_key}/artifact")
        assert nodes[second].client.messages.empty()  # the second wave waits for the first
        nodes[first].update(desired)

        nodes[second].update(nodes[second].desired())
        eventually(lambda: _rollout(server, rollout_id).state == "completed")

        late_id = new_node()  # enrolled at the site after the rollout completed, on an old version
        with server.engine.begin() as conn:
            db.assign_node(conn, late_id, "rollout-site", "2")
        late = Node(late_id, probe)
        late.version = "0.9.0"
        late.online()
        assert late.desired()["version"] == NEW
    finally:
        stop.set()
        stepping.join(10)


def _state(server, node_id):
    from fleet_server.schema import nodes
    import sqlalchemy as sa

    with server.engine.connect() as conn:
        return conn.execute(sa.select(nodes.c.state).where(nodes.c.id == node_id)).scalar()


def _rollout(server, rollout_id):
    with server.engine.connect() as conn:
        return store.get_rollout(conn, rollout_id)
