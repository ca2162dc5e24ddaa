"""Config layers, pure: fleet -> region -> site -> node, deep-merged into one desired
config per node and checked with the agent's own model (`rpfleet.node_config.NodeConfig`).

Merge rules (`merge`), later layer over earlier:

- a scalar (or a value of another type) of the later layer wins;
- tables merge key by key, recursively;
- lists are replaced whole, except ``peripherals``: a list of tables keyed
  by ``id``, merged by id (an id both layers name is merged as a table, new
  ids are appended in the later layer's order), because a site that sets a
  pad's counter should not have to repeat the pad's other keys. A peripheral
  table ``{id = "pad-2", removed = true}`` takes that peripheral out; the
  marker is dropped from the finished config (`finish`).

A layer names its place as ``scope:target`` (``fleet`` has the one target
``-``). `check` validates the merged config and blames each problem on the
last layer that set the offending field (else on the node itself).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fleet_server.registry import is_id
from rpfleet.node_config import MANAGED_FIELDS, NodeConfig, config_version, problems
from rpfleet.protocol.topics import TopicError, check_node_id

SCOPES = ("fleet", "region", "site", "node")
FLEET_TARGET = "-"
KEYED_LISTS = {("peripherals",): "id"}
"""Lists of tables merged by a key instead of replaced; by path from the top."""
REMOVED = "removed"


@dataclass(frozen=True)
class Layer:
    scope: str
    target: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.scope}:{self.target}" if self.scope != "fleet" else "fleet"


@dataclass(frozen=True)
class Problem:
    path: str
    why: str
    layer: str | None
    """The layer that set the field (``site:bd``), or None: the merged config as a whole."""
    node: str | None = None

    def __str__(self) -> str:
        where = f"node {self.node}" if self.node else ""
        if self.layer:
            where = f"{where}, layer {self.layer}" if where else f"layer {self.layer}"
        return f"{where}: {self.path}: {self.why}"


class ConfigInvalid(ValueError):
    """A layer change that would make some desired config invalid; nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class LayerError(ValueError):
    """A layer's scope, target or body is malformed (before any merging)."""


def check_place(scope: str, target: str) -> None:
    """Raise LayerError unless ``scope:target`` can hold a layer."""
    if scope not in SCOPES:
        raise LayerError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "fleet" and target != FLEET_TARGET:
        raise LayerError(f"the fleet layer's target is {FLEET_TARGET!r}, not {target!r}")
    if scope == "node":
        try:
            check_node_id(target)
        except TopicError as exc:
            raise LayerError(f"a node layer needs a node id as its target: {exc}") from None
    elif scope != "fleet" and not is_id(target):
        raise LayerError(f"a {scope} layer needs the {scope} id as its target, not {target!r}")


def check_shape(body: Any) -> dict[str, Any]:
    """The body of a layer if it can be merged: a table of managed keys whose
    ``peripherals`` is a list of tables each with a string ``id``; else LayerError."""
    if not isinstance(body, dict):
        raise LayerError("a layer is a table of config keys")
    unknown = sorted(set(body) - MANAGED_FIELDS)
    if unknown:
        raise LayerError(f"{', '.join(unknown)}: not a key a layer may set (only "
                         f"{', '.join(sorted(MANAGED_FIELDS))}; identity, broker and state_dir "
                         "stay in the node's own file)")
    peripherals = body.get("peripherals", [])
    if not isinstance(peripherals, list):
        raise LayerError("peripherals: a list of tables, each with an id")
    ids = []
    for n, peripheral in enumerate(peripherals):
        if not isinstance(peripheral, dict) or not isinstance(peripheral.get("id"), str):
            raise LayerError(f"peripherals.{n}: a table with a string id")
        if peripheral.get(REMOVED) not in (None, True):
            raise LayerError(f"peripherals.{n}.{REMOVED}: only true (takes the peripheral out)")
        ids.append(peripheral["id"])
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise LayerError(f"peripherals: ids repeated in one layer: {', '.join(repeated)}")
    return body


