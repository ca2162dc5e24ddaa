"""The bridge's WebSocket (``/v1/events``): scans and status changes, pushed to the pages.

The page's first message is its token (`Hello`); nothing is sent before it is checked. Each
page has a bounded queue of its own: a page that stops reading loses its oldest messages (and
is told how many, `MissedNotice`), and never slows down the agent or the other pages.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Callable

from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from agent.bridge.guard import Guard
from agent.bridge.guarded import for_log
from agent.bridge.models import ErrorNotice, Hello, MissedNotice, Ready, ScanNotice, Status, \
    StatusNotice
from agent.local_events import LocalEvent, LocalEvents, Missed
from rpfleet.protocol.messages import Scan

log = logging.getLogger("agent.bridge")

HELLO_TIMEOUT_S = 10.0
BACKLOG = 100
"""Messages kept for a page that is not reading; beyond it the oldest are dropped."""
CLOSE_BAD_HELLO = 4400
CLOSE_TOKEN = 4401


def scan_notice(event: LocalEvent) -> ScanNotice:
    scan = event.detail
    assert isinstance(scan, Scan)
    return ScanNotice(at=event.at, scanner=scan.scanner, code=scan.code, code_kind=scan.code_kind,
                      fields=scan.fields, symbology=scan.symbology, counter=scan.counter,
                      partial=scan.partial, redacted=scan.redacted)


def _text(message: BaseModel) -> str:
    return message.model_dump_json(exclude_none=True)


class Page:
    """One connected page's outgoing messages, bounded (drop-oldest)."""

    def __init__(self, backlog: int) -> None:
        self._messages: deque[str] = deque()
        self._backlog = backlog
        self._ready = asyncio.Event()
        self.missed = 0

    def push(self, text: str) -> None:
        if len(self._messages) >= self._backlog:
            self._messages.popleft()
            self.missed += 1
        self._messages.append(text)
        self._ready.set()

    async def next(self) -> str:
        while not self._messages:
            self._ready.clear()
            await self._ready.wait()
        if self.missed:
            missed, self.missed = self.missed, 0
            return _text(MissedNotice(count=missed))
        return self._messages.popleft()


class PageSockets:
    """The pages connected to ``/v1/events``; `status_may_have_changed` pushes a new status."""

    def __init__(self, guard: Guard, events: LocalEvents, status: Callable[[], Status], *,
                 backlog: int = BACKLOG, hello_timeout: float = HELLO_TIMEOUT_S) -> None:
        self.guard = guard
        self.events = events
        self.status = status
        self.pages: set[Page] = set()
        self._backlog = backlog
        self._hello_timeout = hello_timeout
        self._last_status: str | None = None

    def status_may_have_changed(self) -> None:
        """Compare the status with the last one pushed; push it to every page if it changed."""
        if self.pages:  # otherwise each page gets the status of the moment in its `Ready`
            self._refresh()

    def _refresh(self) -> Status:
        status = self.status()
        compared = _comparable(status)
        if compared != self._last_status:
            self._last_status = compared
            text = _text(StatusNotice(status=status))
            for page in self.pages:
                page.push(text)
        return status

    async def watch_status(self, every: float) -> None:
        """Until cancelled: notice status changes even when nothing else asks."""
        while True:
            try:
                self.status_may_have_changed()
            except Exception:  # noqa: BLE001 - a driver's status failing must not end the watch
                log.exception("bridge: could not read the peripherals' status")
            await asyncio.sleep(every)

    async def serve(self, socket: WebSocket) -> None:
        """One page: its hello, then what happens until it goes away."""
        await socket.accept()
        origin = self.guard.origin(socket.headers)
        if not await self._greeted(socket, origin):
            return
        page = Page(self._backlog)
        scans = self.events.subscribe(lambda detail: detail.kind == "scan", backlog=self._backlog)
        page.push(_text(Ready(status=self._refresh())))  # the status later changes are from
        self.pages.add(page)
        log.info("bridge: page from %s listening for scans (%d page(s))", for_log(origin),
                 len(self.pages))
        tasks = [asyncio.create_task(self._forward(scans, page)),
                 asyncio.create_task(self._send(socket, page)),
                 asyncio.create_task(self._until_gone(socket))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            scans.close()
            self.pages.discard(page)
            log.info("bridge: page from %s gone (%d page(s))", for_log(origin), len(self.pages))

    async def _greeted(self, socket: WebSocket, origin: str | None) -> bool:
        """Read and check the hello; on a bad one, say why, close and log (without it)."""
        try:
            text = await asyncio.wait_for(socket.receive_text(), self._hello_timeout)
            hello = Hello.model_validate(json.loads(text))
        except WebSocketDisconnect:
            return False
        except (asyncio.TimeoutError, ValueError, ValidationError, KeyError):
            # ValueError covers bad JSON; the text itself may be the token: never logged.
            await self._close(socket, origin, CLOSE_BAD_HELLO, "hello-expected",
                              'send {"type": "hello", "token": "..."} first')
            return False
        refusal = self.guard.check_token(hello.token)
        if refusal is not None:
            await self._close(socket, origin, CLOSE_TOKEN, refusal.error, refusal.message)
            return False
        return True

    async def _close(self, socket: WebSocket, origin: str | None, code: int, error: str,
                     message: str) -> None:
        log.warning("bridge refused WEBSOCKET /v1/events from %s (origin %s): %s",
                    socket.client.host if socket.client else "-", for_log(origin), error)
        try:
            await socket.send_text(_text(ErrorNotice(error=error, message=message)))
            await socket.close(code, error)
        except Exception:  # noqa: BLE001 - the page may already be gone
            pass

    @staticmethod
    async def _forward(scans, page: Page) -> None:
        async for item in scans:
            if isinstance(item, Missed):
                page.missed += item.count
            else:
                page.push(_text(scan_notice(item)))

    @staticmethod
    async def _send(socket: WebSocket, page: Page) -> None:
        while True:
            await socket.send_text(await page.next())

    @staticmethod
    async def _until_gone(socket: WebSocket) -> None:
        """Read (and ignore) what the page sends, until it disconnects."""
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return


def _comparable(status: Status) -> str:
    """The status without the time of each printer's last poll (it changes at every poll)."""
    data = status.model_dump(mode="json")
    for printer in data["printers"]:
        printer["status"].pop("checked_at", None)
    return json.dumps(data, sort_keys=True)
