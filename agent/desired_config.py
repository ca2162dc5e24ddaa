"""The node's side of configuration as desired state.

The server sends a desired config (`ConfigDesired`: the managed keys of
`rpfleet.node_config.NodeConfig`, a content-hash version, ``issued_at``)
retained on ``down/config``. `judge` decides, without I/O, what the agent does
with one: apply it, refuse it (with the reason, reported to the server), or
drop it as older than the one applied (never go back). The keys it holds
replace the node's own file's values; keys it does not hold keep them.

`LastGood` keeps, in the state directory, the config applied last (written
to a temporary file, synced, then renamed over the old one, so a power cut
leaves the old or the new one, never half of one) and the report owed to the
server (re-sent on every connection until a newer one replaces it). The agent
starts from the last good config after a restart, with or without a broker.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.settings import AgentSettings
from rpfleet.node_config import (
    MANAGED_FIELDS, NodeConfig, config_version, format_path, problems, short_version,
)
from rpfleet.protocol.messages import ConfigDesired, ConfigReported

log = logging.getLogger(__name__)

REASON_LIMIT = 2000
"""A report's reason field holds this much (rpfleet.protocol.messages.Text)."""


@dataclass(frozen=True)
class Applied:
    """A desired config the agent applied: as received."""

    version: str
    issued_at: datetime
    config: dict[str, Any]

    def message(self) -> ConfigDesired:
        return ConfigDesired(version=self.version, config=self.config, issued_at=self.issued_at)


@dataclass(frozen=True)
class Apply:
    settings: AgentSettings


@dataclass(frozen=True)
class Refuse:
    reason: str


@dataclass(frozen=True)
class Older:
    """Issued before the config applied: dropped, not reported."""


@dataclass(frozen=True)
class Same:
    """The version applied already (a retained message again, after a reconnect)."""


def overlay(local: AgentSettings, config: dict[str, Any]) -> AgentSettings:
    """``local`` with the keys of ``config`` in place of its own, checked as one
    `NodeConfig` (so a desired ``live_slots`` is checked against a local ``batch_size``).
    Raises ValidationError naming each bad field."""
    merged = {name: getattr(local, name) for name in MANAGED_FIELDS}
    merged.update(config)
    checked = NodeConfig.model_validate(merged)
    return local.model_copy(update={name: getattr(checked, name) for name in MANAGED_FIELDS})


def judge(local: AgentSettings, desired: ConfigDesired, applied: Applied | None) -> Apply | Refuse | Older | Same:
    """What to do with ``desired`` on a node whose own file says ``local`` and which
    applied ``applied`` last (None: only its own file)."""
    if applied is not None:
        if desired.version == applied.version:
            return Same()
        if desired.issued_at < applied.issued_at:
            return Older()
    if config_version(desired.config) != desired.version:
        return Refuse("the version is not the sha256 of the config's canonical JSON")
    try:
        return Apply(overlay(local, desired.config))
    except ValidationError as exc:
        reason = "; ".join(f"{format_path(path)}: {why}" for path, why in problems(exc))
        return Refuse(reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…")


class LastGood:
    """The applied config and the owed report, under ``state_dir/config/``."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "config"
        self.applied_path = self.dir / "applied.json"
        self.report_path = self.dir / "report.json"

    def load(self) -> Applied | None:
        """The config applied last, or None (none yet, or unreadable: said in the log)."""
        try:
            data = json.loads(self.applied_path.read_text(encoding="utf-8"))
            message = ConfigDesired.model_validate(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("last good config %s is unreadable (%s); starting from the config file",
                      self.applied_path, exc)
            return None
        return Applied(message.version, message.issued_at, message.config)

    def save(self, applied: Applied) -> None:
        """Replace the applied config atomically (raises OSError if the disk refuses)."""
        self._write(self.applied_path, applied.message().to_json())

    def owe(self, report: ConfigReported) -> None:
        """Keep ``report`` until a newer one replaces it (best effort: a full disk only logs)."""
        try:
            self._write(self.report_path, report.to_json())
        except OSError as exc:
            log.warning("could not keep the config report on disk: %s", exc)

    def owed(self) -> ConfigReported | None:
        try:
            return ConfigReported.model_validate_json(self.report_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("dropping unreadable config report %s: %s", self.report_path, exc)
            return None

    def _write(self, path: Path, data: bytes | str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        new = path.with_suffix(".new")
        with open(new, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(new, path)
        directory = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def starting_settings(local: AgentSettings, last_good: LastGood) -> tuple[AgentSettings, Applied | None]:
    """The settings to start with: the node's own file with the last good config on top,
    if it still fits the file (else the file alone, said in the log)."""
    applied = last_good.load()
    if applied is None:
        return local, None
    try:
        settings = overlay(local, applied.config)
    except ValidationError as exc:
        log.error("last good config %s no longer fits the config file (%s); starting from the "
                  "file alone", short_version(applied.version), exc)
        return local, None
    log.info("starting from the last good config %s (issued %s)", short_version(applied.version),
             applied.issued_at.isoformat())
    return settings, applied
