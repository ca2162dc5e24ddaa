"""Decoding payloads into contract models, with a reason a counter can group by."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import ValidationError

from rpfleet.protocol.messages import MODEL_BY_CHANNEL, SCHEMA_MAJOR, Message
from rpfleet.protocol.topics import Channel
from rpfleet.validation import error_lines

MAX_PAYLOAD = 256 * 1024

M = TypeVar("M", bound=Message)


class PayloadError(ValueError):
    """A payload that is not a valid message; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_as(model: type[M], payload: bytes) -> M:
    """Parse ``payload`` as ``model`` or raise PayloadError.

    Reasons: ``too-large``, ``not-utf8``, ``not-json``, ``not-object``,
    ``wrong-version``, ``schema``.
    """
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError("too-large", f"{len(payload)} bytes > {MAX_PAYLOAD}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("not-utf8", str(exc)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError("not-json", str(exc)) from None
    if not isinstance(data, dict):
        raise PayloadError("not-object", f"top level is {type(data).__name__}")
    version = data.get("v")
    if version is None:
        raise PayloadError("schema", "v: the schema version is required (for example '1.0')")
    if isinstance(version, str) and version.split(".")[0] != str(SCHEMA_MAJOR):
        raise PayloadError("wrong-version", f"schema version {version!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError("schema", "; ".join(error_lines(exc, limit=3))) from None


def decode(channel: Channel, payload: bytes) -> Message:
    return decode_as(MODEL_BY_CHANNEL[channel], payload)
