"""Load generator for the fleet-server benchmarks: many simulated nodes, each on
its own real MQTT connection with its own credentials, all driven by one asyncio
event loop in one process.

    python -m tests.bench.loadgen PLAN.json RESULT.json

Each simulated node does what the agent's Sender does, without the outbox and
drivers: connect as itself (username = client id = node id), subscribe to its
``down/ack``, publish one ``up/events`` batch at a time with QoS 1, wait for the
server's end-to-end ack of every id in it, then send the next; a batch that is
not fully acked within ``ack_timeout_s`` is sent again (the server must store
it once all the same). Payloads are contract ``EventBatch`` messages (checked
against the model once per run).

Modes:
- ``backlog``: every node holds ``events_per_node`` events and sends them in
  batches of ``batch_size`` (1 = one tap per message, as live taps are sent).
  ``storm = true`` skips the barrier: each node publishes as soon as it has
  subscribed, so connecting is part of the measured time.
- ``rate``: taps arrive open-loop (Poisson, ``rate_per_s`` in all) at random
  nodes for ``duration_s``; a node sends a tap at once when nothing of its own
  is in flight, otherwise with the next batch, as the agent does. Gives tap→ack
  latency per tap.
- ``ack = false`` (firehose): no server is expected; every node publishes all
  its batches back to back and is done when the broker has PUBACKed them. This
  is the load that ``mosquitto_sub`` alone receives for the comparison.

Why a minimal client of our own rather than paho: one paho client per node
means a network thread per node (``loop_start``: 2,000 threads on 2 cores,
each waking on its own) or plumbing paho's external-loop calls into a selector
by hand. Here a node is an ``asyncio.Protocol`` on one event loop, with a few
lines of framing for the packets it needs (CONNECT, SUBSCRIBE, QoS 1 PUBLISH
and PUBACK both ways, PINGREQ, DISCONNECT: MQTT 3.1.1, all the contract relies
on) and payloads encoded before the clock starts. Measured: about 95 µs of CPU
per live tap (publish, PUBACK, ack, PUBACK), 1-3 µs per event in batches, and
2,000 connections in under 1.5 s; on a 2-core machine the generator's CPU is
taken from what it measures, so it is reported beside every figure.

Bounded and local: it refuses any host that is not a loopback address, never
runs past ``max_seconds``, and stops by itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import resource
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Event, EventBatch, RatingTap

KEEPALIVE_S = 30


@dataclass
class Plan:
    host: str
    port: int
    credentials: str
    """A JSON file {node id: password}; the nodes are its first ``nodes`` keys, sorted."""
    nodes: int
    mode: str = "backlog"  # backlog | rate
    events_per_node: int = 1
    batch_size: int = 1
    ack: bool = True
    ack_timeout_s: float = 15.0
    storm: bool = False
    rate_per_s: float = 0.0
    duration_s: float = 0.0
    max_seconds: float = 120.0
    seed: int = 1
    tag: int = 0
    """Goes into every event id (8 hex digits), so that runs never share ids."""
    record_sends: bool = False
    """Keep each node's publish times (wall clock), to pair with what mosquitto_sub saw."""


# ---- MQTT 3.1.1 framing --------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, username: str, password: str) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # username, password, clean session
    body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", KEEPALIVE_S)
    body += _str(client_id) + _str(username) + _str(password)
    return b"\x10" + _varint(len(body)) + body


def subscribe_packet(packet_id: int, filter_: str, qos: int = 1) -> bytes:
    body = struct.pack("!H", packet_id) + _str(filter_) + bytes([qos])
    return b"\x82" + _varint(len(body)) + body


def publish_packet(topic_bytes: bytes, packet_id: int, payload: bytes) -> bytes:
    """QoS 1 PUBLISH; ``topic_bytes`` is the length-prefixed topic."""
    body_len = len(topic_bytes) + 2 + len(payload)
    return b"\x32" + _varint(body_len) + topic_bytes + struct.pack("!H", packet_id) + payload


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


