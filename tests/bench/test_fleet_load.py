"""Fleet-server load benchmarks (`make bench`): live taps, drain after an outage,
and the reconnect storm, each run twice on the same broker in one test:

1. ``mosquitto_sub`` alone: the load generator sends the same messages without
   waiting for any ack (nobody acks), and ``mosquitto_sub`` on ``up/#`` as the
   server's user counts what arrives and when: what the broker and a C client
   do with this load on this machine.
2. the fleet server (in this process, on SQLite or PostgreSQL) with
   ``mosquitto_sub`` listening beside it: nodes wait for the server's
   end-to-end acks, as agents do; the rate counts events stored and acked.

Simulated nodes run in a separate process (tests/bench/loadgen.py), each on its
own MQTT connection with its own credentials, loopback only, bounded in count
and time. Figures are printed, appended to .benchmarks/fleet_load.jsonl and
written down in docs/benchmarks.md; only counts (nothing lost, nothing doubled)
are asserted, never a clock.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from pathlib import Path

import pytest

from tests.bench.fleetload import (
    LOAD_NODES,
    REPO,
    CpuWatch,
    LoadBroker,
    Sampler,
    Sub,
    discard_session,
    percentile,
    run_loadgen,
    start_server,
    store_check,
    sub_rate,
)
from tests.bench.loadgen import Plan

pytestmark = pytest.mark.bench

RESULTS = REPO / ".benchmarks" / "fleet_load.jsonl"


@pytest.fixture(scope="module")
def load_broker(tmp_path_factory):
    """The broker as provisioning configures it, with 2,000 node users."""
    load = LoadBroker(tmp_path_factory.mktemp("load")).start()
    print(f"\nbroker with {len(LOAD_NODES) + 2} users started in {load.start_s:.2f}s "
          "(password file hashed by mosquitto_passwd -U)")
    yield load
    load.stop()


@pytest.fixture(scope="module")
def nagle_broker(tmp_path_factory):
    """The same broker without ``set_tcp_nodelay true`` (as provisioning made it
    before commit 3b8637c), to show what Nagle does to tap->ack latency."""
    from provisioning import mosquitto

    shipped = mosquitto.render_config
    mosquitto.render_config = lambda **kw: shipped(**kw).replace("set_tcp_nodelay true\n", "")
    try:
        load = LoadBroker(tmp_path_factory.mktemp("load-nagle")).start()
    finally:
        mosquitto.render_config = shipped
    yield load
    load.stop()


def report(capsys, name: str, figures: dict) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    figures = {"bench": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "host": platform.node(), **figures}
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(figures) + "\n")
    with capsys.disabled():
        print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()
                                          if k not in ("bench", "at", "host")))


def tag() -> int:
    return random.randrange(1, 2**32)


def alone(
    load: LoadBroker, tmp: Path, plan: Plan, events_per_message: int, *, pair_sends: bool = False
) -> dict:
    """Phase 1: the same load, no server, mosquitto_sub the only consumer."""
    sub = Sub(load, tmp / "alone.txt").start()
    try:
        sampler = Sampler()
        sampler.start()
        gen = run_loadgen(plan, tmp, "alone")
        busy = sampler.stop()
        seen = sub.wait_for(gen.published, 60)
        messages = sub.messages()
    finally:
        sub.stop()
    rate, span = sub_rate(messages, gen.started_wall, events_per_message)
    out = {
        "sub_alone_messages": seen, "sub_alone_expected": gen.published,
        "sub_alone_events_per_s": round(rate), "sub_alone_s": round(span, 2),
        "gen_alone_cpu_s": round(gen.cpu_s, 2), "alone_machine_busy_pct": round(busy),
    }
    if pair_sends:  # one-way delivery latency: k-th send of a node -> k-th arrival of its topic
        arrivals: dict[str, list[float]] = {}
        for at, name in messages:
            arrivals.setdefault(name.split("/")[3], []).append(at)
        delays = sorted(
            (got - sent) * 1000
            for node, sends in gen.sends.items()
            for sent, got in zip(sends, arrivals.get(node, []))
        )
        out |= {"sub_alone_latency_p50_ms": round(percentile(delays, 50), 2),
                "sub_alone_latency_p99_ms": round(percentile(delays, 99), 2)}
    return out


class WithServer:
    """Phase 2: the fleet server, mosquitto_sub beside it, the load with acks."""

    def __init__(self, load: LoadBroker, tmp: Path, db_url: str, name: str) -> None:
        self.load, self.tmp = load, tmp
        self.sub = Sub(load, tmp / "beside.txt").start()
        self.server = start_server(load, db_url, name)

    def run(self, plan: Plan, events_per_message: int) -> tuple[object, dict]:
        watch = CpuWatch(server=os.getpid(), broker=self.load.pid, sub=self.sub.proc.pid)
        sampler = Sampler()
        sampler.start()
        gen = run_loadgen(plan, self.tmp, "server")
        busy = sampler.stop()
        cpu = watch.stop()
        seen = self.sub.wait_for(gen.published, 30)
        rate, _ = sub_rate(self.sub.messages(), gen.started_wall, events_per_message)
        ours = sum(cpu.values()) + 100 * gen.cpu_s / max(gen.elapsed_s + gen.connect_s, 1e-9)
        stats = self.server.ingest.stats
        done = gen.events_acked or 1
        return gen, {
            "server_cpu_us_per_event": round(1e6 * watch.seconds.get("server", 0) / done, 1),
            "broker_cpu_us_per_event": round(1e6 * watch.seconds.get("broker", 0) / done, 1),
            "gen_cpu_us_per_event": round(1e6 * gen.cpu_s / done, 1),
            "server_cpu_pct": cpu.get("server"), "broker_cpu_pct": cpu.get("broker"),
            "sub_cpu_pct": cpu.get("sub"), "gen_cpu_s": round(gen.cpu_s, 2),
            "machine_busy_pct": round(busy),
            "others_cpu_pct": max(0, round(2 * busy - ours)),
            "sub_beside_messages": seen, "sub_beside_events_per_s": round(rate),
            "commits": stats.commits, "server_duplicates": stats.events_duplicate,
        }

    def close(self) -> None:
        self.server.stop()
        discard_session(self.load, self.server.settings.broker.client_id)
        self.sub.stop()


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count()}


# 1. live taps ---------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_live_taps_throughput(load_broker, db_url, tmp_path, capsys):
    """1,000 nodes, one tap per message, each node sending its next tap as soon
    as the previous one is acked: the stored-and-acked rate."""
    nodes, taps = 1000, 20
    base = dict(host=load_broker.broker.host, port=load_broker.broker.port,
                credentials=str(load_broker.credentials), nodes=nodes, events_per_node=taps,
                batch_size=1, max_seconds=180)
    first = alone(load_broker, tmp_path, Plan(**base, ack=False, tag=tag()), 1)
    run_tag = tag()
    side = WithServer(load_broker, tmp_path, db_url, "live")
    try:
        gen, figures = side.run(Plan(**base, ack=True, tag=run_tag), 1)
    finally:
        side.close()
    check = store_check(side.server.engine, LOAD_NODES[:nodes], taps, run_tag)
    report(capsys, f"live taps throughput [{side.server.engine.dialect.name}]", {
        "nodes": nodes, "taps": nodes * taps, "events_per_s": round(gen.rate),
        "elapsed_s": round(gen.elapsed_s, 2), "ratio_to_sub_alone":
            round(gen.rate / first["sub_alone_events_per_s"], 3),
        "batch_latency_p50_ms": round(gen.latency(50), 1),
        "batch_latency_p99_ms": round(gen.latency(99), 1),
        "resends": gen.resends, "connect_s": round(gen.connect_s, 2),
        **first, **figures, "store": check, "errors": gen.errors[:5], **machine(),
    })
    assert gen.completed, gen.errors
    assert check["stored"] == check["distinct"] == nodes * taps
    assert check["nodes_complete"] == nodes


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "broker_kind,db_url,rate",
    [
        ("shipped", "sqlite", 33), ("shipped", "sqlite", 333), ("shipped", "postgresql", 333),
        ("nagle", "sqlite", 33),
    ],
    indirect=["db_url"],
)
def test_live_tap_latency(request, broker_kind, db_url, rate, tmp_path, capsys):
    """Tap→ack latency at Hanoi's pace (2,000 nodes x 1 tap/min = 33/s) and ten
    times that, taps arriving at random (Poisson) at 1,000 connected nodes."""
    load_broker = request.getfixturevalue(
        "load_broker" if broker_kind == "shipped" else f"{broker_kind}_broker"
    )
    nodes, duration = 1000, 15
    base = dict(host=load_broker.broker.host, port=load_broker.broker.port,
                credentials=str(load_broker.credentials), nodes=nodes, mode="rate",
                rate_per_s=rate, duration_s=duration, batch_size=100, max_seconds=90)
    plan = Plan(**base, ack=False, tag=tag(), record_sends=True, seed=7)
    first = alone(load_broker, tmp_path, plan, 1, pair_sends=True)
    side = WithServer(load_broker, tmp_path, db_url, "latency")
    try:
        gen, figures = side.run(Plan(**base, ack=True, tag=tag(), seed=7), 1)
    finally:
        side.close()
    where = f"{side.server.engine.dialect.name}, {broker_kind} broker"
    report(capsys, f"live tap latency {rate}/s [{where}]", {
        "nodes": nodes, "taps": gen.events_acked,
        "tap_to_ack_p50_ms": round(gen.latency(50), 2),
        "tap_to_ack_p99_ms": round(gen.latency(99), 2),
        "tap_to_ack_max_ms": round(max(gen.latencies_ms), 2) if gen.latencies_ms else None,
        "over_50ms": sum(1 for v in gen.latencies_ms if v > 50),
        "resends": gen.resends, **first, **figures, "errors": gen.errors[:5], **machine(),
    })
    assert gen.completed, gen.errors
    assert gen.events_acked == gen.events_published


# 2. drain after an outage --------------------------------------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize("batch", [100, 500])
def test_drain_after_outage(load_broker, db_url, batch, tmp_path, capsys):
    """200 nodes come back with 1,000 buffered events each and drain them in
    batches, one batch in flight per node (the agent's Sender)."""
    nodes, per_node = 200, 1000
    base = dict(host=load_broker.broker.host, port=load_broker.broker.port,
                credentials=str(load_broker.credentials), nodes=nodes, events_per_node=per_node,
                batch_size=batch, max_seconds=240)
    first = alone(load_broker, tmp_path, Plan(**base, ack=False, tag=tag()), batch)
    run_tag = tag()
    side = WithServer(load_broker, tmp_path, db_url, "drain")
    try:
        gen, figures = side.run(Plan(**base, ack=True, tag=run_tag, ack_timeout_s=30), batch)
    finally:
        side.close()
    check = store_check(side.server.engine, LOAD_NODES[:nodes], per_node, run_tag)
    report(capsys, f"drain, batches of {batch} [{side.server.engine.dialect.name}]", {
        "nodes": nodes, "events": nodes * per_node, "events_per_s": round(gen.rate),
        "elapsed_s": round(gen.elapsed_s, 2),
        "ratio_to_sub_alone": round(gen.rate / first["sub_alone_events_per_s"], 3),
        "batch_latency_p50_ms": round(gen.latency(50), 1),
        "batch_latency_p99_ms": round(gen.latency(99), 1),
        "resends": gen.resends, **first, **figures, "store": check, "errors": gen.errors[:5],
        **machine(),
    })
    assert gen.completed, gen.errors
    assert check["stored"] == check["distinct"] == nodes * per_node
    assert check["nodes_complete"] == nodes


# 3. the reconnect storm ------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_reconnect_storm(load_broker, db_url, tmp_path, capsys):
    """2,000 nodes with 100 buffered taps each all connect at once, subscribe,
    send their batch and wait for the ack, resending after 15 s (the agent's
    default ack timeout) until it comes."""
    nodes, per_node = 2000, 100
    base = dict(host=load_broker.broker.host, port=load_broker.broker.port,
                credentials=str(load_broker.credentials), nodes=nodes, events_per_node=per_node,
                batch_size=100, storm=True, max_seconds=300)
    first = alone(load_broker, tmp_path, Plan(**base, ack=False, tag=tag()), 100)
    run_tag = tag()
    side = WithServer(load_broker, tmp_path, db_url, "storm")
    try:
        gen, figures = side.run(Plan(**base, ack=True, tag=run_tag, ack_timeout_s=15), 100)
    finally:
        side.close()
    check = store_check(side.server.engine, LOAD_NODES[:nodes], per_node, run_tag)
    report(capsys, f"reconnect storm [{side.server.engine.dialect.name}]", {
        "nodes": nodes, "events": nodes * per_node, "drained_s": round(gen.elapsed_s, 2),
        "events_per_s": round(gen.rate), "all_subscribed_s": round(gen.connect_s, 2),
        "connect_failures": gen.connect_failures,
        "ratio_to_sub_alone": round(gen.rate / first["sub_alone_events_per_s"], 3),
        "batch_latency_p50_ms": round(gen.latency(50), 1),
        "batch_latency_p99_ms": round(gen.latency(99), 1),
        "resends": gen.resends, **first, **figures, "store": check, "errors": gen.errors[:5],
        **machine(),
    })
    assert gen.completed, gen.errors
    assert check["stored"] == check["distinct"] == nodes * per_node, check
    assert check["nodes_complete"] == nodes, check
    assert check["spot_check_id_mismatches"] == 0, check
