"""The generated Mosquitto config: no anonymous clients, each node only its own topics."""

from __future__ import annotations

import queue

import pytest

from provisioning.mosquitto import SERVER_USERNAME, render_acl
from rpfleet.protocol import Channel, topic


def test_anonymous_clients_are_refused(probe):
    with pytest.raises(ConnectionRefusedError):
        probe(None)


def test_a_wrong_password_is_refused(probe, new_node):
    with pytest.raises(ConnectionRefusedError):
        probe(new_node(), "not-the-password")


def test_a_node_cannot_publish_under_another_node(probe, new_node):
    mallory, victim = new_node(), new_node()
    server = probe(SERVER_USERNAME)
    server.subscribe("rp/v1/nodes/+/up/events")
    attacker = probe(mallory)
    attacker.publish(topic(victim, Channel.EVENTS), b'{"forged": true}')
    attacker.publish(topic(mallory, Channel.EVENTS), b'{"sentinel": true}')
    # Messages from one client arrive in order: the sentinel proves the forgery was dropped.
    first = server.next()
    assert first.topic == topic(mallory, Channel.EVENTS)


def test_a_node_cannot_read_another_nodes_down_topics(probe, new_node):
    mallory, victim = new_node(), new_node()
    eavesdropper = probe(mallory)
    eavesdropper.subscribe(f"rp/v1/nodes/{victim}/down/#")
    eavesdropper.subscribe(f"rp/v1/nodes/{mallory}/down/#")
    server = probe(SERVER_USERNAME)
    server.publish(topic(victim, Channel.ACK), b'{"secret": 1}')
    server.publish(topic(mallory, Channel.ACK), b'{"sentinel": 1}')
    assert eavesdropper.next().topic == topic(mallory, Channel.ACK)
    with pytest.raises(queue.Empty):
        eavesdropper.messages.get(timeout=0.3)


def test_a_node_cannot_publish_on_its_own_down_topics(probe, new_node):
    node = new_node()
    device = probe(node)
    device.subscribe(topic(node, Channel.ACK))
    device.publish(topic(node, Channel.ACK), b'{"self-acked": true}')
    server = probe(SERVER_USERNAME)
    server.publish(topic(node, Channel.ACK), b'{"sentinel": 1}')
    assert device.next().payload == b'{"sentinel": 1}'


def test_acl_gives_nodes_only_their_own_subtree():
    acl = render_acl()
    assert "pattern write rp/v1/nodes/%u/up/#" in acl
    assert "pattern read rp/v1/nodes/%u/down/#" in acl
    assert f"user {SERVER_USERNAME}" in acl