# ---- payloads --------------------------------------------------------------------------


class Payloads:
    """Contract-valid EventBatch JSON, built fast from one model-made template."""

    def __init__(self, tag: int) -> None:
        self.tag = tag
        at = datetime.now(timezone.utc)
        template = Event(
            id="0" * 32, seq=1, at=at, clock_synced=True,
            detail=RatingTap(pad="pad-1", counter="5", rating=5, scale=5),
        )
        self._event = json.loads(template.model_dump_json(exclude_none=True))
        self._checked = False

    def event_id(self, node_index: int, seq: int) -> str:
        return f"{self.tag:08x}{node_index:08x}{seq:016x}"

    def batch(
        self, node: str, node_index: int, seqs: list[int], at: datetime | None = None
    ) -> tuple[list[str], bytes]:
        events = []
        stamp = (at or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z")
        ids = []
        for seq in seqs:
            e = dict(self._event)
            e["id"] = eid = self.event_id(node_index, seq)
            e["seq"] = seq
            e["at"] = stamp
            e["detail"] = dict(e["detail"], rating=1 + seq % 5)
            events.append(e)
            ids.append(eid)
        version = EventBatch.model_fields["v"].default
        payload = json.dumps(
            {"v": version, "node": node, "events": events}, separators=(",", ":")
        ).encode()
        if not self._checked:  # once a run: what we send is what the contract says
            EventBatch.model_validate_json(payload)
            self._checked = True
        return ids, payload


# ---- one simulated node -------------------------------------------------------------------


class SimNode(asyncio.Protocol):
    def __init__(self, gen: "Generator", index: int, node: str, password: str) -> None:
        self.gen = gen
        self.index = index
        self.node = node
        self.password = password
        self.topic = _str(topic(node, Channel.EVENTS))
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.packet_id = 1
        self.ready = False
        self.finished = False
        # backlog: prepared batches; rate: taps waiting
        self.batches: list[tuple[list[str], bytes]] = []
        self.next_batch = 0
        self.waiting: list[tuple[int, float]] = []  # rate mode: (seq, arrival monotonic)
        self.seq = 0
        self.in_flight: set[str] = set()
        self.in_flight_payload: bytes = b""
        self.in_flight_taps: list[float] = []  # arrival times of the taps in flight
        self.sent_at = 0.0
        self.first_sent_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.pubacks_due = 0
        self.sends: list[float] = []
        self.connected_at = 0.0

    # transport ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hello = connect_packet(self.node, self.node, self.password)
        transport.write(hello)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.finished and not self.gen.closing:
            self.gen.errors.append(f"{self.node}: connection lost: {exc}")
            self.gen.node_failed(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            header = buf[pos]
            length, mult, i = 0, 1, pos + 1
            while True:
                if i >= end:
                    self.buf = buf[pos:]
                    return
                byte = buf[i]
                length += (byte & 0x7F) * mult
                mult *= 128
                i += 1
                if not byte & 0x80:
                    break
            if i + length > end:
                break
            self.packet(header, buf[i:i + length])
            pos = i + length
        self.buf = buf[pos:]

    def packet(self, header: int, body: bytes) -> None:
        kind = header >> 4
        if kind == 4:  # PUBACK
            self.puback()
        elif kind == 3:  # PUBLISH (an ack from the server)
            qos = (header >> 1) & 3
            tlen = (body[0] << 8) | body[1]
            pos = 2 + tlen
            if qos:
                packet_id = body[pos:pos + 2]
                pos += 2
                self.transport.write(b"\x40\x02" + packet_id)  # type: ignore[union-attr]
            self.acked(body[pos:])
        elif kind == 2:  # CONNACK
            if body[1] != 0:
                self.gen.errors.append(f"{self.node}: CONNACK refused, code {body[1]}")
                self.gen.node_failed(self)
                return
            self.connected_at = time.monotonic()
            self.write(subscribe_packet(self.next_id(), topic(self.node, Channel.ACK), 1))
        elif kind == 9:  # SUBACK
            if body[2] == 0x80:
                self.gen.errors.append(f"{self.node}: SUBACK refused")
                self.gen.node_failed(self)
                return
            self.ready = True
            self.gen.node_ready(self)
        elif kind == 13:  # PINGRESP
            pass

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def next_id(self) -> int:
        pid = self.packet_id
        self.packet_id = pid % 65535 + 1
        return pid

    # sending --------------------------------------------------------------------------
    def publish(self, payload: bytes) -> None:
        self.pubacks_due += 1
        self.write(publish_packet(self.topic, self.next_id(), payload))
        if self.gen.plan.record_sends:
            self.sends.append(time.time())
        self.gen.published += 1

    def start_backlog(self) -> None:
        if not self.gen.plan.ack:  # firehose: everything now
            for _ids, payload in self.batches:
                self.publish(payload)
            self.gen.events_published += sum(len(ids) for ids, _ in self.batches)
            return
        self.send_next()

    def send_next(self) -> None:
        if self.next_batch >= len(self.batches):
            self.finish()
            return
        ids, payload = self.batches[self.next_batch]
        self.next_batch += 1
        self.send(ids, payload)

    def send(self, ids: list[str], payload: bytes) -> None:
        self.in_flight = set(ids)
        self.in_flight_payload = payload
        self.sent_at = self.first_sent_at = time.monotonic()
        self.publish(payload)
        self.gen.events_published += len(ids)
        self.arm()

    def arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.gen.loop.call_later(self.gen.plan.ack_timeout_s, self.timed_out)

    def timed_out(self) -> None:
        """No (complete) ack in time: send the same batch again, as the Sender does."""
        self.timer = None
        if not self.in_flight or self.transport is None:
            return
        self.gen.resends += 1
        self.sent_at = time.monotonic()
        self.publish(self.in_flight_payload)
        self.arm()

    def puback(self) -> None:
        self.pubacks_due -= 1
        self.gen.pubacks += 1
        if not self.gen.plan.ack and self.pubacks_due == 0 and self.next_batch == 0:
            self.next_batch = len(self.batches)
            self.finish()

    def acked(self, payload: bytes) -> None:
        now = time.monotonic()
        self.gen.acks_received += 1
        try:
            ids = json.loads(payload)["ids"]
        except (ValueError, KeyError, TypeError):
            self.gen.errors.append(f"{self.node}: unreadable ack {payload[:80]!r}")
            return
        if not self.in_flight:
            self.gen.stale_acks += 1
            return
        before = len(self.in_flight)
        self.in_flight.difference_update(ids)
        if len(self.in_flight) == before:
            self.gen.stale_acks += 1
            return
        if self.in_flight:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.gen.batch_done(self, now)
        if self.gen.plan.mode == "rate":
            self.send_waiting()
        else:
            self.send_next()

    # rate mode ------------------------------------------------------------------------
    def tap(self, arrival: float) -> None:
        self.seq += 1
        if not self.gen.plan.ack:  # nobody acks: each tap goes out at once, alone
            _ids, payload = self.gen.payloads.batch(self.node, self.index, [self.seq])
            self.publish(payload)
            self.gen.events_published += 1
            return
        self.waiting.append((self.seq, arrival))
        if not self.in_flight and self.ready:
            self.send_waiting()

    def send_waiting(self) -> None:
        if not self.waiting:
            return
        take = self.waiting[: self.gen.plan.batch_size]
        del self.waiting[: len(take)]
        ids, payload = self.gen.payloads.batch(self.node, self.index, [s for s, _ in take])
        self.in_flight_taps = [a for _, a in take]
        self.send(ids, payload)

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.gen.node_finished(self)


# ---- the generator ------------------------------------------------------------------------


@dataclass
class Result:
    plan: dict
    nodes: int = 0
    connected: int = 0
    connect_failures: int = 0
    connect_s: float = 0.0
    """From the first connect attempt until every node had subscribed."""
    started_wall: float = 0.0
    """Wall clock when the load began (storm: the first connect attempt)."""
    ended_wall: float = 0.0
    """Wall clock when the last node was done (all acked; firehose: all PUBACKed)."""
    elapsed_s: float = 0.0
    completed: bool = False
    published: int = 0
    events_published: int = 0
    pubacks: int = 0
    resends: int = 0
    acks_received: int = 0
    stale_acks: int = 0
    batches_acked: int = 0
    events_acked: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    """backlog: each batch, first send to complete ack; rate: each tap, arrival to ack."""
    tapped_at_s: list[float] = field(default_factory=list)
    """rate: when each tap arrived, seconds after the load began (same order as latencies_ms)."""
    cpu_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    sends: dict[str, list[float]] = field(default_factory=dict)


class Generator:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.loop = asyncio.get_running_loop()
        self.closing = False
        self.errors: list[str] = []
        self.payloads = Payloads(plan.tag)
        creds = json.loads(Path(plan.credentials).read_text(encoding="utf-8"))
        names = sorted(creds)[: plan.nodes]
        if len(names) < plan.nodes:
            raise SystemExit(f"only {len(names)} credentials for {plan.nodes} nodes")
        self.nodes = [SimNode(self, i, n, creds[n]) for i, n in enumerate(names)]
        self.ready = 0
        self.failed = 0
        self.finished = 0
        self.all_ready = asyncio.Event()
        self.all_done = asyncio.Event()
        self.published = self.events_published = self.pubacks = 0
        self.resends = self.acks_received = self.stale_acks = 0
        self.batches_acked = self.events_acked = 0
        self.latencies: list[float] = []
        self.tapped_at: list[float] = []  # rate mode: when each tap of `latencies` arrived (s)
        self.started = 0.0
        self.connect_failures = 0
        self.load_started = False

    # bookkeeping --------------------------------------------------------------------------
    def node_ready(self, node: SimNode) -> None:
        self.ready += 1
        if self.plan.storm and self.plan.mode == "backlog":
            node.start_backlog()
        self._check_ready()

    def node_failed(self, node: SimNode) -> None:
        if not node.finished:
            node.finished = True
            self.failed += 1
            self.finished += 1
            self._check_ready()
            self._check_done()

    def _check_ready(self) -> None:
        if self.ready + self.failed >= len(self.nodes):
            self.all_ready.set()

    def node_finished(self, node: SimNode) -> None:
        self.finished += 1
        self._check_done()

    def _check_done(self) -> None:
        if self.finished >= len(self.nodes):
            self.all_done.set()

    def batch_done(self, node: SimNode, now: float) -> None:
        self.batches_acked += 1
        if self.plan.mode == "rate":
            self.events_acked += len(node.in_flight_taps)
            self.latencies.extend((now - a) * 1000 for a in node.in_flight_taps)
            self.tapped_at.extend(a - self.started for a in node.in_flight_taps)
        else:
            self.events_acked += len(node.batches[node.next_batch - 1][0])
            self.latencies.append((now - node.first_sent_at) * 1000)

    # connecting ---------------------------------------------------------------------------
    async def connect(self, node: SimNode, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                await self.loop.create_connection(lambda: node, self.plan.host, self.plan.port)
                return
            except OSError as exc:
                self.connect_failures += 1
                if self.connect_failures <= 5:
                    self.errors.append(f"{node.node}: connect failed: {exc}")
                await asyncio.sleep(random.uniform(0.2, 1.0))
        self.node_failed(node)

    # the run ----------------------------------------------------------------------------
    async def run(self) -> Result:
        plan = self.plan
        random.seed(plan.seed)
        result = Result(plan=asdict(plan), nodes=len(self.nodes))
        if plan.mode == "backlog":
            for node in self.nodes:
                seqs = list(range(1, plan.events_per_node + 1))
                node.batches = [
                    self.payloads.batch(node.node, node.index, seqs[i:i + plan.batch_size])
                    for i in range(0, len(seqs), plan.batch_size)
                ]
        hard_deadline = time.monotonic() + plan.max_seconds
        cpu0 = time.process_time()
        t_connect = time.monotonic()
        if plan.storm:
            result.started_wall = time.time()
            started = t_connect
        pinger = asyncio.create_task(self.ping())
        connecting = [asyncio.create_task(self.connect(n, hard_deadline)) for n in self.nodes]
        try:
            left = max(0.1, hard_deadline - time.monotonic())
            await asyncio.wait_for(self.all_ready.wait(), left)
        except asyncio.TimeoutError:
            self.errors.append(f"only {self.ready} of {len(self.nodes)} nodes subscribed in time")
        result.connect_s = time.monotonic() - t_connect
        result.connected = self.ready
        if not plan.storm:
            result.started_wall = time.time()
            started = self.started = time.monotonic()
            if plan.mode == "backlog":
                for node in self.nodes:
                    if node.ready:
                        node.start_backlog()
            else:
                await self.arrivals(started, hard_deadline)
        if plan.mode == "rate":
            # a node is done once all it was given is acked
            self._finish_idle_rate_nodes()
        try:
            await asyncio.wait_for(self.all_done.wait(), max(0.1, hard_deadline - time.monotonic()))
            result.completed = self.failed == 0
        except asyncio.TimeoutError:
            self.errors.append(f"stopped at max_seconds={plan.max_seconds}: "
                               f"{self.finished} of {len(self.nodes)} nodes done")
        result.ended_wall = time.time()
        result.elapsed_s = time.monotonic() - started
        self.closing = True
        pinger.cancel()
        for task in connecting:
            task.cancel()
        for node in self.nodes:
            if node.timer is not None:
                node.timer.cancel()
            if node.transport is not None:
                node.transport.write(DISCONNECT)
                node.transport.close()
        await asyncio.sleep(0.2)
        result.cpu_s = time.process_time() - cpu0
        result.connect_failures = self.connect_failures
        for name in ("published", "events_published", "pubacks", "resends", "acks_received",
                     "stale_acks", "batches_acked", "events_acked"):
            setattr(result, name, getattr(self, name))
        result.latencies_ms = self.latencies
        result.tapped_at_s = [round(t, 3) for t in self.tapped_at]
        result.errors = self.errors[:50]
        if plan.record_sends:
            result.sends = {n.node: n.sends for n in self.nodes}
        return result

    def _finish_idle_rate_nodes(self) -> None:
        for node in self.nodes:
            if not (node.finished or node.in_flight or node.waiting or node.pubacks_due > 0):
                node.finish()
        if not self.all_done.is_set():
            self.loop.call_later(0.05, self._finish_idle_rate_nodes)

    async def arrivals(self, started: float, hard_deadline: float) -> None:
        """Poisson arrivals at ``rate_per_s`` on random nodes for ``duration_s``."""
        plan = self.plan
        end = min(started + plan.duration_s, hard_deadline)
        ready = [n for n in self.nodes if n.ready]
        next_at = started + random.expovariate(plan.rate_per_s)
        while next_at < end:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            while next_at <= now and next_at < end:
                random.choice(ready).tap(next_at)
                next_at += random.expovariate(plan.rate_per_s)

    async def ping(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S * 2 / 3)
            for node in self.nodes:
                node.write(PINGREQ)


def check_loopback(host: str) -> None:
    for info in socket.getaddrinfo(host, None):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise SystemExit(f"refusing {host}: the load generator only targets loopback addresses")


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        if want < needed:
            raise SystemExit(f"need {needed} file descriptors, the hard limit is {hard}")


async def main_async(plan: Plan) -> Result:
    return await Generator(plan).run()


def run(plan: Plan) -> Result:
    check_loopback(plan.host)
    raise_fd_limit(plan.nodes + 256)
    return asyncio.run(main_async(plan))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    plan = Plan(**json.loads(Path(argv[1]).read_text(encoding="utf-8")))
    result = run(plan)
    Path(argv[2]).write_text(json.dumps(asdict(result)), encoding="utf-8")
    return 0 if result.completed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
