"""The agent's only connection to the broker: the one module that owns the paho client.

paho's own thread only runs the network loop; every callback is handed to the
agent's asyncio loop, and every subscribe and publish is made from that loop,
so paho is never called from two threads at once and no callback waits on a
publish (paho-mqtt #354, #613). paho keeps nothing on disk: what must survive
is in the outbox.

Reconnects back off exponentially with full jitter (`agent.backoff`), so two
thousand nodes coming back after a city-wide outage do not arrive together.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.backoff import Backoff
from agent.settings import BrokerSettings
from rpfleet.protocol import Channel, TopicError, parse, topic
from rpfleet.protocol.messages import Message, Status
from rpfleet.protocol.topics import node_filter

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
MAX_QUEUED = 200


class Link:
    def __init__(
        self,
        node_id: str,
        broker: BrokerSettings,
        agent_version: str,
        on_connected: Callable[[], None],
        on_message: Callable[[Channel, bytes], None],
        backoff: Backoff | None = None,
    ) -> None:
        self.node_id = node_id
        self._broker = broker
        self._agent_version = agent_version
        self._on_connected = on_connected
        self._on_message = on_message
        self._backoff = backoff or Backoff(broker.reconnect_min, broker.reconnect_max)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self.connected = False
        self.connects = 0

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
        if self._broker.tls is not None:
            tls = self._broker.tls
            client.tls_set(
                ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file),
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.will_set(topic(self.node_id, Channel.STATUS), self._status("offline"), qos=1, retain=True)
        client.max_queued_messages_set(MAX_QUEUED)
        self._set_next_delay(client)
        client.on_connect = self._connected
        client.on_connect_fail = lambda c, _u: self._set_next_delay(c)
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
        """Publish with QoS 1 from the agent's loop; False when not connected (retry later)."""
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
        was_connected, self.connected = self.connected, False
        if was_connected:
            info = client.publish(
                topic(self.node_id, Channel.STATUS), self._status("offline"), qos=1, retain=True
            )
            try:
                await asyncio.to_thread(info.wait_for_publish, 3)
            except (RuntimeError, ValueError):
                log.warning("could not confirm the offline status before disconnecting")
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    def _status(self, state: str) -> bytes:
        return Status(node=self.node_id, state=state, agent_version=self._agent_version).to_json()

    def _password(self) -> str | None:
        path = self._broker.password_file
        return path.read_text(encoding="utf-8").strip() if path else None

    def _set_next_delay(self, client: mqtt.Client) -> None:
        # paho waits min_delay before its next attempt; we choose that wait each time.
        delay = self._backoff.next()
        client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    # paho's thread: hand over, never publish here -----------------------------

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self._backoff.reset()
        self._to_loop(self._came_online)

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        self._set_next_delay(client)
        self._to_loop(self._went_offline, str(reason_code))

    def _received(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self._to_loop(self._deliver, message.topic, bytes(message.payload))

    def _to_loop(self, fn: Callable[..., None], *args: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    # the agent's loop -------------------------------------------------------

    def _came_online(self) -> None:
        client = self._client
        if client is None:
            return
        # paho does not restore subscriptions after an automatic reconnect.
        client.subscribe(node_filter(self.node_id, "down"), qos=1)
        client.publish(topic(self.node_id, Channel.STATUS), self._status("online"), qos=1, retain=True)
        self.connected = True
        self.connects += 1
        log.info("connected to %s:%d", self._broker.host, self._broker.port)
        self._on_connected()

    def _went_offline(self, reason: str) -> None:
        if self.connected:
            log.warning("disconnected from the broker: %s", reason)
        self.connected = False

    def _deliver(self, name: str, payload: bytes) -> None:
        try:
            where = parse(name)
        except TopicError as exc:
            log.warning("ignoring message: %s", exc)
            return
        if where.node != self.node_id or where.channel.is_up:
            log.warning("ignoring message on topic %s", name)
            return
        self._on_message(where.channel, payload)
