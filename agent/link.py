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
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.backoff import Backoff
from agent.settings import BrokerSettings, TlsSettings
from rpfleet.protocol import Channel, TopicError, parse, topic
from rpfleet.protocol.messages import Message, Status
from rpfleet.protocol.topics import node_filter

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
MAX_QUEUED = 200


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """Mutual TLS: trust only the fleet CA, check the broker's name, show the node's certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


def new_client(
    broker: BrokerSettings,
    node_id: str,
    *,
    client_id: str,
    persistent: bool,
    context: ssl.SSLContext | None = None,
) -> mqtt.Client:
    """A paho client that logs in as ``node_id`` the way ``broker`` says: MQTT version,
    password file or mutual TLS (``context``, else one made from ``broker.tls``).
    ``persistent``: the broker keeps the session (MQTT 3.1.1; an MQTT 5 caller asks
    for it when it connects); otherwise it is clean."""
    v5 = broker.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
    )
    path = broker.password_file
    password = path.read_text(encoding="utf-8").strip() if path else None
    client.username_pw_set(broker.username or node_id, password)
    if broker.tls is not None:
        client.tls_set_context(context or tls_context(broker.tls))
    return client


class Receipt:
    """One QoS 1 publish: ``acked`` turns True once the broker acknowledged it (PUBACK).
    paho resends it after a reconnect of the same session; polling is race-free where a
    callback could come before the caller knew the message id."""

    def __init__(self, info: mqtt.MQTTMessageInfo) -> None:
        self._info = info

    @property
    def acked(self) -> bool:
        return self._info.is_published()


class Link:
    def __init__(
        self,
        node_id: str,
        broker: BrokerSettings,
        agent_version: str,
        on_connected: Callable[[], None],
        on_message: Callable[[Channel, bytes], None],
        backoff: Backoff | None = None,
        on_failed: Callable[[str], None] | None = None,
    ) -> None:
        """``on_failed(why)``: a connection attempt failed or the broker refused it (on the loop)."""
        self.node_id = node_id
        self._broker = broker
        self._agent_version = agent_version
        self._on_connected = on_connected
        self._on_message = on_message
        self._on_failed = on_failed or (lambda why: None)
        self._backoff = backoff or Backoff(broker.reconnect_min, broker.reconnect_max)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._tls: ssl.SSLContext | None = None
        self.connected = False
        self.connects = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        v5 = self._broker.protocol == "5"
        self._tls = tls_context(self._broker.tls) if self._broker.tls else None
        client = new_client(
            self._broker, self.node_id, client_id=self.node_id, persistent=True, context=self._tls
        )
        client.will_set(topic(self.node_id, Channel.STATUS), self._status("offline"), qos=1, retain=True)
        client.max_queued_messages_set(MAX_QUEUED)
        self._set_next_delay(client)
        client.on_connect = self._connected
        client.on_connect_fail = self._connect_failed
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
        return self.send(channel, message, retain=retain) is not None

    def send(self, channel: Channel, message: Message, *, retain: bool = False) -> Receipt | None:
        """`publish`, returning a `Receipt` that tells when the broker took the message
        (its PUBACK); None when not connected or paho refused it."""
        if not self.connected or self._client is None:
            return None
        info = self._client.publish(
            topic(self.node_id, channel), message.to_json(), qos=1, retain=retain
        )
        return Receipt(info) if info.rc == mqtt.MQTT_ERR_SUCCESS else None

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

    def reload_identity(self) -> None:
        """Use the renewed certificate and key from the next connection on.

        The connection that is up stays up: the broker checked the old
        certificate at its handshake and does not look again.
        """
        tls = self._broker.tls
        if self._tls is not None and tls is not None:
            self._tls.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            log.info("broker connections use the renewed certificate from now on")

    def _status(self, state: str) -> bytes:
        return Status(node=self.node_id, state=state, agent_version=self._agent_version).to_json()

    def _set_next_delay(self, client: mqtt.Client) -> None:
        # paho waits min_delay before its next attempt; we choose that wait each time.
        delay = self._backoff.next()
        client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    # paho's thread: hand over, never publish here -----------------------------

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            self._to_loop(self._on_failed, f"the broker refused the connection: {reason_code}")
            return
        self._backoff.reset()
        self._to_loop(self._came_online)

    def _connect_failed(self, client, userdata) -> None:
        self._set_next_delay(client)
        where = f"{self._broker.host}:{self._broker.port}"
        self._to_loop(self._on_failed, f"could not connect to the broker at {where}")

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


# A one-shot sender for tools that run beside (or instead of) the agent --------


@dataclass(frozen=True)
class Delivery:
    confirmed: bool
    detail: str
    """What happened, for a person: confirmed, refused, unreachable or unanswered."""


async def publish_confirmed(
    node_id: str,
    broker: BrokerSettings,
    channel: Channel,
    message: Message,
    *,
    client_id: str,
    confirms: Callable[[bytes], bool],
    timeout: float,
) -> Delivery:
    """Publish ``message`` once (QoS 1) on a connection of its own, and wait for a
    ``down/ack`` payload that ``confirms`` accepts; give up ``timeout`` seconds after
    starting. ``confirmed`` is True only when that answer came.

    ``client_id`` must differ from the node id, and the session is clean, so a
    running agent's session is neither taken over nor disturbed. The answer is
    subscribed to before the message goes out, so it cannot come first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    connected, subscribed, answered = asyncio.Event(), asyncio.Event(), asyncio.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        loop.call_soon_threadsafe(connected.set)

    def on_message(client, userdata, msg: mqtt.MQTTMessage) -> None:
        if confirms(bytes(msg.payload)):
            loop.call_soon_threadsafe(answered.set)

    client = new_client(broker, node_id, client_id=client_id, persistent=False)
    client.on_connect = on_connect
    client.on_subscribe = lambda *_: loop.call_soon_threadsafe(subscribed.set)
    client.on_message = on_message
    client.connect_async(broker.host, broker.port, keepalive=round(broker.keepalive))
    client.loop_start()
    where = f"{broker.host}:{broker.port}"
    try:
        if not await _before(deadline, connected):
            return Delivery(False, f"could not reach the broker at {where} within {timeout:g}s")
        if refused:
            return Delivery(False, f"the broker at {where} refused the connection: {refused[0]}")
        client.subscribe(topic(node_id, Channel.ACK), qos=1)
        if not await _before(deadline, subscribed):
            return Delivery(False, f"the broker at {where} did not answer within {timeout:g}s")
        client.publish(topic(node_id, channel), message.to_json(), qos=1)
        if not await _before(deadline, answered):
            return Delivery(False, f"the server did not confirm within {timeout:g}s")
        return Delivery(True, "confirmed by the server")
    finally:
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)


async def _before(deadline: float, event: asyncio.Event) -> bool:
    left = deadline - asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(event.wait(), max(0.0, left))
    except asyncio.TimeoutError:
        return False
    return True
