"""The fleet server's settings: ``RPFLEET_SERVER_*`` environment variables or a TOML file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rpfleet.durations import Duration

SERVER_USERNAME = "_fleet-server"


class ServerTls(BaseModel):
    """Mutual TLS to the broker: the fleet CA, and the server's certificate and key.

    The broker takes the certificate's CN (``_fleet-server``) as the username.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca_file: Path
    cert_file: Path
    key_file: Path


class ServerBroker(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = SERVER_USERNAME
    password_file: Path | None = None
    tls: ServerTls | None = Field(
        default=None, description="Certificates for the broker's TLS listener; unset: plain TCP."
    )
    client_id: str = Field(default="rpfleet-server", description="One per server worker.")
    shared_group: str | None = Field(
        default=None, description="MQTT 5 shared-subscription group, to run several workers."
    )


class PresenceSettings(BaseModel):
    """When a silent node is shown offline; the reasoning is in `fleet_server.presence`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: Duration = Field(
        default=40, gt=0,
        description="A node heard from longer ago than this is offline: the 30 s health "
        "interval plus 10 s of slack (reasoning in fleet_server/presence.py).",
    )
    sweep_every: Duration = Field(default=2, gt=0, description="How often silent nodes are looked for.")


class AlertSettings(BaseModel):
    """Thresholds of the alert rules (`fleet_server.alerts`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every: Duration = Field(default=15, gt=0, description="How often the rules are evaluated.")
    offline_after: Duration = Field(
        default=120, ge=0, description="Offline this long before it alerts (a reboot does not)."
    )
    outbox_pending_max: int = Field(
        default=500, ge=0, description="Unacked events above this, and growing, alert."
    )
    outbox_oldest_age_max: Duration = Field(
        default=600, gt=0, description="An unacked event older than this alerts."
    )
    disk_free_min_mb: float = Field(default=200, ge=0)
    disk_free_min_percent: float = Field(default=5, ge=0, le=100)
    clock_grace: Duration = Field(
        default=600, ge=0, description="Unsynchronised this long after boot before it alerts."
    )
    satisfaction_target: float = Field(default=0.90, gt=0, le=1, description="The city's target.")
    satisfaction_min_ratings: int = Field(
        default=10, ge=1, description="A site's day needs this many ratings before it can alert."
    )
    city_timezone: str = Field(default="Asia/Ho_Chi_Minh", description="Where a day starts.")

    @field_validator("city_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not a time zone (e.g. Asia/Ho_Chi_Minh)") from None
        return name


class EnrollmentSettings(BaseModel):
    """The enrollment endpoint (HTTPS) where new nodes trade a one-time code for a certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pki_dir: Path | None = Field(
        default=None, description="The fleet PKI made by `rpfleet provision init`; unset: no enrollment."
    )
    host: str = Field(default="0.0.0.0", description="Nodes must reach it: every interface by default.")
    port: int = Field(default=8443, ge=0, le=65535, description="0: no enrollment endpoint.")
    node_broker_host: str = Field(
        default="localhost", description="The broker address given to nodes (as they must dial it)."
    )
    node_broker_port: int = Field(default=8883, ge=1, le=65535)
    download_url: str | None = Field(
        default=None, pattern=r"^https://",
        description="Where nodes download release artifacts: this endpoint as they dial it; "
        "unset: https://<node_broker_host>:<port>.",
    )
    kinds_file: Path | None = Field(
        default=None, description="Node kinds and their first peripherals; unset: the shipped "
        "fleet_server/data/node-kinds.toml.",
    )
    code_ttl: Duration = Field(default=24 * 3600, gt=0, description="How long a code stays usable.")
    failure_window: Duration = Field(default=600, gt=0, description="Failed attempts count this long.")
    max_failures: int = Field(
        default=10, ge=1, description="Failed attempts from one address in the window before it is refused."
    )
    fleet_max_failures: int = Field(
        default=200, ge=1, description="Failed attempts from all addresses in the window before every "
        "attempt is refused (a guessing campaign from many addresses).",
    )

    @property
    def artifact_base_url(self) -> str:
        return self.download_url or f"https://{self.node_broker_host}:{self.port}"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RPFLEET_SERVER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    db_url: str = "sqlite:///fleet.sqlite"
    broker: ServerBroker = ServerBroker()
    http_host: str = Field(
        default="127.0.0.1", description="Address of the HTTP API; loopback unless a proxy fronts it."
    )
    http_port: int = Field(default=8080, ge=0, le=65535, description="0: no HTTP API.")
    presence: PresenceSettings = PresenceSettings()
    alerts: AlertSettings = AlertSettings()
    enrollment: EnrollmentSettings = EnrollmentSettings()
