"""The node agent daemon: peripherals -> outbox -> link, plus status and health."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from datetime import datetime, timezone

from agent import __version__
from agent.link import Link
from agent.outbox import Outbox
from agent.sender import Sender
from agent.settings import AgentSettings
from devices.base import Driver
from devices.registry import build_driver
from rpfleet.protocol import Channel, PayloadError, decode_as
from rpfleet.protocol.messages import Ack, EventDetail, Health

log = logging.getLogger(__name__)

PUMP_INTERVAL_S = 1.0


class NodeAgent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.outbox = Outbox(settings.outbox_path)
        self.link = Link(
            settings.node_id,
            settings.broker,
            __version__,
            on_connected=self._connected,
            on_message=self._received,
        )
        self.sender = Sender(
            settings.node_id,
            self.outbox,
            lambda batch: self.link.publish(Channel.EVENTS, batch),
            batch_size=settings.batch_size,
            ack_timeout_s=settings.ack_timeout,
        )
        self.drivers: list[Driver] = [build_driver(p, self.record) for p in settings.peripherals]
        self._started = time.monotonic()

    async def record(self, detail: EventDetail, at: datetime) -> None:
        """The `devices.base.Record` handed to every driver."""
        event = self.outbox.record(detail, at)
        log.debug("recorded %s #%d", event.detail.kind, event.seq)
        self.sender.pump()

    async def run(self, stop: asyncio.Event) -> None:
        self.outbox.open()
        log.info(
            "agent %s for node %s, %d event(s) waiting in the outbox",
            __version__,
            self.settings.node_id,
            self.outbox.pending(),
        )
        self.link.start(asyncio.get_running_loop())
        tasks = [asyncio.create_task(d.run(), name=f"driver {d.id}") for d in self.drivers]
        tasks.append(asyncio.create_task(self._pump_forever(), name="pump"))
        tasks.append(asyncio.create_task(self._report_health(), name="health"))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.link.stop()
            self.outbox.close()
            log.info("agent stopped")

    def health(self) -> Health:
        return Health(
            node=self.settings.node_id,
            at=datetime.now(timezone.utc),
            uptime_s=round(time.monotonic() - self._started, 1),
            outbox_pending=self.outbox.pending(),
            agent_version=__version__,
            disk_free_mb=round(shutil.disk_usage(self.settings.state_dir).free / 2**20, 1),
            peripherals=[d.health() for d in self.drivers],
        )

    def _connected(self) -> None:
        self.link.publish(Channel.HEALTH, self.health())
        self.sender.reconnected()

    def _received(self, channel: Channel, payload: bytes) -> None:
        if channel is not Channel.ACK:
            log.debug("no handler yet for %s", channel)
            return
        try:
            ack = decode_as(Ack, payload)
        except PayloadError as exc:
            log.warning("ignoring malformed ack: %s", exc)
            return
        self.sender.acked(ack)

    async def _pump_forever(self) -> None:
        while True:
            await asyncio.sleep(PUMP_INTERVAL_S)
            self.sender.pump()

    async def _report_health(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval)
            self.link.publish(Channel.HEALTH, self.health())
