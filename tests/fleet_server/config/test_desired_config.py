"""fleet_server.desired_config and config_store on both backends: a change is checked
against every node it reaches, stored with its version and logged, or refused whole;
reports arrive through ingest and drift lists who is not on the latest."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fleet_server import config_store, desired_config
from fleet_server.config_layers import ConfigInvalid
from fleet_server.ingest import Ingest
from fleet_server.schema import config_changes, config_layers
from fleet_server.store import utc_now
from rpfleet.node_config import config_version
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import ConfigReported
from tests.fleet_server.config.conftest import PAD, place


@pytest.fixture
def fleet(engine):
    """Two regions, three sites, five nodes (one retired)."""
    place(engine, "bd-1", "bd", "hn-west")
    place(engine, "bd-2", "bd", "hn-west")
    place(engine, "hk-1", "hk", "hn-west")
    place(engine, "lb-1", "lb", "hn-east")
    place(engine, "old-1", "lb", "hn-east", state="retired")
    return engine


def states(engine) -> dict[str, config_store.NodeConfigState]:
    with engine.connect() as conn:
        return {s.node: s for s in config_store.all_states(conn)}


def test_a_fleet_layer_reaches_every_node_but_the_retired(fleet):
    change = desired_config.set_layer(fleet, "fleet", "-", {"health_interval": 20},
                                      token_name="ops-an", link=None)

    assert change.changed == ["bd-1", "bd-2", "hk-1", "lb-1"]
    assert change.published == [] and change.unpublished == change.changed  # no broker here
    found = states(fleet)
    assert sorted(found) == change.changed
    assert {s.version for s in found.values()} == {config_version({"health_interval": 20})}
    assert all(s.desired == {"health_interval": 20} and not s.in_sync for s in found.values())
    with fleet.connect() as conn:
        [logged] = conn.execute(sa.select(config_changes)).all()
    assert (logged.token_name, logged.scope, logged.target, logged.action) == ("ops-an", "fleet", "-", "set")
    assert logged.body == {"health_interval": 20} and logged.nodes == change.changed


def test_region_site_and_node_layers_reach_only_their_nodes_and_merge_in_order(fleet):
    desired_config.set_layer(fleet, "fleet", "-", {"health_interval": 20, "peripherals": [PAD]},
                             token_name="t", link=None)
    region = desired_config.set_layer(fleet, "region", "hn-west", {"health_interval": 15},
                                      token_name="t", link=None)
    site = desired_config.set_layer(fleet, "site", "bd", {"peripherals": [{"id": "pad-1", "counter": "4"}]},
                                    token_name="t", link=None)
    node = desired_config.set_layer(fleet, "node", "bd-2", {"health_interval": 5}, token_name="t",
                                    link=None)

    assert (region.changed, site.changed, node.changed) == (["bd-1", "bd-2", "hk-1"], ["bd-1", "bd-2"], ["bd-2"])
    found = states(fleet)
    assert found["bd-2"].desired == {"health_interval": 5, "peripherals": [{**PAD, "counter": "4"}]}
    assert found["bd-1"].desired == {"health_interval": 15, "peripherals": [{**PAD, "counter": "4"}]}
    assert found["hk-1"].desired == {"health_interval": 15, "peripherals": [PAD]}
    assert found["lb-1"].desired == {"health_interval": 20, "peripherals": [PAD]}
    with fleet.connect() as conn:
        assert [l.name for l in config_store.layers_of_node(conn, "bd-2")] == [
            "fleet", "region:hn-west", "site:bd", "node:bd-2"]


def test_setting_the_same_layer_again_changes_no_node(fleet):
    desired_config.set_layer(fleet, "site", "bd", {"batch_size": 50}, token_name="t", link=None)
    before = states(fleet)

    again = desired_config.set_layer(fleet, "site", "bd", {"batch_size": 50}, token_name="t", link=None)

    assert again.changed == []
    assert states(fleet) == before  # same version, same issued_at


def test_a_change_that_breaks_one_node_is_refused_whole_naming_node_and_layer(fleet):
    desired_config.set_layer(fleet, "fleet", "-", {"peripherals": [PAD]}, token_name="t", link=None)
    desired_config.set_layer(fleet, "node", "hk-1", {"peripherals": [{"id": "pad-1", "scale": 3}]},
                             token_name="t", link=None)
    before = states(fleet)

    with pytest.raises(ConfigInvalid) as refused:  # keys 4 and 5 do not fit hk-1's 3-button pad
        desired_config.set_layer(fleet, "region", "hn-west",
                                 {"peripherals": [{"id": "pad-1", "keys": {"KEY_KP1": 1, "KEY_KP5": 5}}]},
                                 token_name="t", link=None)

    [problem] = refused.value.problems
    assert (problem.node, problem.path) == ("hk-1", "peripherals[pad-1]")
    assert problem.layer == "node:hk-1" and "outside 1..3" in problem.why
    assert states(fleet) == before
    with fleet.connect() as conn:
        assert config_store.get_layer(conn, "region", "hn-west") is None
        assert conn.execute(sa.select(sa.func.count()).select_from(config_changes)).scalar() == 2


def test_a_bad_layer_is_refused_even_where_no_node_is_placed_yet(fleet):
    with pytest.raises(ConfigInvalid, match=r"layer site:empty: health_interval: 90"):
        desired_config.set_layer(fleet, "site", "empty", {"health_interval": 90}, token_name="t",
                                 link=None)
    with fleet.connect() as conn:
        assert conn.execute(sa.select(config_layers)).all() == []


def test_deleting_a_layer_gives_its_nodes_their_config_without_it(fleet):
    desired_config.set_layer(fleet, "fleet", "-", {"health_interval": 20}, token_name="t", link=None)
    desired_config.set_layer(fleet, "site", "lb", {"health_interval": 9}, token_name="t", link=None)

    change = desired_config.delete_layer(fleet, "site", "lb", token_name="ops-binh", link=None)

    assert change.changed == ["lb-1"]
    assert states(fleet)["lb-1"].desired == {"health_interval": 20}
    assert desired_config.delete_layer(fleet, "site", "lb", token_name="t", link=None) is None
    with fleet.connect() as conn:
        last = conn.execute(sa.select(config_changes).order_by(config_changes.c.id.desc())).first()
    assert (last.action, last.token_name, last.body) == ("delete", "ops-binh", None)


def test_a_node_placed_after_the_change_gets_its_config_when_reconciled(fleet):
    desired_config.set_layer(fleet, "site", "hk", {"health_interval": 12}, token_name="t", link=None)
    place(fleet, "hk-2", "hk")

    changed, published = desired_config.reconcile(fleet, None)

    assert changed == ["hk-2"] and published == []
    assert states(fleet)["hk-2"].desired == {"health_interval": 12}


def report(node: str, version: str, state: str, reason: str | None = None) -> tuple:
    message = ConfigReported(node=node, version=version, state=state, reason=reason)
    return (topic(node, Channel.CONFIG_REPORTED), message.to_json(), utc_now())


def test_reports_arrive_through_ingest_and_drift_lists_who_is_not_on_the_latest(fleet):
    desired_config.set_layer(fleet, "fleet", "-", {"health_interval": 20}, token_name="t", link=None)
    latest = states(fleet)["bd-1"].version
    ingest = Ingest(fleet, publish_ack=lambda node, ack: None)

    ingest.handle([
        report("bd-1", latest, "applied"),
        report("bd-2", latest, "rejected", "peripherals.0.device: no such file"),
        report("hk-1", "0" * 64, "applied"),  # an older version
    ])

    found = states(fleet)
    assert found["bd-1"].in_sync and found["bd-1"].reported_at is not None
    assert (found["bd-2"].reported_state, found["bd-2"].reported_reason) == (
        "rejected", "peripherals.0.device: no such file")
    with fleet.connect() as conn:
        total, page = config_store.drift(conn, limit=2, offset=0)
        _, rest = config_store.drift(conn, limit=2, offset=2)
    assert total == 3
    assert [s.node for s in page + rest] == ["bd-2", "hk-1", "lb-1"]
    assert not any(s.in_sync for s in page + rest)
