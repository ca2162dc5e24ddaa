"""What each command does on the node, given the node's running drivers and its adapters.

A handler returns a `Done`: the outcome to report and, for restart-agent and
reboot, the effect to carry out only once that outcome is on disk (``then``).
Outputs stay small: a screenshot is downscaled by the browser driver and refused
above `MAX_SCREENSHOT_BYTES`; logs are capped (agent.commands.journal).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Sequence

from agent.commands.args import FetchLogsArgs, IdentifyArgs, NoArgs, ScreenshotArgs, UpdateResetArgs
from agent.commands.journal import BadRange, Journal, bounded, log_range
from agent.commands.system import SystemActions
from rpfleet.protocol.messages import Announce, Command

log = logging.getLogger(__name__)

MAX_SCREENSHOT_BYTES = 160 * 1024
"""In base64 about 213 KiB: the whole result must fit one MQTT payload (256 KiB)."""
LOOK_TIMEOUT_S = 20.0
ANNOUNCE_TTL = timedelta(seconds=60)


@dataclass(frozen=True)
class Done:
    outcome: str
    """ok, failed or refused (expired is decided before a command runs)."""
    detail: str | None = None
    output: dict[str, Any] | None = None
    then: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)
    """The effect that must wait until the outcome is durable (restart, reboot)."""


@dataclass
class NodeParts:
    """What the handlers act on. ``drivers`` is read when a command runs (hot-plug may add)."""

    drivers: Callable[[], Sequence[Any]]
    system: SystemActions
    journal: Journal
    clock: Callable[[], datetime]
    update_reset: Callable[[str], Awaitable[str]] | None = None
    """The updater's reset (agent.update_link); returns the update's state afterwards."""


class Handlers:
    def __init__(self, parts: NodeParts) -> None:
        self.parts = parts
        self._by_name: dict[str, Callable[[Command, Any], Awaitable[Done]]] = {
            "restart-agent": self.restart_agent,
            "reboot": self.reboot,
            "identify": self.identify,
            "test-sound": self.test_sound,
            "self-test": self.self_test,
            "screenshot": self.screenshot,
            "fetch-logs": self.fetch_logs,
            "update-reset": self.update_reset,
        }

    async def run(self, command: Command, args: NoArgs) -> Done:
        return await self._by_name[command.name](command, args)

    # power ------------------------------------------------------------------

    async def restart_agent(self, command: Command, args: NoArgs) -> Done:
        return Done("ok", "the agent restarts now (systemd starts it again)",
                    then=self.parts.system.restart_agent)

    async def reboot(self, command: Command, args: NoArgs) -> Done:
        return Done("ok", "the node reboots now", then=self.parts.system.reboot)

    # sound and light -----------------------------------------------------------

    async def identify(self, command: Command, args: IdentifyArgs) -> Done:
        """Say the counter on every soundbox that serves it, and blink the pads' LEDs
        where their driver can (``identify()``); output says what each did."""
        counter = args.counter or self._counter()
        if counter is None:
            return Done("failed", "this node has no counter to say: none of its peripherals "
                                  "names one; give one with --arg counter=N")
        said = self._announce(command, "identify", counter)
        blinked: dict[str, str] = {}
        for driver in self.parts.drivers():
            if driver.kind != "rating-pad":
                continue
            blink = getattr(driver, "identify", None)
            if blink is None:
                blinked[driver.id] = ("cannot blink: its driver has no way to light the LED "
                                      "on request")
                continue
            try:
                await blink()
                blinked[driver.id] = "blinked"
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                blinked[driver.id] = f"failed: {type(exc).__name__}: {exc}"[:300]
        output = {"counter": counter, "soundboxes": said, "pads": blinked}
        if not said and "blinked" not in blinked.values():
            return Done("failed", f"nothing here can identify counter {counter}: no soundbox "
                                  "serves it and no pad can blink", output)
        return Done("ok", f"counter {counter}: said by {len(said)} soundbox(es), "
                          f"{list(blinked.values()).count('blinked')} pad(s) blinked", output)

    async def test_sound(self, command: Command, args: NoArgs) -> Done:
        said = self._announce(command, "test", None)
        if not said:
            return Done("failed", "no soundbox on this node")
        return Done("ok", f"test announcement given to {', '.join(said)}; each records whether "
                          "it played (an announcement event)", {"soundboxes": said})

    def _announce(self, command: Command, kind: str, counter: str | None) -> list[str]:
        message = Announce(
            id=command.id, kind=kind, counter=counter,  # type: ignore[arg-type]
            expires_at=min(command.expires_at, self.parts.clock() + ANNOUNCE_TTL),
        )
        return [d.id for d in self.parts.drivers()
                if (say := getattr(d, "announce", None)) is not None and say(message)]

    def _counter(self) -> str | None:
        for driver in self.parts.drivers():
            config = getattr(driver, "config", None)
            counter = getattr(config, "counter", None)
            if counter:
                return str(counter)
        for driver in self.parts.drivers():
            counters = getattr(getattr(driver, "config", None), "counters", ())
            if counters and len(counters) == 1:
                return str(counters[0])
        return None

    # looking at the node ----------------------------------------------------------

    async def self_test(self, command: Command, args: NoArgs) -> Done:
        """The non-interactive part of the handover self-test: each peripheral's state, and a
        look at the device by drivers that can (``look()``). Nothing is pressed or scanned."""
        results = []
        for driver in self.parts.drivers():
            state = driver.health()
            found = {"id": driver.id, "kind": driver.kind, "state": state.state,
                     "detail": state.detail}
            look = getattr(driver, "look", None)
            if look is not None and state.state == "ok":
                try:
                    seen = await asyncio.wait_for(look(), LOOK_TIMEOUT_S)
                    found.update(state=seen.state, detail=seen.detail)
                except asyncio.TimeoutError:
                    found.update(state="failed", detail=f"no answer in {LOOK_TIMEOUT_S:g}s")
                except Exception as exc:  # noqa: BLE001 - the probe's verdict
                    found.update(state="failed", detail=f"{type(exc).__name__}: {exc}"[:300])
            results.append(found)
        bad = [f"{r['id']} {r['state']}" for r in results if r["state"] != "ok"]
        output = {"peripherals": results, "passed": not bad}
        if bad:
            return Done("failed", f"{len(bad)} of {len(results)} peripheral(s) not ok: "
                                  + ", ".join(bad), output)
        return Done("ok", f"{len(results)} peripheral(s) ok", output)

    async def screenshot(self, command: Command, args: ScreenshotArgs) -> Done:
        screens = [d for d in self.parts.drivers() if getattr(d, "screenshot", None) is not None]
        if args.peripheral is not None:
            screens = [d for d in screens if d.id == args.peripheral]
            if not screens:
                return Done("refused", f"args.peripheral: no screen {args.peripheral!r} on this "
                                       "node takes screenshots")
        if not screens:
            return Done("refused", "no kiosk or dashboard browser on this node takes screenshots")
        driver = screens[0]
        try:
            image, media_type = await driver.screenshot(max_width=args.max_width)
        except Exception as exc:  # noqa: BLE001 - reported as the outcome
            return Done("failed", f"{driver.id}: {type(exc).__name__}: {exc}"[:500])
        if len(image) > MAX_SCREENSHOT_BYTES:
            return Done("failed", f"{driver.id}: the screenshot is {len(image)} bytes, more than "
                                  f"{MAX_SCREENSHOT_BYTES}; ask for a smaller max_width")
        return Done("ok", f"{driver.id}: {len(image)} bytes of {media_type}", {
            "peripheral": driver.id, "media_type": media_type, "bytes": len(image),
            "data_base64": base64.b64encode(image).decode("ascii"),
        })

    async def update_reset(self, command: Command, args: UpdateResetArgs) -> Done:
        if self.parts.update_reset is None:
            return Done("refused", "this node runs no updater")
        try:
            state = await self.parts.update_reset(args.reason or f"reset by {command.issuer}")
        except Exception as exc:  # noqa: BLE001 - reported as the outcome
            return Done("failed", f"the update could not be reset: {type(exc).__name__}: {exc}"[:500])
        return Done("ok", f"update reset: now {state}", {"state": state})

    async def fetch_logs(self, command: Command, args: FetchLogsArgs) -> Done:
        try:
            span = log_range(args, self.parts.clock())
        except BadRange as exc:
            return Done("refused", str(exc))
        try:
            lines = await self.parts.journal.read(args.unit, span.since, span.until, args.lines)
        except OSError as exc:
            return Done("failed", f"the journal could not be read: {exc}"[:500])
        kept, truncated = bounded(lines, args.lines)
        said = f"{len(kept)} line(s) of {args.unit}" + (" (truncated)" if truncated else "")
        return Done("ok", said, {
            "unit": args.unit, "since": span.since.isoformat(), "until": span.until.isoformat(),
            "lines": kept, "truncated": truncated,
        })
