"""The fleet server's settings: ``RPFLEET_SERVER_*`` environment variables or a TOML file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVER_USERNAME = "_fleet-server"


class ServerBroker(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = SERVER_USERNAME
    password_file: Path | None = None
    client_id: str = Field(default="rpfleet-server", description="One per server worker.")
    shared_group: str | None = Field(
        default=None, description="MQTT 5 shared-subscription group, to run several workers."
    )


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RPFLEET_SERVER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    db_url: str = "sqlite:///fleet.sqlite"
    broker: ServerBroker = ServerBroker()
