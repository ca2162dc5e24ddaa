"""Desired config end to end: the real server publishes retained on down/config through
the real broker; real agents apply it (or refuse it and stay), report on up/config,
keep it for a restart without a broker, and restart only the driver that changed."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from fleet_server import config_store, desired_config
from provisioning.mosquitto import free_port
from tests.conftest import eventually
from tests.fleet_server.config.conftest import PAD, place
from tests.servers import start_server  # noqa: F401 - fixture


@pytest.fixture
def server(start_server, tmp_path: Path):  # noqa: F811 - fixture
    """One fleet server on SQLite (the store paths run on PostgreSQL in test_desired_config)."""
    return start_server(f"sqlite:///{tmp_path / 'fleet.sqlite'}")


def state(server, node: str) -> config_store.NodeConfigState | None:
    with server.engine.connect() as conn:
        return config_store.node_state(conn, node)


def set_layer(server, scope: str, target: str, body: dict) -> desired_config.Change:
    return desired_config.set_layer(server.engine, scope, target, body, token_name="ops-an",
                                    link=server.link)


def applied(runner) -> str | None:
    config = runner.call(lambda: runner.agent.applied_config)
    return config.version if config else None


def test_a_site_layer_reaches_a_running_agent_which_applies_it_and_says_so(server, new_node,
                                                                           running_agent):
    node = new_node()
    place(server.engine, node, "bd-" + node, "hn")
    runner = running_agent(node)
    eventually(lambda: runner.agent.link.connected)

    change = set_layer(server, "site", "bd-" + node,
                       {"health_interval": 7, "peripherals": [{**PAD, "counter": "7"}]})

    assert change.published == [node]
    version = state(server, node).version
    eventually(lambda: applied(runner) == version)
    assert runner.call(lambda: runner.agent.drivers[0].config.counter) == "7"
    assert runner.call(lambda: runner.agent.settings.health_interval) == 7
    eventually(lambda: state(server, node).in_sync)
    assert state(server, node).reported_state == "applied"


def test_a_config_the_agent_refuses_leaves_it_on_its_previous_one_and_the_reason_reaches_the_server(
        server, new_node, running_agent):
    node = new_node()
    place(server.engine, node, "bd-" + node)
    runner = running_agent(node, batch_size=20, live_slots=5)  # its own file: batches of 20
    eventually(lambda: runner.agent.link.connected)
    set_layer(server, "node", node, {"peripherals": [{**PAD, "counter": "3"}]})
    first = state(server, node).version
    eventually(lambda: state(server, node).in_sync)
    before = runner.call(lambda: runner.agent.drivers[0])

    # The server checks live_slots against its default batch size (100) and accepts it;
    # this node's own file says 20.
    set_layer(server, "node", node, {"live_slots": 50, "peripherals": [{**PAD, "counter": "4"}]})

    second = state(server, node)
    eventually(lambda: state(server, node).reported_state == "rejected")
    reported = state(server, node)
    assert reported.reported_version == second.version != first
    assert "live_slots must be below batch_size" in reported.reported_reason
    assert not reported.in_sync
    assert applied(runner) == first
    assert runner.call(lambda: runner.agent.drivers[0]) is before  # still counter 3
    assert runner.call(lambda: runner.agent.settings.live_slots) == 5
    with server.engine.connect() as conn:
        assert [s.node for s in config_store.drift(conn, limit=10, offset=0)[1]] == [node]


def test_only_the_driver_whose_section_changed_is_restarted(server, new_node, running_agent):
    node = new_node()
    place(server.engine, node, None)
    pads = [{**PAD, "id": "pad-1", "counter": "1"}, {**PAD, "id": "pad-2", "counter": "2"}]
    runner = running_agent(node, peripherals=pads)
    eventually(lambda: runner.agent.link.connected)
    pad_1, pad_2 = runner.call(lambda: list(runner.agent.drivers))

    set_layer(server, "node", node, {"peripherals": [pads[0], {**pads[1], "counter": "9"}]})

    eventually(lambda: applied(runner) == state(server, node).version)
    now_1, now_2 = runner.call(lambda: list(runner.agent.drivers))
    assert now_1 is pad_1  # untouched, still running
    assert now_2 is not pad_2 and now_2.config.counter == "9"
    tasks = runner.call(lambda: sorted(t.get_name() for t in __import__("asyncio").all_tasks()
                                       if t.get_name().startswith("driver ")))
    assert tasks == ["driver pad-1", "driver pad-2"]  # the old pad-2 stopped, the new one runs


def test_after_a_restart_without_a_broker_the_agent_starts_from_its_last_good_config(
        server, new_node, running_agent):
    node = new_node()
    place(server.engine, node, None)
    runner = running_agent(node)
    eventually(lambda: runner.agent.link.connected)
    set_layer(server, "node", node, {"health_interval": 9, "peripherals": [{**PAD, "counter": "8"}]})
    version = state(server, node).version
    eventually(lambda: applied(runner) == version)
    runner.stop()

    offline = running_agent(node, port=free_port())  # nothing listens there

    assert applied(offline) == version
    assert offline.call(lambda: offline.agent.link.connected) is False
    assert offline.call(lambda: offline.agent.drivers[0].config.counter) == "8"
    assert offline.call(lambda: offline.agent.settings.health_interval) == 9


def test_a_node_offline_during_two_changes_gets_the_newest_when_it_returns(server, new_node,
                                                                          running_agent):
    node = new_node()
    place(server.engine, node, "site-" + node)
    set_layer(server, "site", "site-" + node, {"peripherals": [{**PAD, "counter": "1"}]})
    older = state(server, node)
    set_layer(server, "node", node, {"peripherals": [{**PAD, "counter": "2"}]})
    newest = state(server, node)
    assert newest.version != older.version and newest.issued_at > older.issued_at

    runner = running_agent(node)

    eventually(lambda: state(server, node).in_sync)
    assert state(server, node).reported_version == newest.version
    assert applied(runner) == newest.version
    assert runner.call(lambda: runner.agent.drivers[0].config.counter) == "2"


def test_the_server_publishes_retained_so_a_later_subscriber_gets_only_the_newest(server, new_node,
                                                                                 probe):
    from rpfleet.protocol import Channel, decode_as, topic
    from rpfleet.protocol.messages import ConfigDesired

    node = new_node()
    place(server.engine, node, None)
    set_layer(server, "node", node, {"health_interval": 11})
    set_layer(server, "node", node, {"health_interval": 12})
    newest = state(server, node)

    watcher = probe(node)  # as the node, which comes back now
    watcher.subscribe(topic(node, Channel.CONFIG_DESIRED))
    got = watcher.next()

    assert got.retain
    message = decode_as(ConfigDesired, got.payload)
    assert (message.version, message.config) == (newest.version, {"health_interval": 12})
    assert message.issued_at == newest.issued_at
    with pytest.raises(queue.Empty):  # the older one is gone from the broker
        watcher.next(timeout=0.5)


def test_a_report_the_agent_could_not_send_is_sent_when_it_connects(server, new_node, probe,
                                                                     running_agent, agent_settings):
    from agent.desired_config import Applied, LastGood
    from provisioning.mosquitto import SERVER_USERNAME
    from rpfleet.protocol import Channel, topic
    from rpfleet.protocol.messages import ConfigReported

    node = new_node()
    place(server.engine, node, None)
    set_layer(server, "node", node, {"health_interval": 13})
    desired = state(server, node)
    # The node applied it, then lost its connection before the report went out; meanwhile
    # the retained message was cleared, so only the kept report can tell the server.
    probe(SERVER_USERNAME).publish(topic(node, Channel.CONFIG_DESIRED), b"", retain=True)
    kept = LastGood(agent_settings(node).state_dir)
    kept.save(Applied(desired.version, desired.issued_at, desired.desired))
    kept.owe(ConfigReported(node=node, version=desired.version, state="applied"))
    assert state(server, node).reported_version is None

    running_agent(node)

    eventually(lambda: state(server, node).in_sync)
