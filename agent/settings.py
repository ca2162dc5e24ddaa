"""The node's local settings: one TOML file plus ``RPFLEET_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from devices.registry import PeripheralConfig
from rpfleet.protocol.messages import NodeId

DEFAULT_CONFIG = Path("/etc/rpfleet/agent.toml")


class BrokerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1", description="Nodes use only what MQTT 3.1.1 has, so any broker works."
    )
    username: str | None = Field(default=None, description="Defaults to the node id.")
    password_file: Path | None = Field(
        default=None, description="File holding the broker password (mode 0600)."
    )
    keepalive_s: int = Field(default=30, ge=5, le=600)


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RPFLEET_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    node_id: NodeId
    broker: BrokerSettings = BrokerSettings()
    state_dir: Path = Path("/var/lib/rpfleet")
    health_interval_s: float = Field(default=30, gt=0)
    ack_timeout_s: float = Field(default=15, gt=0)
    batch_size: int = Field(default=100, ge=1, le=500)
    peripherals: list[PeripheralConfig] = []  # type: ignore[valid-type]

    @field_validator("peripherals")
    @classmethod
    def _unique_ids(cls, peripherals: list) -> list:
        ids = [p.id for p in peripherals]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"peripheral ids must be unique; repeated: {', '.join(repeated)}")
        return peripherals

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite"


def load_settings(path: Path = DEFAULT_CONFIG) -> AgentSettings:
    """Settings from ``path`` (TOML) overridden by ``RPFLEET_*`` variables.

    Raises pydantic.ValidationError naming the field path and the bad value.
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
