"""Fixtures of the device bridge tests: a real bridge (uvicorn on the test's event loop, a real
loopback socket) and a check, after every test, that its token never reached a log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import httpx
import pytest

from agent.bridge.server import DeviceBridge
from agent.bridge.settings import BridgeSettings
from agent.local_events import LocalEvents

ORIGIN = "https://xephang.hcc.hanoi.gov.vn"
"""The queue system's page origin: the one allowed in these tests."""
RIGHT = "(this boot's token)"


@dataclass
class Running:
    bridge: DeviceBridge
    events: LocalEvents

    @property
    def url(self) -> str:
        return self.bridge.url

    @property
    def ws_url(self) -> str:
        return self.bridge.url.replace("http://", "ws://") + "/v1/events"

    @property
    def token(self) -> str:
        return self.bridge.token

    def client(self, *, origin: str | None = ORIGIN, token: str | None = RIGHT,
               **headers: str) -> httpx.AsyncClient:
        """An HTTP client calling as a page of ``origin`` with ``token`` (default: this boot's;
        None: no Authorization header)."""
        sent = {"origin": origin} if origin is not None else {}
        if token is not None:
            sent["authorization"] = "Bearer " + (self.token if token is RIGHT else token)
        return httpx.AsyncClient(base_url=self.url, headers={**sent, **headers}, timeout=20)


@pytest.fixture
def tokens() -> list[str]:
    return []


PAGE_SIDE = ("websockets.client", "httpx", "httpcore")
"""The loggers of the tests' own clients, which play the page (it holds the token)."""


@pytest.fixture(autouse=True)
def no_token_in_logs(caplog: pytest.LogCaptureFixture, tokens: list[str]):
    """Every record the node's side (the bridge, uvicorn, the agent, at DEBUG) wrote during the
    test is checked for every token a bridge of the test held."""
    caplog.set_level(logging.DEBUG)
    yield
    records = [r for phase in ("setup", "call", "teardown") for r in caplog.get_records(phase)
               if not r.name.startswith(PAGE_SIDE)]
    assert records or not tokens, "no log record captured: the check would prove nothing"
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
    for token in tokens:
        assert token not in text, "a bridge token reached the logs"


@pytest.fixture
async def start_bridge(tokens: list[str]) -> AsyncIterator[Callable[..., Running]]:
    """Starts bridges on free loopback ports of the test's loop; stops them after the test."""
    tasks: list[asyncio.Task] = []

    def start(drivers: list | None = None, *, origins: tuple[str, ...] = (ORIGIN,),
              sample_page: bool = False, peripherals=None) -> Running:
        drivers = drivers or []
        events = LocalEvents()
        bridge = DeviceBridge(
            BridgeSettings(port=0, allowed_origins=origins, sample_page=sample_page),
            drivers, events, peripherals or (lambda: [d.health() for d in drivers]),
        )
        bridge.bind()
        tokens.append(bridge.token)
        tasks.append(asyncio.create_task(bridge.serve()))
        return Running(bridge, events)

    yield start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(check: Callable[[], object], timeout: float = 10) -> object:
    """Poll ``check`` on the loop until it is truthy; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(0.02)
