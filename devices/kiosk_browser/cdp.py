"""A small Chrome DevTools Protocol client over one WebSocket (the browser's endpoint).

Pages are reached through flat sessions (``Target.attachToTarget`` with ``flatten``): every
command and event carries its ``sessionId``. Only what the supervisor needs: commands with a
timeout, and events handed to listeners.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any, Callable

import websockets

log = logging.getLogger(__name__)

Listener = Callable[[str, dict, str | None], None]
"""Called with (method, params, session id) for every event."""


class CdpError(Exception):
    """The browser answered a command with an error."""


class CdpClosed(ConnectionError):
    """The connection to the browser is gone (it exited, or crashed)."""


class CdpConnection:
    """One WebSocket to the browser. `connect` opens it; `close` is safe to call twice."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._listeners: list[Listener] = []
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def connect(self, timeout: float = 10) -> None:
        self._ws = await asyncio.wait_for(
            websockets.connect(self.url, max_size=64 * 1024 * 1024, ping_interval=None),
            timeout)
        self._reader = asyncio.create_task(self._read(), name=f"cdp {self.url}")

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def send(self, method: str, params: dict | None = None, *,
                   session: str | None = None, timeout: float = 10) -> dict:
        """The result of ``method``; raises CdpError for an error answer, TimeoutError when
        none comes within ``timeout``, CdpClosed when the browser is gone."""
        if self._ws is None or self.closed.is_set():
            raise CdpClosed(f"not connected to {self.url}")
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        answer = asyncio.get_running_loop().create_future()
        self._waiting[ident] = answer
        try:
            try:
                await self._ws.send(json.dumps(message))
            except websockets.ConnectionClosed as exc:
                raise CdpClosed(f"the browser closed the connection: {exc}") from exc
            return await asyncio.wait_for(answer, timeout)
        finally:
            self._waiting.pop(ident, None)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass
        self._fail_waiting()

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    answer = self._waiting.get(message["id"])
                    if answer is None or answer.done():
                        continue  # it timed out; the late answer is of no use
                    if "error" in message:
                        error = message["error"]
                        answer.set_exception(CdpError(f"{error.get('message')} ({error.get('code')})"))
                    else:
                        answer.set_result(message.get("result", {}))
                elif "method" in message:
                    for listener in list(self._listeners):
                        try:
                            listener(message["method"], message.get("params", {}),
                                     message.get("sessionId"))
                        except Exception:  # noqa: BLE001 - one bad listener must not stop the rest
                            log.exception("CDP listener failed on %s", message["method"])
        except websockets.ConnectionClosed:
            pass
        finally:
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        self.closed.set()
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(CdpClosed("the browser connection closed"))
