"""The server's only broker connection: MQTT 5, persistent session, QoS 1."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleet_server.settings import ServerBroker
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Message
from rpfleet.protocol.topics import fleet_up_filter

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600


def _client(b: ServerBroker, client_id: str) -> mqtt.Client:
    """A paho client (MQTT 5) with the server's credentials: a password or its TLS identity."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    password = b.password_file.read_text(encoding="utf-8").strip() if b.password_file else None
    client.username_pw_set(b.username, password)
    if b.tls is not None:
        # Hostname checking stays on: the broker's certificate names the host dialled.
        client.tls_set(
            ca_certs=str(b.tls.ca_file), certfile=str(b.tls.cert_file),
            keyfile=str(b.tls.key_file), tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return client


class ServerLink:
    def __init__(self, broker: ServerBroker, on_message: Callable[[str, bytes, bool], None]) -> None:
        """``on_message(topic, payload, retained)`` runs on paho's thread; ``retained`` is
        true for a retained message replayed on subscribe, false for a live one."""
        self._broker = broker
        self._on_message = on_message
        self._client: mqtt.Client | None = None
        self.connected = threading.Event()
        self._filter = ""

    def start(self) -> None:
        b = self._broker
        client = _client(b, b.client_id)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._connected
        client.on_subscribe = self._subscribed
        client.on_disconnect = self._disconnected
        client.on_message = lambda _c, _u, msg: self._on_message(
            msg.topic, bytes(msg.payload), bool(msg.retain)
        )
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(b.host, b.port, keepalive=30, clean_start=False, properties=properties)
        client.loop_start()
        self._client = client

    def publish(self, node: str, channel: Channel, message: Message, *, retain: bool = False) -> None:
        if self._client is not None:
            self._client.publish(topic(node, channel), message.to_json(), qos=1, retain=retain)

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the server: %s", reason_code)
            return
        sock = client.socket()
        if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
            # paho leaves Nagle on: an ack written just after a PUBACK waited for
            # the broker's delayed TCP ACK, ~40 ms a tap (docs/benchmarks.md).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        filter_ = fleet_up_filter(self._broker.shared_group)
        client.subscribe(filter_, qos=1)
        self._filter = filter_
        log.info("connected to %s:%d", self._broker.host, self._broker.port)

    def _subscribed(self, client, userdata, mid, reason_codes, properties) -> None:
        # Connected means listening: only once the broker has granted the subscription.
        if all(not code.is_failure for code in reason_codes):
            log.info("subscribed to %s", self._filter)
            self.connected.set()
        else:
            log.error("the broker refused the server's subscription: %s", reason_codes)

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        log.warning("disconnected from the broker: %s", reason_code)


class OneShotLink:
    """A short connection for command-line tools (``rpfleet server config``): publishes
    with QoS 1 and, on leaving the ``with`` block, waits for the broker to take every
    message. Its own client id and a clean session, no subscription: the running
    server's session and shared subscription are not disturbed."""

    def __init__(self, broker: ServerBroker, *, timeout_s: float = 10) -> None:
        self._broker = broker
        self._timeout_s = timeout_s
        self._client: mqtt.Client | None = None
        self._sent: list[mqtt.MQTTMessageInfo] = []
        self.connected = threading.Event()

    def __enter__(self) -> "OneShotLink":
        """Connect; raises ConnectionError when the broker cannot be reached in time."""
        b = self._broker
        client = _client(b, f"{b.client_id}-cli-{os.getpid()}")
        client.on_connect = lambda c, u, f, reason_code, p: (
            None if reason_code.is_failure else self.connected.set()
        )
        try:
            client.connect(b.host, b.port, keepalive=30, clean_start=True)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionError(f"cannot reach the broker at {b.host}:{b.port}: {exc}") from exc
        client.loop_start()
        self._client = client
        if not self.connected.wait(self._timeout_s):
            self._close()
            raise ConnectionError(f"the broker at {b.host}:{b.port} did not accept the connection")
        return self

    def publish(self, node: str, channel: Channel, message: Message, *, retain: bool = False) -> None:
        assert self._client is not None, "publish inside the with block"
        self._sent.append(
            self._client.publish(topic(node, channel), message.to_json(), qos=1, retain=retain)
        )

    def __exit__(self, *exc_info: object) -> None:
        """Raises ConnectionError if the broker did not take every message in time."""
        try:
            for info in self._sent:
                try:
                    info.wait_for_publish(self._timeout_s)
                except (RuntimeError, ValueError):
                    pass  # counted below
            lost = sum(1 for info in self._sent if not info.is_published())
        finally:
            self._close()
        if lost and exc_info[0] is None:
            raise ConnectionError(f"the broker did not take {lost} of {len(self._sent)} message(s)")

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