def merge(base: Any, over: Any, path: tuple = ()) -> Any:
    """``over`` merged onto ``base`` (see the module's rules); neither is changed."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = merge(base[key], value, path + (key,)) if key in base else copy.deepcopy(value)
        return merged
    key = KEYED_LISTS.get(path)
    if key is not None and isinstance(base, list) and isinstance(over, list):
        return _merge_keyed(base, over, key, path)
    return copy.deepcopy(over)


def _merge_keyed(base: list, over: list, key: str, path: tuple) -> list:
    merged = [copy.deepcopy(item) for item in base]
    where = {item.get(key): n for n, item in enumerate(merged) if isinstance(item, dict)}
    for item in over:
        n = where.get(item.get(key)) if isinstance(item, dict) else None
        if n is None:
            where[item.get(key) if isinstance(item, dict) else None] = len(merged)
            merged.append(copy.deepcopy(item))
        elif item.get(REMOVED) or merged[n].get(REMOVED):
            merged[n] = copy.deepcopy(item)  # a removal, or a fresh start after one
        else:
            merged[n] = merge(merged[n], item, path + (n,))
    return merged


def finish(config: dict[str, Any]) -> dict[str, Any]:
    """The merged config as sent: removed peripherals taken out."""
    if "peripherals" not in config:
        return config
    kept = [p for p in config["peripherals"] if not (isinstance(p, dict) and p.get(REMOVED))]
    return {**config, "peripherals": kept}


def merge_layers(layers: list[Layer]) -> dict[str, Any]:
    """The finished merge of ``layers``, in order (fleet first, node last)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer.body)
    return finish(merged)


def ordered(layers: list[Layer]) -> list[Layer]:
    """``layers`` from the most general (fleet) to the most specific (node)."""
    return sorted(layers, key=lambda layer: SCOPES.index(layer.scope))


def desired(layers: list[Layer], node: str | None = None) -> tuple[dict[str, Any], str]:
    """The desired config of a node with these layers, and its version; ConfigInvalid
    (each problem naming its field path and the layer, or ``node``) if the agent would
    refuse it."""
    chain = ordered(layers)
    config = merge_layers(chain)
    try:
        NodeConfig.model_validate(config)
    except ValidationError as exc:
        raise ConfigInvalid([
            Problem(_display(config, path), why, _blame(chain, config, path), node)
            for path, why in problems(exc)
        ]) from None
    return config, config_version(config)


def _keyed_path(config: dict[str, Any], path: tuple) -> tuple:
    """``path`` with a peripheral's list index replaced by its id, as layers name it."""
    if len(path) >= 2 and path[0] == "peripherals" and isinstance(path[1], int):
        peripherals = config.get("peripherals", [])
        if 0 <= path[1] < len(peripherals) and isinstance(peripherals[path[1]], dict):
            return ("peripherals", ("id", peripherals[path[1]].get("id"))) + path[2:]
    return path


def _display(config: dict[str, Any], path: tuple) -> str:
    parts = []
    for part in _keyed_path(config, path):
        if isinstance(part, tuple):
            parts[-1] += f"[{part[1]}]"
        else:
            parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _blame(chain: list[Layer], config: dict[str, Any], path: tuple) -> str | None:
    """The last layer that set ``path``, else the last that set its longest set prefix."""
    keyed = _keyed_path(config, path)
    for length in range(len(keyed), 0, -1):
        for layer in reversed(chain):
            if _sets(layer.body, keyed[:length]):
                return layer.name
    return None


def _sets(body: Any, path: tuple) -> bool:
    for part in path:
        if isinstance(part, tuple):  # ("id", value) in a keyed list
            found = [item for item in body if isinstance(item, dict) and item.get(part[0]) == part[1]] \
                if isinstance(body, list) else []
            if not found:
                return False
            body = found[0]
        elif isinstance(body, dict) and part in body:
            body = body[part]
        elif isinstance(body, list) and isinstance(part, int) and 0 <= part < len(body):
            body = body[part]
        else:
            return False
    return True
