"""Topic names of the wire contract: building, parsing and refusing hostile node ids."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpfleet.protocol.topics import (
    NODE_ID_PATTERN,
    PREFIX,
    Channel,
    NodeTopic,
    TopicError,
    check_node_id,
    fleet_filter,
    fleet_up_filter,
    node_filter,
    parse,
    topic,
)

GOOD_IDS = {
    "single char": "a",
    "single digit": "7",
    "site and counter": "hn-badinh-c03",
    "dots and underscores": "ward_12.counter.3",
    "digits only": "0042",
    "64 chars": "a" * 64,
    "64 chars mixed": "n" + "0._-" * 15 + "abz",
}

# id -> (hostile node id, regex the TopicError message must match)
NOT_ALLOWED = "not 1-64 of a-z 0-9"
HOSTILE_IDS = {
    "plus wildcard": ("node+1", re.escape("contains '+'")),
    "hash wildcard": ("node#", re.escape("contains '#'")),
    "lone plus": ("+", re.escape("contains '+'")),
    "slash": ("site/counter", re.escape("contains '/'")),
    "empty": ("", "node id is empty"),
    "uppercase": ("Node-1", NOT_ALLOWED),
    "unicode": ("quầy-1", NOT_ALLOWED),
    "space inside": ("counter 1", NOT_ALLOWED),
    "leading space": (" node", NOT_ALLOWED),
    "65 chars": ("a" * 65, NOT_ALLOWED),
    "leading dash": ("-node", NOT_ALLOWED),
    "trailing dash": ("node-", NOT_ALLOWED),
    "leading dot": (".node", NOT_ALLOWED),
    "trailing underscore": ("node_", NOT_ALLOWED),
    "NUL": ("node\x00evil", NOT_ALLOWED),
    # Python's "$" also matches before a final newline; the id must match in full.
    "trailing newline": ("node-1\n", NOT_ALLOWED),
    "dollar (broker-internal topics)": ("$sys", NOT_ALLOWED),
}


@pytest.mark.parametrize("channel", list(Channel), ids=lambda c: c.name)
def test_topic_and_parse_round_trip_for_every_channel(channel: Channel) -> None:
    name = topic("hn-badinh-c03", channel)

    assert name == f"rp/v1/nodes/hn-badinh-c03/{channel.value}"
    assert parse(name) == NodeTopic("hn-badinh-c03", channel)
    assert str(parse(name)) == name


@pytest.mark.parametrize("channel", list(Channel), ids=lambda c: c.name)
def test_channel_direction_matches_its_subtree(channel: Channel) -> None:
    assert channel.is_up == (channel.value.split("/")[0] == "up")
    assert channel.value.split("/")[0] in ("up", "down")


@pytest.mark.parametrize("node", list(GOOD_IDS.values()), ids=list(GOOD_IDS))
def test_good_node_ids_are_accepted(node: str) -> None:
    assert check_node_id(node) == node
    assert parse(topic(node, Channel.EVENTS)).node == node


@pytest.mark.parametrize(
    ("node", "problem"), list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS)
)
def test_hostile_node_ids_are_refused_by_topic(node: str, problem: str) -> None:
    with pytest.raises(TopicError, match=problem):
        topic(node, Channel.EVENTS)


@pytest.mark.parametrize(
    ("node", "problem"), list(HOSTILE_IDS.values()), ids=list(HOSTILE_IDS)
)
def test_hostile_node_ids_are_refused_by_node_filter(node: str, problem: str) -> None:
    with pytest.raises(TopicError, match=problem):
        node_filter(node, "down")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("rp/v2/nodes/a/up/events", re.escape("is not under rp/v1/nodes/")),
        ("rp/v1/node/a/up/events", re.escape("is not under rp/v1/nodes/")),
        ("/rp/v1/nodes/a/up/events", re.escape("is not under rp/v1/nodes/")),
        ("rp/v1/nodes", re.escape("is not under rp/v1/nodes/")),
        ("rp/v1/nodes/a", "has no channel after the node id"),
        ("rp/v1/nodes/a/up/nonsense", re.escape("unknown channel 'up/nonsense'")),
        ("rp/v1/nodes/a/up", re.escape("unknown channel 'up'")),
        ("rp/v1/nodes/a/sideways/events", re.escape("unknown channel 'sideways/events'")),
        ("rp/v1/nodes/a/b/up/events", re.escape("unknown channel 'b/up/events'")),
        ("rp/v1/nodes/a/up/events/", re.escape("unknown channel 'up/events/'")),
        ("rp/v1/nodes/a/up/events/extra", re.escape("unknown channel 'up/events/extra'")),
        ("rp/v1/nodes//up/events", "node id is empty"),
        ("rp/v1/nodes/+/up/events", re.escape("contains '+'")),
        ("rp/v1/nodes/#/up/events", re.escape("contains '#'")),
        ("rp/v1/nodes/Node/up/events", NOT_ALLOWED),
        ("rp/v1/nodes/nút/up/events", NOT_ALLOWED),
        ("rp/v1/nodes/node\n/up/events", NOT_ALLOWED),
    ],
    ids=[
        "wrong version",
        "wrong prefix",
        "leading slash",
        "prefix only",
        "missing channel",
        "unknown channel",
        "half a channel",
        "unknown direction",
        "extra segment before channel",
        "trailing slash",
        "extra segment after channel",
        "empty node segment",
        "plus as node",
        "hash as node",
        "uppercase node",
        "unicode node",
        "node with trailing newline",
    ],
)
def test_parse_refuses_topics_outside_the_contract(name: str, problem: str) -> None:
    with pytest.raises(TopicError, match=problem):
        parse(name)


@pytest.mark.parametrize("channel", list(Channel), ids=lambda c: c.name)
def test_fleet_filter_without_shared_group(channel: Channel) -> None:
    assert fleet_filter(channel) == f"{PREFIX}/+/{channel.value}"


def test_fleet_filter_with_shared_group() -> None:
    assert fleet_filter(Channel.EVENTS, "ingest") == "$share/ingest/rp/v1/nodes/+/up/events"


def test_fleet_filter_accepts_channel_value_string() -> None:
    assert fleet_filter("up/health") == "rp/v1/nodes/+/up/health"  # type: ignore[arg-type]


def test_fleet_up_filter_covers_everything_nodes_send() -> None:
    assert fleet_up_filter() == "rp/v1/nodes/+/up/#"
    assert fleet_up_filter("ingest") == "$share/ingest/rp/v1/nodes/+/up/#"
    with pytest.raises(TopicError, match=re.escape("shared group 'a/b'")):
        fleet_up_filter("a/b")


# MQTT 5 forbids "/", "+" and "#" in a share name: "a/b" would subscribe group "a"
# to "b/rp/v1/...", i.e. silently to nothing.
@pytest.mark.parametrize(
    "group",
    ["a/b", "+", "#", "", "two words", "ingest\n"],
    ids=["slash", "plus", "hash", "empty", "space", "trailing newline"],
)
def test_fleet_filter_refuses_hostile_shared_group(group: str) -> None:
    with pytest.raises(TopicError, match=re.escape(f"shared group {group!r}")):
        fleet_filter(Channel.EVENTS, group)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_node_filter_covers_one_direction_of_one_node(direction: str) -> None:
    assert node_filter("hn-c1", direction) == f"rp/v1/nodes/hn-c1/{direction}/#"


@pytest.mark.parametrize(
    "direction", ["", "Up", "sideways", "up/", "#", "up/#"], ids=repr
)
def test_node_filter_refuses_bad_direction(direction: str) -> None:
    with pytest.raises(TopicError, match="direction must be 'up' or 'down'"):
        node_filter("hn-c1", direction)


@given(node=st.from_regex(NODE_ID_PATTERN, fullmatch=True), channel=st.sampled_from(Channel))
def test_any_allowed_node_id_round_trips(node: str, channel: Channel) -> None:
    name = topic(node, channel)

    assert parse(name) == NodeTopic(node, channel)
    # The node id is exactly one topic level: nothing in it can split or widen the topic.
    assert name.split("/") == [*PREFIX.split("/"), node, *channel.value.split("/")]
