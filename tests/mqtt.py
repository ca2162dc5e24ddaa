"""A small synchronous MQTT client for tests: the independent peer that watches
and pokes the fleet the way a third party would."""

from __future__ import annotations

import queue
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class TlsFiles:
    """The CA a client trusts and the certificate it shows (None: none)."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Probe:
    """An MQTT client that connects as ``username`` (with ``password``) or, with
    ``tls`` (a `TlsFiles`, or anything with its three fields), over TLS."""

    def __init__(self, host: str, port: int, username: str | None = None,
                 password: str | None = None, *, tls=None, client_id: str = "",
                 v5: bool = False) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            Received(m.topic, bytes(m.payload), bool(m.retain))
        )
        self.refused: object = None
        self.client.on_connect_fail = lambda *_: None
        self.host, self.port = host, port

    def connect(self) -> "Probe":
        """Connect and wait for CONNACK; raises ConnectionRefusedError when refused.

        Refused covers a CONNACK that says so and a TLS handshake the broker
        breaks off (with TLS 1.3 the broker judges the client's certificate only
        after the client has finished its side, so that shows as the connection
        closing before any CONNACK).
        """
        result: queue.Queue = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, rc, _p: result.put((rc.is_failure, rc))
        self.client.on_disconnect = lambda _c, _u, _f, rc, _p: result.put((True, rc))
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except (ssl.SSLError, ConnectionError) as exc:
            self.refused = exc
            raise ConnectionRefusedError(f"TLS handshake failed: {exc}") from None
        # Until CONNACK the loop runs here, so that a refused client is not retried.
        deadline = time.monotonic() + 10
        while result.empty():
            if self.client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS and result.empty():
                result.put((True, "connection lost before CONNACK"))
            if time.monotonic() > deadline:
                raise TimeoutError("no CONNACK within 10 s")
        refused, rc = result.get()
        self.client.on_disconnect = None
        if refused:
            self.refused = rc
            raise ConnectionRefusedError(str(rc))
        self.client.loop_start()
        return self

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done: queue.Queue = queue.Queue()
        self.client.on_subscribe = lambda *args: done.put(args)
        self.client.subscribe(topic, qos)
        done.get(timeout=10)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def next(self, timeout: float = 15) -> Received:
        return self.messages.get(timeout=timeout)

    def wait_for(self, predicate, timeout: float = 15) -> Received:
        """The first message satisfying ``predicate``; others are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching message")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                raise TimeoutError("no matching message") from None
            if predicate(message):
                return message

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
