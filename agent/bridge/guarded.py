"""The ASGI layer in front of the bridge's routes: every request passes the `Guard` first.

Refusals are answered with a JSON `BridgeError` and logged with the peer, the method, the path
and the origin: never the query string or any header value that could hold the token.
"""

from __future__ import annotations

import json
import logging
from typing import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.bridge.guard import Guard, Refusal

log = logging.getLogger("agent.bridge")

PUBLIC_PREFIX = "/kiosk"
"""The sample page's files: static and public, so no token (the page gets it injected)."""


def error_body(error: str, message: str, **extra: object) -> bytes:
    fields = {"error": error, "message": message, **{k: v for k, v in extra.items() if v}}
    return json.dumps(fields, ensure_ascii=False).encode()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _is_public(path: str) -> bool:
    """The sample page's files, and ``/``, which sends a browser to them."""
    return path in ("/", PUBLIC_PREFIX) or path.startswith(PUBLIC_PREFIX + "/")


def for_log(value: str | None, limit: int = 200) -> str:
    """A header value as a log shows it: cut short (the log's formatter escapes it)."""
    return "-" if value is None else value[:limit]


class Guarded:
    """Wraps the routes: refuses what the guard refuses, answers CORS preflights, and adds the
    CORS headers to responses for allowed cross-origin pages."""

    def __init__(self, app: ASGIApp, guard: Guard, *, public: bool) -> None:
        self.app = app
        self.guard = guard
        self.public = public
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # The bridge takes nothing from a query string; a page that puts its token there anyway
        # must not see it logged (uvicorn logs a WebSocket's path with its query).
        scope["query_string"] = b""
        headers = _headers(scope)
        peer = scope["client"][0] if scope.get("client") else None
        origin = self.guard.origin(headers)
        method = scope.get("method", "WEBSOCKET")
        path = scope["path"]
        if scope["type"] == "websocket":
            refusal = self.guard.check_page(peer, headers)  # the token comes in the first message
        elif self.public and _is_public(path) and method in ("GET", "HEAD"):
            refusal = self.guard.check_place(peer, headers)
        elif method == "OPTIONS":
            refusal = self.guard.check_page(peer, headers)
            if refusal is None:
                await _answer(send, 204, b"", self.guard.preflight_headers(str(origin), headers))
                return
        else:
            refusal = self.guard.check_call(peer, headers)
        if refusal is not None:
            self.refused += 1
            log.warning("bridge refused %s %s from %s (origin %s): %s",
                        method, path, for_log(peer), for_log(origin), refusal.error)
            await self._refuse(scope, send, refusal, origin)
            return
        cors = self.guard.cors_headers(origin) if scope["type"] == "http" else {}
        await self.app(scope, receive, _adding(send, cors) if cors else send)

    async def _refuse(self, scope: Scope, send: Send, refusal: Refusal, origin: str | None) -> None:
        body = error_body(refusal.error, refusal.message)
        # An allowed page may read why (a stale token after the node restarted, say).
        headers = self.guard.cors_headers(origin)
        if scope["type"] == "websocket":
            await send({"type": "websocket.http.response.start", "status": refusal.status,
                        "headers": _raw({**headers, "content-type": "application/json"},
                                        len(body))})
            await send({"type": "websocket.http.response.body", "body": body})
            return
        await _answer(send, refusal.status, body, {**headers, "content-type": "application/json"})


async def _answer(send: Send, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": _raw(headers, len(body))})
    await send({"type": "http.response.body", "body": body})


def _raw(headers: Mapping[str, str], length: int) -> list[tuple[bytes, bytes]]:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return raw + [(b"content-length", str(length).encode())]


def _adding(send: Send, extra: Mapping[str, str]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *(
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())]}
        await send(message)

    return sending
