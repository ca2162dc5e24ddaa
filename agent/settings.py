"""The node's local settings: one TOML file plus ``RPFLEET_*`` environment variables.

Nested keys come from the environment joined by ``__``, for example
``RPFLEET_BROKER__HOST``. Every model is frozen and refuses unknown keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agent.bridge.settings import BridgeSettings
from agent.update.settings import UpdateSettings
from rpfleet.durations import Duration
from rpfleet.node_config import NodeConfig
from rpfleet.protocol.messages import NodeId

DEFAULT_CONFIG = Path("/etc/rpfleet/agent.toml")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsSettings(Frozen):
    """Mutual TLS to the broker: the fleet CA, and this node's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class BrokerSettings(Frozen):
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["3.1.1", "5"] = Field(
        default="5", description="'3.1.1' for brokers without MQTT 5; nodes use nothing 3.1.1 lacks."
    )
    username: str | None = Field(default=None, description="Defaults to the node id.")
    password_file: Path | None = Field(
        default=None, description="File holding the broker password (mode 0600)."
    )
    tls: TlsSettings | None = None
    keepalive: Duration = Field(
        default=30, ge=5, le=30,
        description="At most 30s: the broker declares a silent node gone after 1.5 keepalives (45s).",
    )
    reconnect_min: Duration = Field(default=1, ge=0.1)
    reconnect_max: Duration = Field(default=120, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "BrokerSettings":
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must not be below reconnect_min")
        return self


class AgentSettings(BaseSettings, NodeConfig):
    """The node's own settings plus the remotely managed ones (`rpfleet.node_config.NodeConfig`:
    peripherals and tunables, with their validators), which a desired config may replace."""

    model_config = SettingsConfigDict(
        env_prefix="RPFLEET_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    node_id: NodeId
    broker: BrokerSettings = BrokerSettings()
    state_dir: Path = Path("/var/lib/rpfleet")
    log_format: Literal["logfmt", "text"] = "logfmt"  # read once, when logging starts
    enrollment_url: str | None = Field(
        default=None, pattern=r"^https://",
        description="The fleet's enrollment endpoint; with broker TLS, the certificate is renewed there "
        "before it expires.",
    )
    bridge: BridgeSettings | None = Field(
        default=None,
        description="The local device bridge for kiosk pages (docs/device-bridge.md); off when "
        "absent.",
    )
    update: UpdateSettings = Field(
        default=UpdateSettings(),
        description="Signed software updates (agent/update/README.md): releases, trusted keys, "
        "default maintenance window, timeouts.",
    )

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite"


def load_settings(path: Path = DEFAULT_CONFIG) -> AgentSettings:
    """Settings from ``path`` (TOML) overridden by ``RPFLEET_*`` variables.

    Raises FileNotFoundError, or pydantic.ValidationError naming each bad field.
    """

    class FromFile(AgentSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path))

    if not path.is_file():
        raise FileNotFoundError(f"agent config {path} does not exist")
    return FromFile()
