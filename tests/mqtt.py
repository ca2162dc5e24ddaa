"""A small synchronous MQTT client for tests: the independent peer that watches
and pokes the fleet the way a third party would."""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Probe:
    def __init__(self, host: str, port: int, username: str | None, password: str | None,
                 *, client_id: str = "", v5: bool = False) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            Received(m.topic, bytes(m.payload), bool(m.retain))
        )
        self.refused: object = None
        self.client.on_connect_fail = lambda *_: None
        self.host, self.port = host, port

    def connect(self) -> "Probe":
        """Connect and wait for CONNACK; raises ConnectionRefusedError when refused."""
        result: queue.Queue = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, rc, _p: result.put(rc)
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        rc = result.get(timeout=10)
        if rc.is_failure:
            self.client.loop_stop()
            raise ConnectionRefusedError(str(rc))
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
