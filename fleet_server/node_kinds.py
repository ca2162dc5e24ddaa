"""Node kinds and the peripherals a new node of each kind starts with
(`fleet_server/data/node-kinds.toml`)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any


@cache
def node_kinds() -> dict[str, dict[str, Any]]:
    text = resources.files("fleet_server.data").joinpath("node-kinds.toml").read_text("utf-8")
    return tomllib.loads(text)


def initial_peripherals(kind: str, counter: str) -> list[dict[str, Any]]:
    """The peripherals of a new ``kind`` node at ``counter``; KeyError for an unknown kind."""
    return [_fill(p, counter) for p in node_kinds()[kind]["peripherals"]]


def _fill(value: Any, counter: str) -> Any:
    if isinstance(value, str):
        return value.replace("{counter}", counter)
    if isinstance(value, dict):
        return {k: _fill(v, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, counter) for v in value]
    return value
