"""Parts for the fleet-server load benchmarks: a broker with thousands of node
users, the fleet server in process, ``mosquitto_sub`` as the independent
consumer, the load generator as a separate process, and checks on the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from fleet_server.schema import events as stored
from provisioning.mosquitto import SERVER_USERNAME, PrivateBroker, new_password
from provisioning.secret_files import write_secret
from rpfleet import process
from tests.bench.loadgen import Plan

REPO = Path(__file__).resolve().parents[2]
LOAD_NODES = [f"lg-{n:04d}" for n in range(2000)]
MARKER = "lg-marker"
"""A node user that only tells when mosquitto_sub has subscribed."""


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(p / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class LoadBroker:
    """A private Mosquitto with 2,000 node users plus the server's, and a
    credentials file for the generator; how long hashing took is kept."""

    def __init__(self, workdir: Path, nodes: list[str] = LOAD_NODES) -> None:
        users = {SERVER_USERNAME: new_password(), MARKER: new_password()}
        users |= {n: new_password() for n in nodes}
        self.broker = PrivateBroker(workdir / "broker", users)
        self.credentials = write_secret(
            workdir / "nodes.json", json.dumps({n: users[n] for n in nodes})
        )
        self.server_password_file = write_secret(workdir / "server-pw", users[SERVER_USERNAME])
        self.start_s = 0.0

    def start(self) -> "LoadBroker":
        started = time.perf_counter()
        self.broker.start()  # writes and hashes the password file (mosquitto_passwd -U)
        self.start_s = time.perf_counter() - started
        return self

    def stop(self) -> None:
        self.broker.stop()

    @property
    def pid(self) -> int | None:
        proc = self.broker._process
        return proc.pid if proc is not None else None


def discard_session(load: LoadBroker, client_id: str) -> None:
    """End a stopped server's persistent session on the broker: otherwise the
    broker keeps queueing every node message for it (by design, for a server
    that is only restarting), and the next benchmark's load lands there."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(SERVER_USERNAME, load.broker.users[SERVER_USERNAME])
    # clean start and no session expiry: the session ends at this disconnect
    client.connect(load.broker.host, load.broker.port, clean_start=True)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()


def start_server(load: LoadBroker, db_url: str, name: str):
    from fleet_server.service import FleetServer
    from fleet_server.settings import ServerBroker, ServerSettings

    extra = {"http_port": 0} if "http_port" in ServerSettings.model_fields else {}
    settings = ServerSettings(
        **extra,
        db_url=db_url,
        broker=ServerBroker(
            host=load.broker.host, port=load.broker.port,
            password_file=load.server_password_file,
            client_id=f"bench-{name}-{os.getpid()}-{time.monotonic_ns() % 10**9}",
        ),
    )
    fleet = FleetServer(settings)
    fleet.start()
    if not fleet.link.connected.wait(10):
        fleet.stop()
        raise RuntimeError("the fleet server did not connect to the benchmark broker")
    return fleet


