"""Presence when the network fails: real agent processes reach the broker through
relays that the test cuts (silently, as a pulled cable, or with a reset), and
the server must show each cut node offline, and never a talking one.

By default the keepalive and health interval are 5 s and the presence timeout
7.5 s, so that the test is fast: a scale model of the production 30 s / 30 s /
40 s. The figures are printed (run with -s) and written down in
docs/benchmarks.md; nothing here asserts a time.

    RPFLEET_PRESENCE_NODES=24 .venv/bin/python -m pytest tests/system/test_presence_timing.py -s -q

and with the production keepalive and health interval (about 3 minutes):

    RPFLEET_PRESENCE_NODES=24 RPFLEET_PRESENCE_KEEPALIVE=30 RPFLEET_PRESENCE_TIMEOUT=40 \
        .venv/bin/python -m pytest tests/system/test_presence_timing.py -s -q -k cut_nodes
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from datetime import datetime, timedelta

import sqlalchemy as sa

from fleet_server.schema import nodes
from fleet_server.settings import PresenceSettings
from fleet_server.store import utc_now
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Health, Status
from tests.conftest import eventually
from tests.netcut import CuttableLink
from tests.servers import start_server  # noqa: F401 - fixture

KEEPALIVE_S = float(os.environ.get("RPFLEET_PRESENCE_KEEPALIVE", "5"))
"""The agents' keepalive and health interval; 30 s in production (the server's
presence timeout is 1.5 times this, and its sweep period scales with it too)."""
TIMEOUT_S = float(os.environ.get("RPFLEET_PRESENCE_TIMEOUT", str(1.5 * KEEPALIVE_S)))
"""The server's presence timeout: 40 s in production; 1.5 keepalives by default
here, which leaves this busy test machine room for jitter."""
CUT_NODES = int(os.environ.get("RPFLEET_PRESENCE_NODES", "4"))


class PresenceWatch:
    """Polls every node's state in the store, as a console would, and remembers
    when each was first seen offline and whether any was offline while it talked."""

    def __init__(self, engine: sa.Engine, every_s: float = 0.05) -> None:
        self._engine = engine
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.cut_at: dict[str, float] = {}
        self.offline_at: dict[str, float] = {}
        self.by_timeout: set[str] = set()
        """Nodes the sweep showed offline first (state_at is when last heard), not the Will."""
        self.online: set[str] = set()
        self.offline_while_talking: list[tuple[str, float]] = []

    def start(self) -> "PresenceWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._engine.connect() as conn:
                rows = conn.execute(sa.select(nodes.c.id, nodes.c.state, nodes.c.state_at,
                                              nodes.c.last_seen)).all()
            now = time.monotonic()  # after reading: what was read is at least this old
            for node, state, state_at, last_seen in rows:
                if state == "online":
                    self.online.add(node)
                elif state == "offline" and node in self.online:
                    cut = self.cut_at.get(node)
                    if cut is None or cut > now:
                        self.offline_while_talking.append((node, now))
                    elif node not in self.offline_at:
                        self.offline_at[node] = now
                        if state_at == last_seen:
                            self.by_timeout.add(node)
            self._stop.wait(self._every_s)


def healthy_since(engine: sa.Engine, since: datetime, intervals: int = 0) -> set[str]:
    """Nodes whose latest health arrived after ``since`` plus that many health intervals."""
    after = since + timedelta(seconds=intervals * KEEPALIVE_S)
    with engine.connect() as conn:
        return set(conn.execute(sa.select(nodes.c.id).where(nodes.c.last_health_at > after)).scalars())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def forget(probe, node_ids: list[str]) -> None:
    """Clear the nodes' retained statuses, so later tests' servers do not learn of them."""
    for node in node_ids:
        probe(node).publish(topic(node, Channel.STATUS), b"", retain=True)


def test_cut_nodes_show_offline_and_talking_nodes_never_do(
    broker, start_server, agent_process, probe, tmp_path
):
    silent = [f"cut{i:02d}-node" for i in range(CUT_NODES)]
    reset = ["reset01-node", "reset02-node"][:1 if CUT_NODES < 8 else 2]
    talking = ["talk01-node", "talk02-node"][:1 if CUT_NODES < 8 else 2]
    everyone = silent + reset + talking
    server = start_server(
        f"sqlite:///{tmp_path / 'fleet.sqlite'}",
        presence=PresenceSettings(timeout=TIMEOUT_S, sweep_every=2 * KEEPALIVE_S / 30),
    )
    links = {node: CuttableLink(broker.host, broker.port).start() for node in everyone}
    watch = PresenceWatch(server.engine).start()
    start = utc_now()
    try:
        interval = f"{KEEPALIVE_S:g}s"
        env = {"RPFLEET_BROKER__KEEPALIVE": interval, "RPFLEET_HEALTH_INTERVAL": interval}
        for node in everyone:
            agent_process(node, port=links[node].port, env=env,
                          press_every_s=1.0 if node in talking else None)
        eventually(lambda: watch.online >= set(everyone), timeout=60)
        eventually(lambda: len(healthy_since(server.engine, start)) == len(everyone), timeout=60)
        # Cuts spread evenly over one health interval (a pace, not a wait), so
        # that the age of a node's last message at its cut takes every value.
        # In random order: agents started one after the other send health in
        # the same succession, and cutting in that order would cut each at the
        # same point of its interval.
        for node in random.sample(silent + reset, len(silent + reset)):
            watch.cut_at[node] = time.monotonic()
            links[node].cut("reset" if node in reset else "silent")
            time.sleep(KEEPALIVE_S / len(silent + reset))
        last_cut = utc_now()
        eventually(lambda: set(watch.offline_at) >= set(silent + reset), timeout=6 * KEEPALIVE_S)
        # The talking nodes are watched until each has sent health twice more.
        eventually(lambda: set(talking) <= healthy_since(server.engine, last_cut, 2),
                   timeout=4 * KEEPALIVE_S + 30)
    finally:
        watch.stop()
        for link in links.values():
            link.close()
        forget(probe, everyone)

    assert watch.offline_while_talking == []
    assert set(talking) <= watch.online and not set(talking) & set(watch.offline_at)
    delays = {node: watch.offline_at[node] - watch.cut_at[node] for node in silent + reset}
    quiet = [delays[n] for n in silent]
    print(
        f"\npresence, keepalive and health {KEEPALIVE_S:g} s, timeout {TIMEOUT_S:g} s: "
        f"{len(silent)} silent cuts: cut -> shown offline p50 {statistics.median(quiet):.2f} s, "
        f"p95 {percentile(quiet, 0.95):.2f} s, max {max(quiet):.2f} s "
        f"(x{30 / KEEPALIVE_S:g} for 30 s: p95 {30 / KEEPALIVE_S * percentile(quiet, 0.95):.1f} s); "
        f"shown offline first by the health timeout: {len(watch.by_timeout & set(silent))}, "
        f"by the Will: {len(set(silent) - watch.by_timeout)}; "
        f"{len(reset)} reset cuts: max {max(delays[n] for n in reset):.2f} s"
    )


def test_a_node_that_stays_connected_but_says_nothing_is_offline_after_the_timeout(
    broker, start_server, probe, tmp_path
):
    """What the Will cannot see: a hung agent whose MQTT thread still answers pings
    (or a third-party node without a Will). The health timeout catches it."""
    node = "hung01-node"
    server = start_server(f"sqlite:///{tmp_path / 'fleet.sqlite'}",
                          presence=PresenceSettings(timeout=2, sweep_every=0.2))
    eventually(lambda: server.duties.holding)
    peer = probe(node)
    peer.publish(topic(node, Channel.STATUS), Status(node=node, state="online").to_json(), retain=True)
    said = time.monotonic()

    def state() -> str | None:
        with server.engine.connect() as conn:
            return conn.execute(sa.select(nodes.c.state).where(nodes.c.id == node)).scalar()

    eventually(lambda: state() == "online")
    eventually(lambda: state() == "offline", timeout=30)
    silent_for = time.monotonic() - said
    health = Health(node=node, at=utc_now(), uptime_s=60, outbox_pending=0)
    peer.publish(topic(node, Channel.HEALTH), health.to_json())
    eventually(lambda: state() == "online")  # it talks, so it is there
    forget(probe, [node])
    print(f"\nconnected but silent: offline {silent_for:.2f} s after its last message (timeout 2 s)")
