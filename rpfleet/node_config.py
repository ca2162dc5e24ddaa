"""The remotely managed part of a node's config, shared by the agent and the server.

`NodeConfig` is what the fleet's config layers may set for a node: its
peripherals (the devices' own pure pydantic config models, through
`devices.registry`) and the agent's tunables. Never the node's identity,
broker, state directory or credentials: those stay in the node's local file.

The server validates a desired config with `NodeConfig` before it sends it;
the agent validates it again, with the same model, before it applies it
(`agent.settings.AgentSettings` has the same fields, by inheritance).

A desired config is a version-stamped dict: `config_version` is the sha256 of
its canonical JSON (sorted keys, no spaces, UTF-8), ``sha256:<hex>``, so the same content has
the same version wherever it is computed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devices.registry import KINDS, PeripheralConfig
from rpfleet.durations import Duration
from rpfleet.maintenance import MaintenanceWindow


class NodeConfig(BaseModel):
    """The fields a config layer may set; every one has the agent's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    health_interval: Duration = Field(
        default=30, ge=1, le=30,
        description="At most 30s: the server shows a node offline after 40s without a word.",
    )
    ack_timeout: Duration = Field(default=15, ge=0.5)
    batch_size: int = Field(default=100, ge=1, le=500)
    live_slots: int = Field(
        default=10, ge=1, le=100,
        description="While a backlog drains, each batch keeps this many places for new events.",
    )
    overflow_limit: int = Field(
        default=10_000, ge=100,
        description="Events held in memory while the disk refuses writes; beyond it taps are refused.",
    )
    peripherals: list[PeripheralConfig] = []  # type: ignore[valid-type]
    maintenance_window: MaintenanceWindow | None = Field(
        default=None,
        description="(1.5) When the site accepts software updates, in Hanoi time (a site layer "
        "sets it); absent: the node file's [update].window.",
    )

    @field_validator("peripherals")
    @classmethod
    def _unique_ids(cls, peripherals: list) -> list:
        ids = [p.id for p in peripherals]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"peripheral ids must be unique; repeated: {', '.join(repeated)}")
        return peripherals

    @model_validator(mode="after")
    def _room_for_live_events(self):
        if self.live_slots >= self.batch_size and self.batch_size > 1:
            raise ValueError("live_slots must be below batch_size")
        return self


MANAGED_FIELDS = frozenset(NodeConfig.model_fields)
"""The top-level keys a desired config may hold."""


def canonical_json(config: dict[str, Any]) -> bytes:
    """``config`` as canonical JSON: sorted keys, no insignificant spaces, UTF-8."""
    return json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def config_version(config: dict[str, Any]) -> str:
    """The content hash of ``config``: ``sha256:`` and the 64 hex digits of the sha256 of
    its canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(config)).hexdigest()


def error_path(loc: tuple) -> tuple:
    """A pydantic error location without the kind tag pydantic puts into peripheral paths
    (``peripherals.0.rating-pad.scale`` -> ``peripherals.0.scale``)."""
    path = list(loc)
    if len(path) >= 3 and path[0] == "peripherals" and isinstance(path[1], int) and path[2] in KINDS:
        del path[2]
    return tuple(path)


def problems(exc: ValidationError) -> list[tuple[tuple, str]]:
    """Each error of ``exc`` as (field path, what is wrong), the bad value named where it helps."""
    found = []
    for err in exc.errors():
        path = error_path(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            why = "unknown key"
            if len(path) == 1:
                why += " (a layer may set only " + ", ".join(sorted(MANAGED_FIELDS)) + ")"
        elif err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            path += ("kind",)
            why = "required, one of: " + ", ".join(sorted(KINDS))
            if err["type"] == "union_tag_invalid":
                why = f"{err['input'].get('kind')!r} is not a peripheral kind; " + why[10:]
        elif err["type"] == "value_error":
            why = err["msg"].removeprefix("Value error, ")
        elif err["type"] == "missing":
            why = "required but missing"
        else:
            why = f"{_short(err['input'])}: {err['msg']}"
        found.append((path, why))
    return found


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_path(path: tuple) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def short_version(version: str) -> str:
    """The first 12 hex digits of a version, for logs and tables."""
    return version.removeprefix("sha256:")[:12]
