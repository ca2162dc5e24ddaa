"""Runs a KioskBrowser on its own event loop in a thread, as the agent would, and lets a test
look at its page through a DevTools connection of its own."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from devices.kiosk_browser.cdp import CdpConnection
from devices.kiosk_browser.config import KioskBrowserConfig
from devices.kiosk_browser.driver import KioskBrowser
from devices.kiosk_browser.fake import FakeScreen, FakeSystemActions


class RunningKiosk:
    def __init__(self, config: KioskBrowserConfig, state_dir: Path, *,
                 page_globals: dict | None = None) -> None:
        self.events: list = []
        self.offset = timedelta(0)
        """Added to the real time: the driver's clock, turned by the test (forward only)."""
        self.system = FakeSystemActions()
        self.screen = FakeScreen()
        self.driver = KioskBrowser(config, self._record, system=self.system,
                                   screen_power=self.screen, clock=self._now, power_check_s=0.1)
        self.driver.state_dir = state_dir
        self.driver.page_globals = page_globals or {}
        self.driver.display_restart_wait_s = 0.1
        self.driver.reboot_wait_s = 0.1
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def _now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    async def _record(self, detail, at: datetime) -> None:
        self.events.append(detail)

    def start(self) -> "RunningKiosk":
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> asyncio.Task:
        return asyncio.get_running_loop().create_task(self.driver.run())

    def stop(self) -> None:
        async def cancel() -> None:
            assert self._task is not None
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def call(self, coroutine, timeout: float = 30):
        """Run ``coroutine`` on the driver's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def page(self, method: str, params: dict | None = None, timeout: float = 5) -> dict:
        """Send one DevTools command to the kiosk's page on a connection of the test's own."""
        return self.call(self._page(method, params, timeout), timeout + 10)

    async def _page(self, method: str, params: dict | None, timeout: float) -> dict:
        assert self.driver.devtools_url, "the browser is not running"
        cdp = CdpConnection(self.driver.devtools_url)
        await cdp.connect()
        try:
            targets = (await cdp.send("Target.getTargets"))["targetInfos"]
            target = next(t["targetId"] for t in targets if t["type"] == "page")
            session = (await cdp.send("Target.attachToTarget",
                                      {"targetId": target, "flatten": True}))["sessionId"]
            return await cdp.send(method, params, session=session, timeout=timeout)
        finally:
            await cdp.close()

    def evaluate(self, expression: str):
        """The value of ``expression`` in the page, or None when the page does not answer."""
        try:
            answer = self.page("Runtime.evaluate",
                               {"expression": f"JSON.stringify({expression})",
                                "returnByValue": True}, timeout=2)
            return json.loads(answer["result"]["value"])
        except Exception:  # noqa: BLE001 - a page between documents; the caller polls
            return None

    def href(self) -> str | None:
        return self.evaluate("location.href")

    def repairs(self, since: int = 0) -> list:
        return [e for e in self.events[since:] if e.kind == "browser-repair"]

    def alarms(self, since: int = 0) -> list:
        return [e for e in self.events[since:] if e.kind == "alarm"]
