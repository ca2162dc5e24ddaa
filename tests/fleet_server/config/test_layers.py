"""fleet_server.config_layers: merging layers and blaming the layer at fault (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_server.config_layers import (
    ConfigInvalid, Layer, LayerError, check_place, check_shape, desired, merge, merge_layers,
)
from rpfleet.node_config import NodeConfig, config_version

PAD = {"kind": "rating-pad", "id": "pad-1", "source": "fake", "counter": "1"}

keys = st.sampled_from(["a", "b", "c", "d"])
scalars = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=8,
)
tables = st.dictionaries(keys, values, max_size=4)


# ---- merge rules ---------------------------------------------------------------------


@given(tables, tables)
def test_the_later_layer_wins_every_scalar_and_list_it_sets(base, over):
    merged = merge(base, over)

    for key, value in over.items():
        if not (isinstance(value, dict) and isinstance(base.get(key), dict)):
            assert merged[key] == value  # scalars, lists and new tables: the later layer's


@given(tables, tables)
def test_tables_merge_keeping_what_only_the_earlier_layer_sets(base, over):
    merged = merge(base, over)

    assert set(merged) == set(base) | set(over)
    for key in set(base) - set(over):
        assert merged[key] == base[key]
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            assert merged[key] == merge(base[key], value)


@given(tables, tables)
def test_merging_changes_neither_layer(base, over):
    before = (repr(base), repr(over))
    merge(base, over)
    assert (repr(base), repr(over)) == before


@given(tables)
def test_an_empty_layer_changes_nothing_and_a_layer_over_itself_is_itself(table):
    assert merge(table, {}) == table
    assert merge({}, table) == table
    assert merge(table, table) == table


pads = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["p1", "p2", "p3", "p4"])},
        optional={"counter": st.sampled_from(["1", "2"]), "scale": st.integers(3, 5)},
    ),
    max_size=4, unique_by=lambda p: p["id"],
)


@given(pads, pads)
def test_peripherals_merge_by_id(base, over):
    merged = merge({"peripherals": base}, {"peripherals": over})["peripherals"]

    over_ids = [p["id"] for p in over]
    assert [p["id"] for p in merged] == [p["id"] for p in base] + [
        i for i in over_ids if i not in {p["id"] for p in base}]
    for pad in merged:
        earlier = next((p for p in base if p["id"] == pad["id"]), {})
        later = next((p for p in over if p["id"] == pad["id"]), {})
        assert pad == {**earlier, **later}


def test_other_lists_are_replaced_whole():
    assert merge({"keys": [1, 2, 3]}, {"keys": [4]}) == {"keys": [4]}
    assert merge({"peripherals": [{"id": "a", "keys": {"X": 1}}]},
                 {"peripherals": [{"id": "a", "keys": {"Y": 2}}]}) == {
        "peripherals": [{"id": "a", "keys": {"X": 1, "Y": 2}}]}


def test_a_site_sets_one_key_of_a_pad_the_fleet_defines():
    config = merge_layers([
        Layer("fleet", "-", {"health_interval": 20, "peripherals": [PAD]}),
        Layer("site", "bd", {"peripherals": [{"id": "pad-1", "counter": "7"}]}),
        Layer("node", "n1", {"health_interval": 10}),
    ])

    assert config == {"health_interval": 10, "peripherals": [{**PAD, "counter": "7"}]}


def test_a_later_layer_takes_a_peripheral_out_and_another_puts_it_back():
    fleet = Layer("fleet", "-", {"peripherals": [PAD, {**PAD, "id": "pad-2"}]})
    site = Layer("site", "bd", {"peripherals": [{"id": "pad-1", "removed": True}]})

    assert merge_layers([fleet, site]) == {"peripherals": [{**PAD, "id": "pad-2"}]}
    back = Layer("node", "n1", {"peripherals": [{**PAD, "counter": "9"}]})
    assert merge_layers([fleet, site, back])["peripherals"] == [
        {**PAD, "counter": "9"}, {**PAD, "id": "pad-2"}]


# ---- version --------------------------------------------------------------------------


def test_the_version_is_the_content_hash_whatever_the_key_order():
    a = desired([Layer("fleet", "-", {"health_interval": 20, "batch_size": 50})])
    b = desired([Layer("fleet", "-", {"batch_size": 50, "health_interval": 20})])

    assert a == b
    assert a[1] == config_version({"batch_size": 50, "health_interval": 20})
    assert a[1].startswith("sha256:") and len(a[1]) == 71 and a[1] != desired([Layer("fleet", "-", {"batch_size": 51})])[1]


# ---- validation names the path and the layer -----------------------------------------


def test_a_bad_value_is_blamed_on_the_layer_that_set_it():
    layers = [
        Layer("fleet", "-", {"peripherals": [PAD]}),
        Layer("site", "bd-q1", {"peripherals": [{"id": "pad-1", "scale": 9}]}),
        Layer("node", "n1", {"health_interval": 10}),
    ]

    with pytest.raises(ConfigInvalid, match=r"node n1, layer site:bd-q1: peripherals\[pad-1\]\.scale: 9"):
        desired(layers, "n1")


def test_a_missing_key_is_blamed_on_the_last_layer_that_shaped_that_peripheral():
    layers = [
        Layer("fleet", "-", {"peripherals": [{"id": "pad-1", "source": "fake"}]}),
        Layer("region", "hn", {"peripherals": [{"id": "pad-1", "counter": "2"}]}),
    ]

    with pytest.raises(ConfigInvalid) as refused:
        desired(layers)

    [problem] = refused.value.problems
    assert (problem.path, problem.layer) == ("peripherals[pad-1].kind", "region:hn")
    assert "rating-pad" in problem.why  # the kinds it may be


def test_a_rule_across_keys_is_blamed_on_the_merged_config():
    layers = [Layer("fleet", "-", {"batch_size": 10}), Layer("node", "n1", {"live_slots": 10})]

    with pytest.raises(ConfigInvalid) as refused:
        desired(layers, "n1")

    [problem] = refused.value.problems
    assert problem.layer is None and problem.node == "n1"
    assert "live_slots must be below batch_size" in str(refused.value)


def test_what_the_server_accepts_the_agent_model_accepts():
    config, _ = desired([Layer("fleet", "-", {"peripherals": [PAD], "health_interval": "15s"})])
    assert NodeConfig.model_validate(config).health_interval == 15


@pytest.mark.parametrize("body, message", [
    ({"node_id": "x"}, "node_id: not a key a layer may set"),
    ({"broker": {"host": "evil"}}, "broker: not a key"),
    ({"peripherals": {"id": "a"}}, "a list of tables"),
    ({"peripherals": [{"kind": "rating-pad"}]}, r"peripherals\.0: a table with a string id"),
    ({"peripherals": [{"id": "a"}, {"id": "a"}]}, "ids repeated in one layer: a"),
    ({"peripherals": [{"id": "a", "removed": False}]}, "removed: only true"),
    ([1, 2], "a table of config keys"),
], ids=["identity", "broker", "not-a-list", "no-id", "repeated-id", "removed-false", "not-a-table"])
def test_a_malformed_layer_is_refused_before_merging(body, message):
    with pytest.raises(LayerError, match=message):
        check_shape(body)


@pytest.mark.parametrize("scope, target, message", [
    ("city", "hn", "scope 'city' is not one of"),
    ("fleet", "hn", "fleet layer's target is '-'"),
    ("site", "-", "needs the site id"),
    ("region", "Hà Nội", "needs the region id as its target, not 'Hà Nội'"),
    ("node", "bd/q1", "needs a node id as its target: node id 'bd/q1' contains '/'"),
], ids=["scope", "fleet-target", "site-target", "region-target", "node-target"])
def test_a_layer_must_name_a_real_place(scope, target, message):
    with pytest.raises(LayerError, match=message):
        check_place(scope, target)