class Sub:
    """``mosquitto_sub`` on every node's ``up/`` as the server's user, QoS 1: one
    line per message with the time it arrived (``%U``) and its topic.
    (mosquitto_sub flushes its output after every message.)"""

    def __init__(self, load: LoadBroker, out: Path) -> None:
        self.out = out
        self.load = load
        self.password = load.broker.users[SERVER_USERNAME]
        self.cmd = [
            "mosquitto_sub", "-h", load.broker.host, "-p", str(load.broker.port),
            "-u", SERVER_USERNAME, "-P", self.password,
            "-t", "rp/v1/nodes/+/up/#", "-q", "1", "-F", "%U %t",
        ]
        self.proc: subprocess.Popen | None = None

    @property
    def shown_command(self) -> str:
        return " ".join(
            "'…'" if a == self.password else f"'{a}'" if any(c in a for c in "#+% ") else a
            for a in self.cmd
        )

    def start(self) -> "Sub":
        self._file = open(self.out, "wb")
        self.proc = process.spawn(self.cmd, stdout=self._file, stderr=subprocess.STDOUT)
        # subscribed once a marker published after it started comes through
        b = self.load.broker
        deadline = time.monotonic() + 10
        while b"/lg-marker/" not in self.out.read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                said = self.out.read_text()[-500:]
                raise RuntimeError(f"mosquitto_sub did not subscribe: {said}")
            subprocess.run(
                ["mosquitto_pub", "-h", b.host, "-p", str(b.port),
                 "-u", MARKER, "-P", b.users[MARKER], "-t", f"rp/v1/nodes/{MARKER}/up/health",
                 "-m", "marker", "-q", "1"],
                check=True, timeout=10,
            )
            time.sleep(0.05)
        return self

    def messages(self) -> list[tuple[float, str]]:
        """(arrival wall time, topic) per message received so far."""
        found = []
        with open(self.out, "rb") as f:
            for line in f:
                if line[:1].isdigit() and b"/lg-marker/" not in line:
                    at, _, name = line.decode().rstrip("\n").partition(" ")
                    found.append((float(at), name))
        return found

    def count(self) -> int:
        with open(self.out, "rb") as f:
            return sum(1 for line in f if line[:1].isdigit() and b"/lg-marker/" not in line)

    def wait_for(self, n: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        seen = self.count()
        while seen < n and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = self.count()
        return seen

    def stop(self) -> None:
        if self.proc is not None:
            process.stop(self.proc, timeout=5)
            self.proc = None
            self._file.close()


@dataclass
class Generated:
    """What the load generator reported (see loadgen.Result)."""

    raw: dict

    def __getattr__(self, name: str):
        try:
            return self.raw[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def rate(self) -> float:
        """Events acked per second (firehose: PUBACKed), load start to the last."""
        raw = self.raw
        events = raw["events_acked"] if raw["plan"]["ack"] else raw["events_published"]
        return events / self.raw["elapsed_s"] if self.raw["elapsed_s"] else 0.0

    def latency(self, p: float) -> float:
        return percentile(sorted(self.raw["latencies_ms"]), p)


def run_loadgen(plan: Plan, workdir: Path, name: str, timeout: float | None = None) -> Generated:
    """Run the generator as its own process (its CPU is not the server's) and return its report."""
    plan_file = workdir / f"{name}-plan.json"
    result_file = workdir / f"{name}-result.json"
    plan_file.write_text(json.dumps(asdict(plan)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.loadgen", str(plan_file), str(result_file)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout or plan.max_seconds + 60,
    )
    if not result_file.exists():
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    return Generated(json.loads(result_file.read_text(encoding="utf-8")))


def sub_rate(
    messages: list[tuple[float, str]], started_wall: float, events_per_message: int
) -> tuple[float, float]:
    """(events/s, seconds) mosquitto_sub received, from the load's start to its last message."""
    if not messages:
        return 0.0, 0.0
    span = max(at for at, _ in messages) - started_wall
    return len(messages) * events_per_message / span, span


def store_check(engine: sa.Engine, nodes: list[str], per_node: int, tag: int) -> dict:
    """How many events are stored, how many distinct, and which nodes are short or over."""
    from tests.bench.loadgen import Payloads

    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(stored)).scalar_one()
        distinct = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(stored.c.node_id, stored.c.event_id).distinct().subquery()
            )
        ).scalar_one()
        per = dict(conn.execute(
            sa.select(stored.c.node_id, sa.func.count()).group_by(stored.c.node_id)
        ).all())
        prefix = f"{tag:08x}"
        foreign = conn.execute(
            sa.select(sa.func.count())
            .select_from(stored)
            .where(~stored.c.event_id.startswith(prefix))
        ).scalar_one()
        # every expected id, by seq range: min/max seq per node and the ids' node part
        seq_ok = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(stored.c.node_id)
                .group_by(stored.c.node_id)
                .having(sa.and_(sa.func.min(stored.c.seq) == 1,
                                sa.func.max(stored.c.seq) == per_node,
                                sa.func.count(sa.distinct(stored.c.seq)) == per_node))
                .subquery()
            )
        ).scalar_one()
    payloads = Payloads(tag)
    wrong_ids = 0
    with engine.connect() as conn:
        for index, node in enumerate(nodes[:50]):  # spot check: ids exactly as generated
            query = sa.select(stored.c.event_id).where(stored.c.node_id == node)
            ids = set(conn.execute(query).scalars())
            expected = {payloads.event_id(index, s) for s in range(1, per_node + 1)}
            wrong_ids += len(ids ^ expected)
    return {
        "expected": len(nodes) * per_node,
        "stored": total,
        "distinct": distinct,
        "short_or_over": sorted(n for n in nodes if per.get(n, 0) != per_node)[:10],
        "nodes_complete": seq_ok,
        "foreign_ids": foreign,
        "spot_check_id_mismatches": wrong_ids,
    }


class CpuWatch:
    """CPU seconds used by processes over a stretch of time (from /proc)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, **pids: int | None) -> None:
        self.pids = {k: v for k, v in pids.items() if v}
        self.first = self._read()
        self.t0 = time.monotonic()

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            out[name] = (int(fields[11]) + int(fields[12])) / self.TICK
        return out

    def stop(self) -> dict[str, float]:
        last = self._read()
        wall = time.monotonic() - self.t0
        self.seconds = {k: last[k] - self.first[k] for k in last}
        return {k: round(100 * (last[k] - self.first[k]) / wall, 1) for k in last}


class Sampler(threading.Thread):
    """Samples the machine's CPU (from /proc/stat) while a run goes on."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.busy: list[float] = []
        self._halt = threading.Event()

    @staticmethod
    def _cpu() -> tuple[int, int]:
        parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = parts[3] + parts[4]
        return sum(parts), idle

    def run(self) -> None:
        last = self._cpu()
        while not self._halt.wait(0.5):
            now = self._cpu()
            total, idle = now[0] - last[0], now[1] - last[1]
            if total:
                self.busy.append(100 * (total - idle) / total)
            last = now

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return sum(self.busy) / len(self.busy) if self.busy else 0.0
