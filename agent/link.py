"""The agent's only connection to the broker: the one module that owns the paho client.

paho runs its network loop in its own thread; every callback is handed over to
the agent's asyncio loop, so agent code never runs on paho's thread. Publishing
from the asyncio thread is safe: paho's `publish` takes its own locks.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.settings import BrokerSettings
from rpfleet.protocol import Channel, TopicError, parse, topic
from rpfleet.protocol.messages import Message, Status
from rpfleet.protocol.topics import node_filter

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600


class Link:
    def __init__(
        self,
        node_id: str,
        broker: BrokerSettings,
        agent_version: str,
        on_connected: Callable[[], None],
        on_message: Callable[[Channel, bytes], None],
    ) -> None:
        self.node_id = node_id
        self._broker = broker
        self._agent_version = agent_version
        self._on_connected = on_connected
        self._on_message = on_message
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self.connected = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        v5 = self._broker.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.node_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        client.username_pw_set(self._broker.username or self.node_id, self._password())
        client.will_set(
            topic(self.node_id, Channel.STATUS),
            Status(node=self.node_id, state="offline").to_json(),
            qos=1,
            retain=True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._received
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(
            self._broker.host,
            self._broker.port,
            keepalive=round(self._broker.keepalive),
            clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        client.loop_start()
        self._client = client

    def publish(self, channel: Channel, message: Message, *, retain: bool = False) -> bool:
        """Publish with QoS 1; False when not connected (the caller retries later)."""
        if not self.connected or self._client is None:
            return False
        info = self._client.publish(
            topic(self.node_id, channel), message.to_json(), qos=1, retain=retain
        )
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    async def stop(self) -> None:
        """Say ``offline`` (retained) and disconnect; safe to call twice."""
        client, self._client = self._client, None
        if client is None:
            return
        if self.connected:
            info = client.publish(
                topic(self.node_id, Channel.STATUS),
                Status(node=self.node_id, state="offline", agent_version=self._agent_version)
                .to_json(),
                qos=1,
                retain=True,
            )
            try:
                await asyncio.to_thread(info.wait_for_publish, 3)
            except (RuntimeError, ValueError):
                log.warning("could not confirm the offline status before disconnecting")
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self.connected = False

    def _password(self) -> str | None:
        path = self._broker.password_file
        return path.read_text(encoding="utf-8").strip() if path else None

    # paho's thread -------------------------------------------------------

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        client.subscribe(node_filter(self.node_id, "down"), qos=1)
        client.publish(
            topic(self.node_id, Channel.STATUS),
            Status(node=self.node_id, state="online", agent_version=self._agent_version).to_json(),
            qos=1,
            retain=True,
        )
        self._to_loop(self._set_connected, True)

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        self._to_loop(self._set_connected, False)

    def _received(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            where = parse(message.topic)
        except TopicError as exc:
            log.warning("ignoring message: %s", exc)
            return
        if where.node != self.node_id or where.channel.is_up:
            log.warning("ignoring message on another node's topic %s", message.topic)
            return
        self._to_loop(self._on_message, where.channel, bytes(message.payload))

    def _to_loop(self, fn: Callable[..., None], *args: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            log.info("broker %s", "connected" if connected else "disconnected")
        self.connected = connected
        if connected:
            self._on_connected()
