"""The wire contract v1: topics (`topics`), message models (`messages`),
payload decoding (`codec`) and JSON Schema export (`schema`)."""

from rpfleet.protocol.codec import PayloadError, decode, decode_as
from rpfleet.protocol.messages import SCHEMA_VERSION
from rpfleet.protocol.topics import Channel, NodeTopic, TopicError, check_node_id, parse, topic

__all__ = [
    "SCHEMA_VERSION",
    "Channel",
    "NodeTopic",
    "PayloadError",
    "TopicError",
    "check_node_id",
    "decode",
    "decode_as",
    "parse",
    "topic",
]
