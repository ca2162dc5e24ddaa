"""Node kinds and the peripherals a new node of each kind starts with.

The shipped table is `fleet_server/data/node-kinds.toml`; an operator can point
``enrollment.kinds_file`` at their own (for example when the tender changes the
keypad model)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

NodeKinds = dict[str, dict[str, Any]]


@cache
def load_node_kinds(path: Path | None = None) -> NodeKinds:
    """The kinds in ``path``, or the shipped ones; raises ValueError naming a bad file."""
    if path is None:
        text = resources.files("fleet_server.data").joinpath("node-kinds.toml").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        kinds = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path or 'node-kinds.toml'}: {exc}") from None
    for name, kind in kinds.items():
        if not isinstance(kind, dict) or not isinstance(kind.get("peripherals"), list):
            raise ValueError(f"{path or 'node-kinds.toml'}: kind {name!r} needs a peripherals list")
    return kinds


def initial_peripherals(kinds: NodeKinds, kind: str, counter: str) -> list[dict[str, Any]]:
    """The peripherals of a new ``kind`` node at ``counter``; KeyError for an unknown kind."""
    return [_fill(p, counter) for p in kinds[kind]["peripherals"]]


def _fill(value: Any, counter: str) -> Any:
    if isinstance(value, str):
        return value.replace("{counter}", counter)
    if isinstance(value, dict):
        return {k: _fill(v, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, counter) for v in value]
    return value
