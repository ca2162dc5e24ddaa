"""Who may call the device bridge: pure checks on what a request says about itself.

A call is let through only when it comes from the loopback network, names this bridge in its
``Host`` header (a page that rebinds its DNS name to 127.0.0.1 does not), comes from an
allow-listed page origin and carries this boot's token. A browser cannot forge ``Origin``,
``Sec-Fetch-Site`` or the token another page was given; local programs are kept out by the
token, which only the kiosk browser's pages receive.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Mapping

from agent.bridge.settings import is_loopback

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "authorization, content-type"
PREFLIGHT_MAX_AGE_S = 600


@dataclass(frozen=True)
class Refusal:
    """Why a call is refused: the HTTP status, a stable error code and a sentence for IT."""

    status: int
    error: str
    message: str


@dataclass(frozen=True)
class Guard:
    """The checks for one running bridge.

    ``hosts``: the ``Host`` header values that name this bridge (``127.0.0.1:8765``, ...);
    ``allowed_origins``: the configured page origins; ``own_origins``: the bridge's own
    origins, allowed when it serves the sample page; ``token``: this boot's token.
    """

    hosts: frozenset[str]
    allowed_origins: frozenset[str]
    own_origins: frozenset[str]
    token: str

    def origin(self, headers: Mapping[str, str]) -> str | None:
        """The calling page's origin: its ``Origin`` header; without one (a browser leaves it
        out of same-origin GETs) the bridge's own origin for a same-origin fetch."""
        origin = headers.get("origin")
        if origin is not None:
            return origin.strip().lower()
        if headers.get("sec-fetch-site") == "same-origin" and self.own_origins:
            host = headers.get("host", "").lower()
            return f"http://{host}" if f"http://{host}" in self.own_origins else None
        return None

    def allows_origin(self, origin: str | None) -> bool:
        return origin is not None and (origin in self.allowed_origins
                                       or origin in self.own_origins)

    def check_place(self, peer: str | None, headers: Mapping[str, str]) -> Refusal | None:
        """The peer is on this node and the Host header names this bridge (what the sample
        page's public files need)."""
        if peer is None or not is_loopback(peer):
            return Refusal(403, "peer-not-loopback",
                           "the device bridge answers only programs on this node")
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return Refusal(403, "host-not-allowed",
                           f"Host {host or '(none)'!r} is not this bridge; call it by its "
                           "loopback address")
        return None

    def check_page(self, peer: str | None, headers: Mapping[str, str]) -> Refusal | None:
        """Everything but the token: the place, then the page's origin.

        A CORS preflight and the start of a WebSocket (whose token comes in its first
        message) are checked with this alone.
        """
        refusal = self.check_place(peer, headers)
        if refusal is not None:
            return refusal
        origin = self.origin(headers)
        if origin is None:
            return Refusal(403, "origin-missing",
                           "the request names no page origin; only allow-listed pages may "
                           "call the bridge")
        if not self.allows_origin(origin):
            return Refusal(403, "origin-not-allowed",
                           f"origin {origin!r} is not in the bridge's allowed_origins")
        return None

    def check_token(self, presented: str | None) -> Refusal | None:
        """The token a page presented (None: it presented none)."""
        if not presented:
            return Refusal(401, "token-missing",
                           "no bridge token; send the page's token as 'Authorization: Bearer'")
        if not hmac.compare_digest(presented.encode(), self.token.encode()):
            return Refusal(401, "token-invalid",
                           "the bridge token is not this boot's token (the node may have "
                           "restarted: reload the page)")
        return None

    def check_call(self, peer: str | None, headers: Mapping[str, str]) -> Refusal | None:
        """An HTTP call: the page checks, then the ``Authorization: Bearer`` token."""
        return self.check_page(peer, headers) or self.check_token(bearer(headers))

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        """What a response to an allowed cross-origin page carries (nothing for the rest)."""
        if not self.allows_origin(origin):
            return {}
        return {"access-control-allow-origin": str(origin), "vary": "Origin"}

    def preflight_headers(self, origin: str, headers: Mapping[str, str]) -> dict[str, str]:
        """The answer to an allowed page's CORS preflight."""
        answer = {
            **self.cors_headers(origin),
            "access-control-allow-methods": ALLOWED_METHODS,
            "access-control-allow-headers": ALLOWED_HEADERS,
            "access-control-max-age": str(PREFLIGHT_MAX_AGE_S),
        }
        # Chrome's Private Network Access: a public page asks before calling 127.0.0.1.
        if headers.get("access-control-request-private-network") == "true":
            answer["access-control-allow-private-network"] = "true"
        return answer


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def names_for(host: str, port: int) -> tuple[frozenset[str], frozenset[str]]:
    """The Host header values and the page origins of a bridge listening on ``host:port``."""
    literal = f"[{host}]" if ":" in host else host
    hosts = {f"{literal}:{port}", f"localhost:{port}"}
    return frozenset(hosts), frozenset(f"http://{name}" for name in hosts)
