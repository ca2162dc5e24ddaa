"""Hot-plug: drivers follow their devices as udev sees them come and go.

`HotPlug` carries out what `devices.hotplug.inventory.Inventory` decides:

- attach: ``driver.attach(devnode)``; a ``peripheral-attached`` event when the
  peripheral arrives (at start-up too, once per agent start, so the server
  learns the node's inventory), none when it only moves between nodes of the
  device it already has;
- detach: ``driver.detach()`` and a ``peripheral-detached`` event;
- an unknown device: a log line and one ``unknown-device`` alarm event
  (severity info) per identity per agent run, however many events it sends;
- an ambiguity: a log line and one ``ambiguous-device`` alarm event (warning);
  nothing is attached on a guess.

Peripherals whose config names no stable identity (a fake, or only a kernel
name like ``/dev/input/event3``) are left alone: their drivers keep the path
they were given.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Callable, Iterable

from agent.backoff import Backoff
from devices.base import Driver, Record
from devices.hotplug.adapter import DeviceMonitor
from devices.hotplug.inventory import Action, Attach, Detach, Inventory, UnknownDevice
from devices.hotplug.matcher import Ambiguity, ConfiguredPeripheral, peripheral_from_config
from devices.hotplug.nodes import names_kernel_node
from rpfleet.protocol.messages import Alarm, EventDetail, PeripheralAttached, PeripheralDetached

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
"""An alarm's message field holds this much (rpfleet.protocol.messages.Text)."""


def udev_monitor() -> DeviceMonitor:
    """The node's real udev source (pyudev is imported only when it opens)."""
    from devices.hotplug.udev_adapter import PyudevMonitor

    return PyudevMonitor()


class HotPlug:
    def __init__(
        self,
        drivers: Iterable[Driver],
        record: Record,
        monitor: DeviceMonitor,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.drivers = {driver.id: driver for driver in drivers}
        self.monitor = monitor
        self._record = record
        self._backoff = backoff or Backoff(1, 60)
        self._clock = clock
        self.inventory: Inventory | None = None

    async def run(self) -> None:
        """Follow udev until cancelled; a lost udev connection is reopened and the
        inventory taken afresh, so nothing that happened meanwhile is missed."""
        self.inventory = inventory = Inventory(self._peripherals())
        try:
            while True:
                try:
                    present = await self.monitor.open()
                    await self._carry_out(inventory.load(present))
                    self._backoff.reset()
                    async for action, properties in self.monitor.events():
                        await self._carry_out(inventory.apply(action, properties))
                    raise OSError("the udev monitor stopped")
                except ImportError as exc:
                    log.error("hot-plug is off: %s (install the agent's extras)", exc)
                    return
                except OSError as exc:
                    delay = self._backoff.next()
                    log.error("hot-plug: udev unavailable (%s); retrying in %.1fs", exc, delay)
                    await self.monitor.close()
                    await asyncio.sleep(delay)
        finally:
            await self.monitor.close()

    def _peripherals(self) -> list[ConfiguredPeripheral]:
        peripherals = []
        for driver in self.drivers.values():
            peripheral = peripheral_from_config(driver.config)
            if peripheral is not None:
                peripherals.append(peripheral)
            elif names_kernel_node(getattr(driver.config, "device", None) or ""):
                log.warning("peripheral %s: %s is a kernel name and changes on replug; "
                            "hot-plug cannot follow it (configure its /dev/.../by-id/ link "
                            "or a match)", driver.id, driver.config.device)
        return peripherals

    async def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Attach):
                driver = self.drivers[action.peripheral]
                driver.attach(action.devnode)
                if action.announce:
                    log.info("peripheral %s attached at %s (%s)",
                             action.peripheral, action.devnode, action.identity)
                    await self._tell(PeripheralAttached(
                        peripheral=action.peripheral, peripheral_kind=action.kind,
                        identity=action.identity,
                    ))
                else:
                    log.info("peripheral %s moved to %s", action.peripheral, action.devnode)
            elif isinstance(action, Detach):
                self.drivers[action.peripheral].detach()
                log.info("peripheral %s detached from %s", action.peripheral, action.devnode)
                await self._tell(PeripheralDetached(
                    peripheral=action.peripheral, peripheral_kind=action.kind,
                ))
            elif isinstance(action, UnknownDevice):
                log.warning("hot-plug: %s; no configured peripheral matches it", action.describe())
                await self._tell(Alarm(code="unknown-device", severity="info",
                                       message=action.describe()[:MESSAGE_LIMIT]))
            elif isinstance(action, Ambiguity):
                log.warning("hot-plug: %s", action.describe())
                await self._tell(Alarm(code="ambiguous-device", severity="warning",
                                       message=action.describe()[:MESSAGE_LIMIT]))

    async def _tell(self, detail: EventDetail) -> None:
        try:
            await self._record(detail, self._clock())
        except Exception:  # noqa: BLE001 - the driver is attached whether or not the event was kept
            log.exception("hot-plug: could not record %s", detail.kind)
