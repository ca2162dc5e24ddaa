"""The node agent daemon: peripherals -> outbox -> link, plus status, health,
driver supervision and the systemd watchdog."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from datetime import datetime, timezone

from agent import __version__, systemd
from agent.backoff import Backoff
from agent.commands import for_node as command_runner
from agent.desired_config import Applied, Apply, LastGood, Older, Same, judge, starting_settings
from agent.drivers import DriverSet
from agent.hotplug import HotPlug, udev_monitor
from agent.link import Link
from agent.local_events import LocalEvents
from agent.outbox import Outbox, write_alarm
from agent.sender import Sender
from agent.settings import AgentSettings
from agent.supervisor import supervise
from agent.sysinfo import MachineReader, read_clock_synced
from agent.update_link import AgentUpdates
from devices.base import Driver
from devices.registry import build_driver
from rpfleet.node_config import short_version
from rpfleet.protocol import Channel, PayloadError, decode_as
from rpfleet.protocol.messages import Ack, Alarm, Announce, EventDetail, Health, PeripheralHealth
from rpfleet.protocol.messages import ConfigDesired, ConfigReported

log = logging.getLogger(__name__)

TICK_S = 1.0


class NodeAgent:
    def __init__(self, settings: AgentSettings) -> None:
        self.local_settings = settings
        """The node's own file; the desired config's keys replace its values (self.settings)."""
        self.last_good = LastGood(settings.state_dir)
        settings, self.applied_config = starting_settings(settings, self.last_good)
        self.settings = settings
        self.outbox = Outbox(settings.outbox_path, overflow_limit=settings.overflow_limit)
        self.link = Link(
            settings.node_id,
            settings.broker,
            __version__,
            on_connected=self._connected,
            on_message=self._received,
            on_failed=lambda why: self.updates.broker_failed(why),
        )
        self.sender = Sender(
            settings.node_id,
            self.outbox,
            lambda batch: self.updates.publish_events(batch),
            batch_size=settings.batch_size,
            live_slots=settings.live_slots,
            ack_timeout_s=settings.ack_timeout,
        )
        self.drivers = DriverSet(
            self._build_driver,
            self._supervised, settings.peripherals)
        """The current drivers (agent.drivers): iterate or index it; it follows the desired config."""
        self._hotplug: asyncio.Task | None = None
        self._config_lock = asyncio.Lock()
        self._config_tasks: set[asyncio.Task] = set()
        self.local_events = LocalEvents()
        """What record() has stored, for listeners on the node (the device bridge)."""
        self.bridge = None
        if settings.bridge is not None:
            from agent.bridge.server import DeviceBridge  # the web stack only where configured

            self.bridge = DeviceBridge(settings.bridge, self.drivers, self.local_events,
                                       self._peripherals)
        self.updates = AgentUpdates(self)
        """Signed software updates (agent/update_link.py); ``exit_status`` after a switch."""
        self.commands = command_runner(self)
        """Remote commands, each run at most once (agent.commands)."""
        self.machine = MachineReader(settings.state_dir)
        self.clock_synced: bool | None = None
        self.alarms: dict[str, str] = {}
        """Active alarm code -> what it is about."""
        self._crashed: dict[str, str] = {}
        self._reported_peripherals: list[PeripheralHealth] = []
        self._started = time.monotonic()
        self._last_tick = time.monotonic()

    async def record(self, detail: EventDetail, at: datetime) -> None:
        """The `devices.base.Record` handed to every driver: returns once the event is held."""
        event = self.outbox.record(detail, at, clock_synced=self.clock_synced)
        log.debug("recorded %s #%d", event.detail.kind, event.seq)
        self.local_events.publish(event.detail, at)  # never waits (agent/local_events.py)
        self._check_disk()
        self.sender.pump()

    async def run(self, stop: asyncio.Event) -> None:
        self.outbox.open()
        self.commands.open()
        self.clock_synced = read_clock_synced()
        if self.outbox.replaced is not None:
            self._raise_alarm(
                "outbox-replaced", "critical",
                f"unreadable outbox moved to {self.outbox.replaced.name}; "
                f"{self.outbox.salvaged} event(s) carried over",
            )
        log.info(
            "agent %s for node %s: %d event(s) waiting, %d peripheral(s)",
            __version__, self.settings.node_id, self.outbox.pending(), len(self.drivers),
        )
        await self.updates.open(stop)  # before drivers and link: may roll back and restart
        renewal = self._certificate_renewal()
        self.link.start(asyncio.get_running_loop())
        bridge = self._open_bridge()  # before the drivers: kiosk browsers need its URL and token
        self.drivers.start()
        self.updates.drivers_started()
        tasks = [asyncio.create_task(self.updates.run(), name="updates")]
        if bridge is not None:
            tasks.append(bridge)
        tasks.append(asyncio.create_task(self._tick_forever(), name="tick"))
        self._start_hotplug()
        tasks.append(asyncio.create_task(self._report_health(), name="health"))
        tasks.append(asyncio.create_task(self.commands.run(), name="commands"))
        if renewal is not None:
            tasks.append(asyncio.create_task(renewal.run(stop), name="certificate renewal"))
        watchdog = systemd.watchdog_period()
        if watchdog:
            tasks.append(asyncio.create_task(self._feed_watchdog(watchdog), name="watchdog"))
        systemd.notify(f"READY=1\nSTATUS=serving {len(self.drivers)} peripheral(s)")
        try:
            await stop.wait()
        finally:
            systemd.notify("STOPPING=1")
            # The current hot-plug task (a config change replaces it) and config being applied.
            tasks.extend([t for t in (self._hotplug, *self._config_tasks) if t is not None])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.drivers.stop()
            await self.link.stop()
            self.outbox.close()
            self.commands.close()
            self.updates.close()
            log.info("agent stopped")

    def _certificate_renewal(self):
        """With broker TLS: finish an identity replacement a power cut interrupted, and
        renew the certificate before it expires (when the enrollment URL is known)."""
        tls = self.settings.broker.tls
        if tls is None:
            return None
        from agent.identity import IdentityFiles
        from agent.renewal import CertificateRenewal

        files = IdentityFiles(key=tls.key_file, cert=tls.cert_file, ca=tls.ca_file)
        files.finish_pending()
        if self.settings.enrollment_url is None:
            log.warning("no enrollment_url: the broker certificate will not be renewed automatically")
            return None
        return CertificateRenewal(self.settings.enrollment_url, files, self.link.reload_identity)

    def health(self) -> Health:
        machine = self.machine.read()
        return Health(
            node=self.settings.node_id,
            at=datetime.now(timezone.utc),
            uptime_s=round(time.monotonic() - self._started, 1),
            outbox_pending=self.outbox.pending(),
            outbox_oldest_age_s=_rounded(self.outbox.oldest_age()),
            outbox_overflow=self.outbox.overflow,
            agent_version=__version__,
            clock_synced=self.clock_synced,
            peripherals=self._peripherals(),
            alarms=sorted(self.alarms),
            **asdict(machine),
        )

    # events from the link ---------------------------------------------------

    def _connected(self) -> None:
        self._publish_health()
        self.sender.reconnected()
        owed = self.last_good.owed()  # a config report the server may not have: again
        if owed is not None:
            self.link.publish(Channel.CONFIG_REPORTED, owed)
        self.commands.reconnected()
        self.updates.connected()

    def _received(self, channel: Channel, payload: bytes) -> None:
        if channel is Channel.ANNOUNCE:
            self._announce(payload)
            return
        if channel is Channel.CONFIG_DESIRED:
            self._desired(payload)
            return
        if channel is Channel.CMD:
            self.commands.receive(payload)
            return
        if channel is Channel.UPDATE_DESIRED:
            self.updates.desired(payload)
            return
        if channel is not Channel.ACK:
            log.debug("no handler yet for %s", channel)
            return
        try:
            ack = decode_as(Ack, payload)
        except PayloadError as exc:
            log.warning("ignoring malformed ack: %s", exc)
            return
        self.sender.acked(ack)
        self.commands.acked(ack.ids)
        self.updates.acked(ack.ids)

    def _announce(self, payload: bytes) -> None:
        """Hand an `Announce` to every driver that says announcements (soundboxes); each
        takes what concerns its counters and records what it did with it."""
        try:
            message = decode_as(Announce, payload)
        except PayloadError as exc:
            log.warning("ignoring malformed announce: %s", exc)
            return
        taken = [driver.id for driver in self.drivers
                 if (say := getattr(driver, "announce", None)) is not None and say(message)]
        if not taken:
            log.info("announce %s (%s, counter %s): no soundbox here says it; ignored",
                     message.id, message.kind, message.counter)

    # the device bridge (agent/bridge) ---------------------------------------

    def _open_bridge(self) -> asyncio.Task | None:
        """Bind the bridge, give its URL and this boot's token to the kiosk browsers (their
        ``page_globals``, injected into the page as ``window.rpfleet``) and start serving."""
        if self.bridge is None:
            return None
        try:
            self.bridge.bind()
        except OSError as exc:
            self._raise_alarm("bridge-failed", "critical", f"device bridge: {exc}")
            return None
        for driver in self.drivers:
            self._with_bridge(driver)
        return asyncio.create_task(self._serve_bridge(), name="device bridge")

    def _build_driver(self, config) -> Driver:
        """A driver for one configured peripheral, given what the node provides: its state
        directory (kiosk browsers keep their profile and repair history there) and the
        device bridge's URL and token."""
        driver = build_driver(config, self.record)
        if hasattr(driver, "state_dir"):
            driver.state_dir = self.settings.state_dir
        return self._with_bridge(driver)

    def _with_bridge(self, driver: Driver) -> Driver:
        """A kiosk browser driver (one with ``page_globals``), built before or after the bridge
        was bound, gets its URL and token once it is."""
        bridge = getattr(self, "bridge", None)  # drivers are built before the bridge is made
        if bridge is not None and bridge.bound and hasattr(driver, "page_globals"):
            driver.page_globals = {**(driver.page_globals or {}), **bridge.page_globals()}
        return driver

    async def _serve_bridge(self) -> None:
        try:
            await self.bridge.serve()
        except Exception as exc:  # noqa: BLE001 - the kiosk loses its bridge, the node serves on
            log.exception("the device bridge stopped")
            self._raise_alarm("bridge-failed", "critical", f"device bridge: {exc}")

    # desired config (agent/desired_config.py) --------------------------------

    def _desired(self, payload: bytes) -> None:
        try:
            message = decode_as(ConfigDesired, payload)
        except PayloadError as exc:
            log.warning("ignoring malformed desired config: %s", exc)
            return
        task = asyncio.create_task(self._apply_desired(message), name="apply config")
        self._config_tasks.add(task)
        task.add_done_callback(self._config_tasks.discard)

    async def _apply_desired(self, desired: ConfigDesired) -> None:
        """Apply a desired config (one at a time), or refuse it and stay on the current one;
        report which on ``up/config``."""
        async with self._config_lock:
            verdict = judge(self.local_settings, desired, self.applied_config)
            if isinstance(verdict, Older):
                log.warning("ignoring desired config %s: issued %s, before the one applied (%s)",
                            short_version(desired.version), desired.issued_at.isoformat(),
                            self.applied_config.issued_at.isoformat() if self.applied_config else "-")
                return
            if isinstance(verdict, Same):
                self._report_config(desired.version, "applied")
                return
            if not isinstance(verdict, Apply):
                log.error("refusing desired config %s: %s", short_version(desired.version), verdict.reason)
                self._report_config(desired.version, "rejected", verdict.reason)
                return
            applied = Applied(desired.version, desired.issued_at, desired.config)
            try:
                self.last_good.save(applied)
            except OSError as exc:
                self._report_config(desired.version, "rejected", f"could not keep it on disk: {exc}")
                return
            changes = await self.drivers.apply(verdict.settings.peripherals)
            self.settings, self.applied_config = verdict.settings, applied
            for driver_id in changes.stopped:
                self._crashed.pop(driver_id, None)
                self._clear_alarm(f"driver-crashed:{driver_id}")
            if changes.any:
                self._start_hotplug()
            log.info("applied desired config %s", short_version(desired.version))
            self._report_config(desired.version, "applied")
            self._publish_health()

    def _report_config(self, version: str, state: str, reason: str | None = None) -> None:
        report = ConfigReported(node=self.settings.node_id, version=version, state=state,
                                reason=reason)
        self.last_good.owe(report)
        self.link.publish(Channel.CONFIG_REPORTED, report)

    # drivers ----------------------------------------------------------------

    def _supervised(self, driver: Driver):
        return supervise(driver, self._driver_crashed, Backoff(1, 60))

    def _start_hotplug(self) -> None:
        """(Re)start hot-plug over the current drivers."""
        if self._hotplug is not None:
            self._hotplug.cancel()
        self._hotplug = asyncio.create_task(
            HotPlug(self.drivers, self.record, udev_monitor()).run(), name="hotplug"
        )

    def _peripherals(self) -> list[PeripheralHealth]:
        states = []
        for driver in self.drivers:
            state = driver.health()
            if driver.id in self._crashed and state.state != "ok":
                state = PeripheralHealth(
                    id=driver.id, kind=driver.kind, state="failed", detail=self._crashed[driver.id]
                )
            elif state.state == "ok":
                self._crashed.pop(driver.id, None)
                self._clear_alarm(f"driver-crashed:{driver.id}")
            states.append(state)
        return states

    def _driver_crashed(self, driver: Driver, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"[:500]
        self._crashed[driver.id] = message
        self._raise_alarm(f"driver-crashed:{driver.id}", "critical", f"{driver.id}: {message}")

    # alarms -----------------------------------------------------------------

    def _raise_alarm(self, code: str, severity: str, message: str) -> None:
        """Health shows it; an alarm event goes to the server when the state changes."""
        if self.alarms.get(code) == message:
            return
        self.alarms[code] = message
        log.warning("alarm %s: %s", code, message)
        self._record_alarm(Alarm(code=code, severity=severity, message=message))
        self._publish_health()

    def _clear_alarm(self, code: str) -> None:
        if self.alarms.pop(code, None) is not None:
            log.info("alarm %s cleared", code)
            self._record_alarm(Alarm(code=code, severity="info", message="cleared", cleared=True))
            self._publish_health()

    def _record_alarm(self, alarm: Alarm) -> None:
        try:
            self.outbox.record(alarm, datetime.now(timezone.utc), clock_synced=self.clock_synced)
        except Exception:  # noqa: BLE001 - an alarm about the outbox may not fit in it
            log.exception("could not record alarm %s", alarm.code)

    def _check_disk(self) -> None:
        if self.outbox.write_error is not None:
            code = write_alarm(self.outbox.write_error)
            for other in ("disk-full", "disk-read-only", "outbox-write-failed"):
                if other != code:
                    self.alarms.pop(other, None)
            self._raise_alarm(code, "critical", f"outbox: {self.outbox.write_error}")
        else:
            for code in ("disk-full", "disk-read-only", "outbox-write-failed"):
                self._clear_alarm(code)

    # periodic work ----------------------------------------------------------

    async def _tick_forever(self) -> None:
        """Every second: retry held writes, pump the sender, notice peripheral changes."""
        while True:
            await asyncio.sleep(TICK_S)
            self._last_tick = time.monotonic()
            self.clock_synced = read_clock_synced()
            self.outbox.flush_overflow()
            self._check_disk()
            self.sender.pump()
            peripherals = self._peripherals()
            if peripherals != self._reported_peripherals:
                self._publish_health()

    async def _report_health(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval)
            self._publish_health()

    def _publish_health(self) -> None:
        health = self.health()
        if self.link.publish(Channel.HEALTH, health):
            self._reported_peripherals = health.peripherals

    async def _feed_watchdog(self, period: float) -> None:
        """Feed systemd's watchdog only while the tick loop really runs."""
        while True:
            await asyncio.sleep(period)
            if time.monotonic() - self._last_tick < max(3 * TICK_S, period):
                systemd.notify("WATCHDOG=1")
            else:
                log.error("tick loop stalled; letting the watchdog restart the agent")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
