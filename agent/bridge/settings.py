"""The `[bridge]` section of the agent's settings: where the device bridge listens and which
page origins may call it. Pure pydantic: the agent's settings import it without the web stack."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """True for an IP literal of the loopback network (127.0.0.0/8, ::1); names are not."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(value: str) -> str:
    """``value`` as a web origin (``scheme://host[:port]``, lower case, default port dropped).

    Raises ValueError naming the value when it is not an http(s) origin: a path, a query,
    user info, a wildcard or the opaque origin ``null`` are refused.
    """
    text = value.strip()
    if text in ("*", "null"):
        raise ValueError(f"{value!r} is not allowed: list each page's origin, e.g. "
                         "https://xephang.hcc.hanoi.gov.vn")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin: use http(s)://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username \
            or parts.password:
        raise ValueError(f"{value!r} is not an origin: no path, query or user, only "
                         "scheme://host[:port]")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} has a bad port") from exc
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


class BridgeSettings(BaseModel):
    """The local device bridge (docs/device-bridge.md): off unless this section is present."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(
        default="127.0.0.1",
        description="A loopback IP address (127.0.0.1 or ::1): the bridge never listens on "
        "another address.",
    )
    port: int = Field(
        default=DEFAULT_PORT, ge=0, le=65535,
        description="TCP port on the loopback address; 0 picks a free one (tests).",
    )
    allowed_origins: tuple[str, ...] = Field(
        default=(),
        description="The origins of the pages that may call the bridge, e.g. "
        "\"https://xephang.hcc.hanoi.gov.vn\"; every other page is refused.",
    )
    sample_page: bool = Field(
        default=False,
        description="Serve the sample kiosk page at /kiosk/ and allow the bridge's own origin "
        "(demo, tests, a kiosk without a queue system).",
    )

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        if not is_loopback(host):
            raise ValueError(f"{host!r} is not a loopback address: the device bridge listens "
                             "only on 127.0.0.1 or ::1")
        return host

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(origin_of(origin) for origin in origins))
