"""The demo's broker: passwords on a plain listener, loopback only, no anonymous
clients, and the same ACL as the fleet's TLS broker (tests/provisioning/test_broker_tls.py)."""

from __future__ import annotations

import pytest

from provisioning.mosquitto import (
    SERVER_USERNAME, PrivateBroker, new_password, render_acl, render_config,
)
from rpfleet.protocol import Channel, topic
from tests.mqtt import Probe

NODES = ("pw01-node", "pw02-node", "pw03-node")


@pytest.fixture(scope="module")
def demo_broker(tmp_path_factory):
    """A broker made the way `rpfleet demo` makes its own."""
    users = {SERVER_USERNAME: new_password()} | {node: new_password() for node in NODES}
    with PrivateBroker(tmp_path_factory.mktemp("demo-broker"), users) as running:
        yield running


@pytest.fixture
def login(demo_broker):
    opened: list[Probe] = []

    def connect(user: str | None, password: str | None = None) -> Probe:
        if user is not None and password is None:
            password = demo_broker.users[user]
        client = Probe(demo_broker.host, demo_broker.port, user, password).connect()
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


def test_anonymous_clients_are_refused(login):
    with pytest.raises(ConnectionRefusedError):
        login(None)


def test_a_wrong_password_is_refused(login):
    with pytest.raises(ConnectionRefusedError):
        login(NODES[0], "not-the-password")


def test_a_node_cannot_publish_under_another_node(login):
    mallory, victim = NODES[:2]
    server = login(SERVER_USERNAME)
    server.subscribe("rp/v1/nodes/+/up/events")
    attacker = login(mallory)
    attacker.publish(topic(victim, Channel.EVENTS), b'{"forged": true}')
    attacker.publish(topic(mallory, Channel.EVENTS), b'{"sentinel": true}')
    # Messages from one client arrive in order: the sentinel proves the forgery was dropped.
    assert server.next().topic == topic(mallory, Channel.EVENTS)


def test_a_node_cannot_read_another_nodes_down_topics(login):
    mallory, victim = NODES[:2]
    eavesdropper = login(mallory)
    eavesdropper.subscribe(f"rp/v1/nodes/{victim}/down/#")
    eavesdropper.subscribe(f"rp/v1/nodes/{mallory}/down/#")
    server = login(SERVER_USERNAME)
    server.publish(topic(victim, Channel.ACK), b'{"secret": 1}')
    server.publish(topic(mallory, Channel.ACK), b'{"sentinel": 1}')
    assert eavesdropper.next().topic == topic(mallory, Channel.ACK)


def test_a_user_added_while_running_gets_in_after_the_reload(demo_broker, login):
    late = "pw99-node"
    with pytest.raises(ConnectionRefusedError):
        login(late, "its-password-to-be")
    demo_broker.add_users({late: "its-password-to-be"})
    login(late)


def test_the_plain_listener_is_on_loopback_only(demo_broker, tmp_path):
    config = demo_broker.conf_file.read_text()
    listening = [line for line in config.splitlines() if line.startswith("listener ")]
    assert listening == [f"listener {demo_broker.port} 127.0.0.1"]
    assert "allow_anonymous false" in config.splitlines()
    assert "loopback only" in config
    # Whoever asks, a plain listener is bound to loopback, and never without passwords.
    asked = render_config(port=1884, data_dir=tmp_path, acl_file=tmp_path / "acl",
                          password_file=tmp_path / "passwd")
    assert [line for line in asked.splitlines() if line.startswith("listener ")] == [
        "listener 1884 127.0.0.1"
    ]
    with pytest.raises(ValueError, match="password"):
        render_config(port=1884, data_dir=tmp_path, acl_file=tmp_path / "acl")


def test_acl_gives_nodes_only_their_own_subtree():
    acl = render_acl()
    assert "pattern write rp/v1/nodes/%u/up/#" in acl
    assert "pattern read rp/v1/nodes/%u/down/#" in acl
    assert f"user {SERVER_USERNAME}" in acl
