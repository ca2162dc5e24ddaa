"""Topic names of the wire contract v1 (DESIGN §3).

Every node owns the subtree ``rp/v1/nodes/{node}/`` split into ``up/`` (node to
server) and ``down/`` (server to node), so that a broker ACL is two lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "rp/v1/nodes"

NODE_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
"""Lower-case letters, digits and ``.``, ``_``, ``-`` inside; 1 to 64 characters.

The same string is the MQTT username, client id and certificate CN of a node, so
it must be safe in a topic, a file name and an ACL line alike.
"""

_NODE_ID = re.compile(NODE_ID_PATTERN)


class TopicError(ValueError):
    """A topic or node id that is not part of the contract."""


class Channel(StrEnum):
    STATUS = "up/status"
    HEALTH = "up/health"
    EVENTS = "up/events"
    CONFIG_REPORTED = "up/config"
    CMD_RESULT = "up/cmd-result"
    UPDATE_PROGRESS = "up/update"
    HANDOVER = "up/handover"
    ACK = "down/ack"
    CONFIG_DESIRED = "down/config"
    CMD = "down/cmd"
    UPDATE_DESIRED = "down/update"
    ANNOUNCE = "down/announce"

    @property
    def is_up(self) -> bool:
        return self.value.startswith("up/")


@dataclass(frozen=True)
class NodeTopic:
    node: str
    channel: Channel

    def __str__(self) -> str:
        return topic(self.node, self.channel)


def check_node_id(node: str) -> str:
    """Return ``node`` if it is a valid node id, else raise TopicError naming why."""
    if not isinstance(node, str) or not node:
        raise TopicError("node id is empty")
    for forbidden in ("+", "#", "/"):
        if forbidden in node:
            raise TopicError(f"node id {node!r} contains {forbidden!r}")
    if not _NODE_ID.fullmatch(node):
        raise TopicError(
            f"node id {node!r} is not 1-64 of a-z 0-9 . _ - "
            "starting and ending with a letter or digit"
        )
    return node


def topic(node: str, channel: Channel) -> str:
    """The concrete topic of ``channel`` for ``node``; the node id is checked."""
    return f"{PREFIX}/{check_node_id(node)}/{Channel(channel).value}"


def parse(name: str) -> NodeTopic:
    """Split a concrete topic into node id and channel, or raise TopicError."""
    if not name.startswith(PREFIX + "/"):
        raise TopicError(f"topic {name!r} is not under {PREFIX}/")
    rest = name[len(PREFIX) + 1 :]
    node, sep, channel = rest.partition("/")
    if not sep:
        raise TopicError(f"topic {name!r} has no channel after the node id")
    check_node_id(node)
    try:
        return NodeTopic(node, Channel(channel))
    except ValueError:
        raise TopicError(f"topic {name!r}: unknown channel {channel!r}") from None


def node_filter(node: str, direction: str) -> str:
    """Subscription filter for one node's ``up`` or ``down`` subtree."""
    if direction not in ("up", "down"):
        raise TopicError(f"direction must be 'up' or 'down', not {direction!r}")
    return f"{PREFIX}/{check_node_id(node)}/{direction}/#"


_SHARE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def fleet_filter(channel: Channel, shared_group: str | None = None) -> str:
    """Subscription filter for ``channel`` of every node, optionally shared (MQTT 5)."""
    return _shared(f"{PREFIX}/+/{Channel(channel).value}", shared_group)


def fleet_up_filter(shared_group: str | None = None) -> str:
    """Subscription filter for everything every node sends, optionally shared (MQTT 5)."""
    return _shared(f"{PREFIX}/+/up/#", shared_group)


def _shared(name: str, group: str | None) -> str:
    if group is None:
        return name
    if not _SHARE_NAME.fullmatch(group):
        raise TopicError(f"shared group {group!r} is not 1-64 of A-Z a-z 0-9 _ -")
    return f"$share/{group}/{name}"
