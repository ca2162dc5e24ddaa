"""The KioskBrowser driver: starts Chromium in kiosk mode, watches its page through the
DevTools Protocol, repairs it up the ladder (repair.py), shows the local fallback page while
the page's server is away, takes screenshots and switches a dashboard's screen on and off."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

from devices.base import Record
from devices.kiosk_browser.cdp import CdpClosed, CdpConnection, CdpError
from devices.kiosk_browser.cec_adapter import ScreenPower
from devices.kiosk_browser.chromium_adapter import BrowserStartFailed, ChromiumProcess
from devices.kiosk_browser.config import KioskBrowserConfig
from devices.kiosk_browser.imaging import downscale, thumbnail
from devices.kiosk_browser.pages import UrlPolicy, origin
from devices.kiosk_browser.power import screen_on
from devices.kiosk_browser.repair import GiveUp, Repair, RepairHistory, RepairLadder, Trouble
from devices.kiosk_browser.screen import Frame, ScreenWatch
from devices.kiosk_browser.system_adapter import SystemActions
from rpfleet.protocol.messages import Alarm, BrowserRepair, EventDetail, PeripheralHealth

log = logging.getLogger(__name__)

FALLBACK_PAGE = Path(__file__).resolve().parent / "fallback" / "index.html"
START_RETRY_S = (1, 2, 5, 10, 30)
"""A browser that will not start (no display yet at boot) is tried again after these."""
SETTLE_HEARTBEATS = 5
"""A page well for this many heartbeats after a repair is mended."""
DISPLAY_RESTART_WAIT_S = 5.0
"""After asking for a display session restart, wait this long before starting the browser."""
REBOOT_WAIT_S = 120.0
"""After asking for a reboot: if the node is still up this much later, carry on."""
POWER_CHECK_S = 30.0

HEARTBEAT = "JSON.stringify([location.href, document.readyState])"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class KioskBrowser:
    """Serves one screen: its page kept up in Chromium, or the fallback text while the page's
    server does not answer.

    Before `run`, the agent may set ``page_globals`` (injected as ``window.rpfleet`` into
    every document on an allowed URL, before the page's scripts) and ``state_dir`` (the
    browser's profile and the repair history live in ``state_dir/kiosk-browser/<id>``).
    """

    kind = "kiosk-browser"

    def __init__(self, config: KioskBrowserConfig, record: Record, *, system: SystemActions,
                 screen_power: ScreenPower, clock: Callable[[], datetime] = utc_now,
                 power_check_s: float = POWER_CHECK_S) -> None:
        self.config = config
        self.id = config.id
        self.page_globals: dict = {}
        self.state_dir = Path("/var/lib/rpfleet")
        self.system = system
        self.screen_power = screen_power
        self._record = record
        self._clock = clock
        self._power_check_s = power_check_s
        self.policy = UrlPolicy(config.url, config.allowed, FALLBACK_PAGE.as_uri())
        self.ladder = RepairLadder(config.repairs_per_hour, SETTLE_HEARTBEATS * config.heartbeat)
        self.watch = ScreenWatch(config.frozen_after)
        self.browser: ChromiumProcess | None = None
        self.cdp: CdpConnection | None = None
        self.devtools_url: str | None = None
        self._target: str | None = None
        self._session: str | None = None
        self._crashed: str | None = None
        self._missed = 0
        self.heartbeats = 0
        self._injected: dict | None = None
        self._globals_script_id: str | None = None
        """Heartbeats checked since the driver started."""
        self._loading_since: float | None = None
        self._state = PeripheralHealth(id=self.id, kind=self.kind, state="missing",
                                       detail="not started")
        self.showing: str = "nothing"
        """What the screen shows: nothing, page, fallback, error (Chromium's error page)."""
        self._alarms: set[str] = set()
        self._given_up: str | None = None
        self.screen_is_on: bool | None = None
        self.display_restart_wait_s = DISPLAY_RESTART_WAIT_S
        self.reboot_wait_s = REBOOT_WAIT_S

    # -- what the agent calls ------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.state_dir / "kiosk-browser" / self.id

    def health(self) -> PeripheralHealth:
        if self._given_up:
            return self._state.model_copy(update={"state": "failed", "detail": self._given_up})
        verdict = self.watch.verdict
        if self._state.state == "ok" and verdict.state in ("blank", "frozen"):
            return self._state.model_copy(update={"state": "failed", "detail": verdict.detail})
        return self._state

    def attach(self, devnode: str) -> None:
        """A browser has no hot-plugged device."""

    def detach(self) -> None:
        """A browser has no hot-plugged device."""

    async def screenshot(self, max_width: int = 640) -> tuple[bytes, str]:
        """What the page shows now, no wider than ``max_width``: (WebP or PNG bytes, media
        type). Also judged by the black/frozen screen check. Raises ConnectionError when the
        browser is not running, TimeoutError when the page does not paint within 10 s."""
        if self.cdp is None or self._session is None:
            raise ConnectionError(f"kiosk browser {self.id} is not running")
        shot = await self.cdp.send("Page.captureScreenshot", {"format": "png"},
                                   session=self._session, timeout=10)
        png = base64.b64decode(shot["data"])
        image, media_type = await asyncio.to_thread(downscale, png, max_width)
        pixels = await asyncio.to_thread(thumbnail, png)
        if self.showing == "page":
            before = self.watch.verdict.state
            verdict = self.watch.see(Frame(time.monotonic(), pixels))
            if verdict.state != before and verdict.state in ("blank", "frozen"):
                log.warning("kiosk browser %s: %s", self.id, verdict.detail)
        return image, media_type

    async def run(self) -> None:
        self._load_history()
        helpers = [asyncio.create_task(self._screenshots(), name=f"{self.id} screenshots")]
        if self.config.screen_schedule is not None:
            helpers.append(asyncio.create_task(self._screen_power(), name=f"{self.id} power"))
        failures = 0
        try:
            while True:
                try:
                    await self._launch()
                except (BrowserStartFailed, OSError, CdpError, asyncio.TimeoutError) as exc:
                    # No display yet at boot, a browser that will not start: try again.
                    self._set("missing", f"the browser did not start: {exc}")
                    log.warning("kiosk browser %s: did not start: %s", self.id, exc)
                    await self._close()
                    await asyncio.sleep(START_RETRY_S[min(failures, len(START_RETRY_S) - 1)])
                    failures += 1
                    continue
                failures = 0
                try:
                    await self._supervise()
                finally:
                    await self._close()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._close()
            self._set("missing", "stopped")

    # -- the browser ---------------------------------------------------------------------------

    async def _launch(self) -> None:
        """Start Chromium, attach to its page and send it to the URL; never waits for the
        page's server (an unreachable one gets the fallback page)."""
        config = self.config
        self.browser = ChromiumProcess(
            config.chromium, self.home / "profile", display=config.display,
            headless=config.headless, window_size=config.window_size,
            extra_args=config.extra_args)
        self.devtools_url = await self.browser.start()
        self.cdp = CdpConnection(self.devtools_url)
        await self.cdp.connect()
        self.cdp.listen(self._event)
        await self.cdp.send("Target.setDiscoverTargets", {"discover": True})
        await self._attach_page()
        log.info("kiosk browser %s: chromium started (%s)", self.id, self.devtools_url)
        await self._go_home()

    async def _attach_page(self) -> None:
        assert self.cdp is not None
        targets = (await self.cdp.send("Target.getTargets"))["targetInfos"]
        pages = [t["targetId"] for t in targets if t.get("type") == "page"]
        target = pages[0] if pages else (
            await self.cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        attached = await self.cdp.send("Target.attachToTarget",
                                       {"targetId": target, "flatten": True})
        self._target, self._session = target, attached["sessionId"]
        self._globals_script_id = None
        self._crashed = None
        for method in ("Page.enable", "Inspector.enable"):
            await self.cdp.send(method, session=self._session)
        if self.config.headless:
            # Headless Chromium keeps an 800x600 screen whatever --window-size says.
            width, height = self.config.window_size
            await self.cdp.send("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": height, "deviceScaleFactor": 1,
                                 "mobile": False}, session=self._session)
        await self._inject_globals()

    async def _inject_globals(self) -> None:
        """(Re)register ``window.rpfleet`` for the documents to come."""
        if self._globals_script_id is not None:
            await self._send("Page.removeScriptToEvaluateOnNewDocument",
                             {"identifier": self._globals_script_id})
        self._injected = dict(self.page_globals)
        added = await self._send("Page.addScriptToEvaluateOnNewDocument",
                                 {"source": self._globals_script()})
        self._globals_script_id = added["identifier"]

    def _globals_script(self) -> str:
        """``window.rpfleet`` for documents on allowed URLs only: the bridge's token must not
        reach a page the kiosk was navigated to by mistake."""
        allowed = [origin(self.config.url) + "/", *self.config.allowed]
        return (
            "(() => {\n"
            f"  const allowed = {json.dumps(allowed)};\n"
            "  const here = location.href;\n"
            "  const ok = allowed.some((p) => { const o = new URL(p).origin;\n"
            "    return location.origin === o && here.slice(o.length).startsWith("
            "p.slice(o.length) || '/'); });\n"
            "  if (!ok) return;\n"
            f"  Object.defineProperty(window, 'rpfleet', {{value: Object.freeze("
            f"{json.dumps(self.page_globals)}), writable: false, configurable: false}});\n"
            "})();"
        )

    async def _close(self) -> None:
        cdp, self.cdp = self.cdp, None
        browser, self.browser = self.browser, None
        self._session = self._target = None
        self.showing = "nothing"
        if cdp is not None:
            await cdp.close()
        if browser is not None:
            await browser.stop()

    def _event(self, method: str, params: dict, session: str | None) -> None:
        if method == "Inspector.targetCrashed" and session == self._session:
            self._crashed = "the page's renderer crashed"
        elif method == "Target.targetCrashed" and params.get("targetId") == self._target:
            self._crashed = f"the page's renderer crashed ({params.get('status')})"
        elif method == "Target.targetDestroyed" and params.get("targetId") == self._target:
            self._crashed = "the page was closed"
            self._target = self._session = None
        elif method == "Page.frameNavigated" and session == self._session \
                and not params.get("frame", {}).get("parentId"):
            self.watch.reset()
        elif method == "Target.targetCreated" and self._target is not None:
            info = params.get("targetInfo", {})
            if info.get("type") == "page" and info.get("targetId") != self._target:
                # A popup (window.open, target=_blank) would cover the kiosk's page for good.
                asyncio.get_running_loop().create_task(self._close_popup(info))
        elif method == "Page.javascriptDialogOpening" and session == self._session:
            # Nobody will click an alert() on a kiosk: it would block the page for good.
            asyncio.get_running_loop().create_task(self._dismiss_dialog(session))

    async def _close_popup(self, info: dict) -> None:
        log.warning("kiosk browser %s: closing a popup window at %s", self.id,
                    str(info.get("url"))[:300])
        try:
            assert self.cdp is not None
            await self.cdp.send("Target.closeTarget", {"targetId": info["targetId"]})
        except Exception:  # noqa: BLE001 - gone already
            log.debug("kiosk browser %s: popup not closed", self.id, exc_info=True)

    async def _dismiss_dialog(self, session: str) -> None:
        try:
            assert self.cdp is not None
            await self.cdp.send("Page.handleJavaScriptDialog", {"accept": True}, session=session)
        except Exception:  # noqa: BLE001 - the heartbeat notices a page still stuck
            log.debug("kiosk browser %s: dialog not dismissed", self.id, exc_info=True)

    # -- going places --------------------------------------------------------------------------

    async def _go_home(self) -> None:
        """Navigate to the page; an unreachable server gets the fallback page instead."""
        self.watch.reset()
        self._loading_since = time.monotonic()
        try:
            result = await self._send("Page.navigate", {"url": self.config.url},
                                      timeout=self.config.load_timeout)
        except asyncio.TimeoutError:
            await self._show_fallback("the server did not answer in time")
            return
        error = result.get("errorText")
        if error and error != "net::ERR_ABORTED":
            await self._show_fallback(error)
        else:
            self.showing = "page"

    async def _show_fallback(self, why: str) -> None:
        query = urlencode({"text": self.config.fallback_text, "return": self.config.url,
                           "every": round(self.config.recheck_every * 1000)})
        await self._send("Page.navigate", {"url": f"{self.policy.fallback_url}?{query}"})
        if self.showing != "fallback":
            log.warning("kiosk browser %s: %s unreachable (%s): fallback page shown",
                        self.id, self.config.url, why)
        self.showing = "fallback"
        self._set("degraded", f"the page's server does not answer ({why}): fallback shown")
        await self._alarm(f"page-unreachable:{self.id}", "warning",
                          f"{self.config.url} does not answer ({why}); the kiosk shows "
                          f"\"{self.config.fallback_text}\"")

    async def _send(self, method: str, params: dict | None = None, *, timeout: float = 10) -> dict:
        if self.cdp is None or self._session is None:
            raise CdpClosed(f"kiosk browser {self.id}: no page")
        return await self.cdp.send(method, params, session=self._session, timeout=timeout)

    # -- watching ------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Check the page every heartbeat and repair it; returns when the browser must be
        started again."""
        while True:
            await asyncio.sleep(self.config.heartbeat)
            try:
                trouble = await self._check()
            except ConnectionError as exc:  # CdpClosed: the browser went away mid-check
                trouble = ("browser-gone", f"the DevTools connection was lost: {exc}")
            now = self._clock()
            if trouble is None:
                continue
            if trouble == "well":
                if self.ladder.well(now):
                    await self._mended()
                continue
            kind, detail = trouble
            decision = self.ladder.decide(kind, detail, now)
            if isinstance(decision, GiveUp):
                if decision.first:
                    self._given_up = decision.reason
                    log.error("kiosk browser %s: giving up: %s", self.id, decision.reason)
                    await self._alarm(f"kiosk-browser-failing:{self.id}", "critical",
                                      decision.reason)
                continue
            if not await self._repair(decision, kind):
                return

    async def _check(self) -> tuple[Trouble, str] | str | None:
        """One heartbeat: a trouble to repair, "well", or None (nothing to say yet)."""
        self.heartbeats += 1
        browser = self.browser
        if browser is None or not browser.alive:
            code = browser.process.returncode if browser and browser.process else None
            return "browser-gone", f"the browser exited ({code})"
        if self.cdp is None or self.cdp.closed.is_set():
            return "browser-gone", "the DevTools connection was lost"
        if self._crashed:
            return "crashed", self._crashed
        if self._injected != self.page_globals:
            # Set after the browser started (the bridge bound late): the page must see them.
            log.info("kiosk browser %s: page globals changed: loading the page again", self.id)
            await self._inject_globals()
            await self._go_home()
            return None
        try:
            answer = await self._send("Runtime.evaluate",
                                      {"expression": HEARTBEAT, "returnByValue": True},
                                      timeout=self.config.heartbeat_timeout)
            href, ready = json.loads(answer["result"]["value"])
        except (asyncio.TimeoutError, CdpError, KeyError, ValueError, TypeError) as exc:
            self._missed += 1
            if self._missed >= self.config.failures_before_repair:
                what = "no answer" if isinstance(exc, asyncio.TimeoutError) else f"{exc!r}"
                return "hung", f"{what} to {self._missed} heartbeats in a row"
            return None
        self._missed = 0
        where = self.policy.classify(href)
        if where == "error":
            await self._show_fallback("the browser shows its network error page")
            return None
        if where == "fallback":
            self.showing = "fallback"
            return None
        if where == "blank":
            await self._go_home()
            return None
        if where == "disallowed":
            return "disallowed", f"it went to {href[:300]}"
        if self.showing == "fallback":
            await self._back_from_fallback()
        self.showing = "page"
        if ready != "complete":
            self._loading_since = self._loading_since or time.monotonic()
            waited = time.monotonic() - self._loading_since
            if waited > self.config.load_timeout:
                return "not-loaded", f"still {ready} after {waited:.0f}s"
            return None
        self._loading_since = None
        if self._state.state != "ok":
            self._set("ok", self.config.url)
        return "well"

    async def _back_from_fallback(self) -> None:
        log.info("kiosk browser %s: %s answers again", self.id, self.config.url)
        self.watch.reset()
        await self._clear_alarm(f"page-unreachable:{self.id}")

    async def _mended(self) -> None:
        if self._given_up:
            log.info("kiosk browser %s: the page is well again", self.id)
        self._given_up = None
        self._save_history()
        await self._clear_alarm(f"kiosk-browser-failing:{self.id}")

    # -- repairing -----------------------------------------------------------------------------

    async def _repair(self, repair: Repair, trouble: Trouble) -> bool:
        """Carry out ``repair`` and report it; False when the browser must start again."""
        step = repair.step
        log.warning("kiosk browser %s: %s (%s)", self.id, step, repair.reason)
        self._set("degraded", f"{step}: {repair.reason}")
        self.ladder.done(step, self._clock())
        self._save_history()
        self._missed = 0
        failed: str | None = None
        keep_browser = True
        try:
            if step == "reload":
                await self._reload()
            elif step == "restart-browser":
                keep_browser = False
            elif step == "restart-display":
                keep_browser = False
                await self.system.restart_display(self.config.display_service)
                await self._close()
                await asyncio.sleep(self.display_restart_wait_s)
            else:
                keep_browser = False
                await self._close()
                await self._report_repair(repair, trouble, None)
                await self.system.reboot()
                await asyncio.sleep(self.reboot_wait_s)
                return False
        except (OSError, CdpError, asyncio.TimeoutError) as exc:  # CdpClosed is an OSError
            failed = f"{type(exc).__name__}: {exc}"[:2000]
            keep_browser = False if step == "reload" else keep_browser
            log.warning("kiosk browser %s: %s failed: %s", self.id, step, failed)
        await self._report_repair(repair, trouble, failed)
        return keep_browser

    async def _reload(self) -> None:
        """Back to the page: stop a runaway script, replace a closed or crashed page."""
        if self._session is None:
            await self._attach_page()
        else:
            try:
                await self._send("Runtime.terminateExecution", timeout=2)
            except (CdpError, asyncio.TimeoutError):
                pass  # nothing was running
        self._crashed = None
        await self._go_home()

    # -- schedules -----------------------------------------------------------------------------

    async def _screenshots(self) -> None:
        every = self.config.screenshot_every
        if every is None:
            return
        while True:
            await asyncio.sleep(every)
            if self.showing != "page":
                continue
            try:
                await self.screenshot(self.config.screenshot_width)
            except (ConnectionError, CdpError, asyncio.TimeoutError, OSError) as exc:
                log.debug("kiosk browser %s: no screenshot: %r", self.id, exc)

    async def _screen_power(self) -> None:
        schedule = self.config.screen_schedule
        assert schedule is not None
        while True:
            wanted = screen_on(schedule, self._clock())
            if wanted != self.screen_is_on:
                try:
                    await self.screen_power.set_on(wanted)
                    log.info("kiosk browser %s: screen %s", self.id, "on" if wanted else "off")
                    self.screen_is_on = wanted
                except OSError as exc:
                    log.warning("kiosk browser %s: screen power: %s", self.id, exc)
            await asyncio.sleep(self._power_check_s)

    # -- reporting -----------------------------------------------------------------------------

    async def _report_repair(self, repair: Repair, trouble: Trouble, failed: str | None) -> None:
        await self._tell(BrowserRepair(
            browser=self.id, step=repair.step, trouble=trouble, reason=repair.reason[:2000],
            done_this_hour=repair.done_this_hour, failed=failed))

    async def _alarm(self, code: str, severity: str, message: str) -> None:
        if code in self._alarms:
            return
        self._alarms.add(code)
        await self._tell(Alarm(code=code[:128], severity=severity, message=message[:2000]))

    async def _clear_alarm(self, code: str) -> None:
        if code not in self._alarms:
            return
        self._alarms.discard(code)
        await self._tell(Alarm(code=code[:128], severity="info", message="cleared", cleared=True))

    async def _tell(self, detail: EventDetail) -> None:
        try:
            await self._record(detail, self._clock())
        except Exception:  # noqa: BLE001 - the screen is served either way
            log.exception("kiosk browser %s: %s could not be recorded", self.id, detail.kind)

    def _set(self, state: str, detail: str | None = None) -> None:
        if state != self._state.state:
            log.info("kiosk browser %s: %s%s", self.id, state, f" ({detail})" if detail else "")
        self._state = PeripheralHealth(id=self.id, kind=self.kind, state=state,
                                       detail=detail[:2000] if detail else None)

    # -- the repair history on disk (it must outlive the reboots it asks for) ------------------

    def _load_history(self) -> None:
        path = self.home / "repairs.json"
        try:
            self.ladder.history = RepairHistory.from_json(json.loads(path.read_text("utf-8")))
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError) as exc:
            log.warning("kiosk browser %s: repair history %s unreadable (%s): starting afresh",
                        self.id, path, exc)

    def _save_history(self) -> None:
        path = self.home / "repairs.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            with open(partial, "w", encoding="utf-8") as out:
                json.dump(self.ladder.history.to_json(), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except OSError as exc:
            log.warning("kiosk browser %s: repair history not saved: %s", self.id, exc)


def build_kiosk_browser(config: KioskBrowserConfig, record: Record) -> KioskBrowser:
    """The kiosk browser's driver with the system and CEC adapters its config names."""
    from devices.kiosk_browser.cec_adapter import CecClient
    from devices.kiosk_browser.fake import FakeScreen, FakeSystemActions
    from devices.kiosk_browser.system_adapter import Systemctl

    system = FakeSystemActions() if config.system == "fake" else Systemctl()
    power = FakeScreen() if config.cec == "fake" else CecClient()
    return KioskBrowser(config, record, system=system, screen_power=power)
