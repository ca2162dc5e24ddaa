"""Agent benchmarks (`make bench`): the outbox's durable-write latency, how fast
a real agent process drains a backlog after an outage, and what the agent costs
in memory and CPU. Figures are printed and written down in docs/benchmarks.md;
only counts are asserted, never a clock."""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from agent.outbox import Outbox
from fleet_server.schema import events as stored
from rpfleet import process
from rpfleet.protocol.messages import RatingTap
from tests.conftest import eventually
from tests.system.helpers import node_row

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# helpers ------------------------------------------------------------------------


def filesystem(path: Path) -> tuple[str, str]:
    """(type, device) of the file system holding ``path``, from /proc/self/mounts."""
    best = ("", "?", "?")
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        mount = mount.replace("\\040", " ")
        if (str(path) + "/").startswith(mount.rstrip("/") + "/") and len(mount) >= len(best[0]):
            best = (mount, kind, device)
    return best[1], best[2]


@pytest.fixture
def disk_dir(tmp_path: Path):
    """A directory on a real disk: pytest's tmp dir unless that is in memory (tmpfs),
    then one inside the repository (.pytest_cache is git-ignored)."""
    if filesystem(tmp_path.resolve())[0] not in ("tmpfs", "ramfs"):
        yield tmp_path.resolve()
        return
    import shutil

    path = REPO / ".pytest_cache" / f"bench-disk-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, round(p / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def agent_config(home: Path, broker, node: str, *, press_every_s: float | None = None,
                 **settings: object) -> Path:
    """An agent TOML like a node's (agent.sample.toml defaults) with one fake pad.

    ``bounce = 0`` so every fake press is a tap; the fake pad presses at random
    (exponential gaps) averaging ``press_every_s``.
    """
    home.mkdir(parents=True, exist_ok=True)
    tls = broker.tls_for(node)
    lines = [f'node_id = "{node}"', f'state_dir = "{home / "state"}"']
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in settings.items()]
    lines += [
        "", "[broker]", f'host = "{broker.host}"', f"port = {broker.port}",
        "", "[broker.tls]", f'ca_file = "{tls.ca_file}"', f'cert_file = "{tls.cert_file}"',
        f'key_file = "{tls.key_file}"',
        "", "[[peripherals]]", 'kind = "rating-pad"', 'id = "pad-1"', 'counter = "1"',
        'source = "fake"', "bounce = 0",
    ]
    if press_every_s:
        lines.append(f"fake_press_every = {press_every_s}")
    config = home / "agent.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def start_agent(config: Path) -> subprocess.Popen:
    log = open(config.parent / "agent.log", "ab")
    return process.spawn(
        [sys.executable, "-m", "rpfleet", "agent", "run", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT,
    )


def stored_count(server, node: str) -> int:
    with server.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(stored).where(stored.c.node_id == node)
        ).scalar_one()


def stored_seqs(server, node: str) -> list[int]:
    with server.engine.connect() as conn:
        return list(conn.execute(sa.select(stored.c.seq).where(stored.c.node_id == node)).scalars())


def outbox_seqs(state_dir: Path) -> list[int]:
    path = state_dir / "outbox.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT seq FROM events")]


def outbox_count(state_dir: Path) -> int:
    with sqlite3.connect(f"file:{state_dir / 'outbox.sqlite'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


class Usage:
    """One reading of a process: RSS (MiB) and CPU seconds, its own and its reaped children's."""

    def __init__(self, pid: int) -> None:
        self.at = time.monotonic()
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        self.rss_mb = int(fields["VmRSS"].split()[0]) / 1024
        self.hwm_mb = int(fields["VmHWM"].split()[0]) / 1024
        stat = Path(f"/proc/{pid}/stat").read_text()
        after_name = stat[stat.rindex(")") + 2:].split()  # fields 3.. of proc(5)
        utime, stime, cutime, cstime = (int(v) for v in after_name[11:15])
        self.cpu_s = (utime + stime) / CLK_TCK
        self.children_cpu_s = (cutime + cstime) / CLK_TCK


def cpu_percent(first: Usage, last: Usage, *, children: bool = False) -> float:
    used = last.cpu_s - first.cpu_s
    if children:
        used += last.children_cpu_s - first.children_cpu_s
    return 100 * used / (last.at - first.at)


def assert_nothing_lost(server, node: str, state_dir: Path) -> int:
    """Every sequence the agent gave out is stored at the server or still in the
    outbox, and none is stored twice; returns how many were stored."""
    at_server, waiting = stored_seqs(server, node), outbox_seqs(state_dir)
    assert len(at_server) == len(set(at_server)), "an event stored twice"
    given = set(at_server) | set(waiting)
    assert given == set(range(1, max(given, default=0) + 1)), "a sequence is missing"
    return len(at_server)


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


# 1. outbox: write-to-fsync latency per tap ------------------------------------------------


def test_outbox_record_latency(disk_dir, capsys):
    n = 5_000
    latencies = []
    with Outbox(disk_dir / "outbox.sqlite") as box:
        tap = RatingTap(pad="pad-1", counter="1", rating=5, scale=5)
        for _ in range(n):
            started = time.perf_counter()
            box.record(tap, datetime.now(timezone.utc))
            latencies.append((time.perf_counter() - started) * 1000)
        assert box.pending() == n
    latencies.sort()
    kind, device = filesystem(disk_dir)
    report(capsys, (
        f"outbox record (WAL, synchronous=FULL) on {kind} {device}: {n} taps, "
        f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms, "
        f"max {latencies[-1]:.2f} ms, mean {statistics.fmean(latencies):.2f} ms, "
        f"{sum(1 for v in latencies if v > 20)} over 20 ms"
    ))


# 2. draining 100,000 events after an outage ---------------------------------------------


@pytest.mark.timeout(900)
def test_agent_drains_a_100k_backlog(server, broker, new_node, disk_dir, capsys):
    n = 100_000
    node = new_node()
    home = disk_dir / node
    config = agent_config(home, broker, node, health_interval="30s",
                          batch_size=500, live_slots=10, ack_timeout="30s")

    # The outage: taps recorded by the outbox itself, as the agent would, with no broker.
    filled = time.perf_counter()
    with Outbox(home / "state" / "outbox.sqlite") as box:
        for i in range(n):
            box.record(RatingTap(pad="pad-1", counter="1", rating=1 + i % 5, scale=5),
                       datetime.now(timezone.utc))
        assert box.pending() == n
    filled = time.perf_counter() - filled

    server_cpu = time.process_time()
    started = time.monotonic()
    agent = start_agent(config)
    try:
        first = eventually(lambda: stored_count(server, node) > 0 and time.monotonic(),
                           timeout=120, interval=0.05)
        stored_all = eventually(lambda: stored_count(server, node) >= n and time.monotonic(),
                                timeout=600, interval=0.25)
        emptied = eventually(lambda: outbox_count(home / "state") == 0 and time.monotonic(),
                             timeout=120, interval=0.25)
        agent_usage = Usage(agent.pid)
    finally:
        code = process.stop(agent)
    server_cpu = time.process_time() - server_cpu
    assert code == 0

    assert stored_count(server, node) == n
    assert assert_nothing_lost(server, node, home / "state") == n
    drain = stored_all - first
    report(capsys, (
        f"drain: {n} events (filled in {filled:.1f}s = {n / filled:.0f}/s); agent start -> first "
        f"stored {first - started:.2f}s; first -> all {n} stored {drain:.1f}s = {n / drain:.0f} "
        f"events/s; start -> outbox empty {emptied - started:.1f}s "
        f"(= {n / (emptied - started):.0f} events/s end to end); batch 500, one batch in flight; "
        f"agent CPU {agent_usage.cpu_s:.1f}s, RSS {agent_usage.rss_mb:.1f} MiB "
        f"(peak {agent_usage.hwm_mb:.1f}); server (in the test process) CPU {server_cpu:.1f}s"
    ))


# 3. memory and CPU ---------------------------------------------------------------------------


def sample(pids: dict[str, int], seconds: float, every: float) -> dict[str, list[Usage]]:
    readings = {name: [Usage(pid)] for name, pid in pids.items()}
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(every, left))
        for name, pid in pids.items():
            readings[name].append(Usage(pid))
    return readings


def summary(name: str, readings: list[Usage]) -> str:
    first, last = readings[0], readings[-1]
    rss = [r.rss_mb for r in readings]
    return (
        f"{name}: RSS first {rss[0]:.1f} / last {rss[-1]:.1f} / max {max(rss):.1f} MiB; "
        f"CPU {cpu_percent(first, last):.2f}% of one core, "
        f"{cpu_percent(first, last, children=True):.2f}% with child processes "
        f"over {last.at - first.at:.0f}s"
    )


@pytest.mark.timeout(600)
def test_agent_memory_and_cpu_idle_and_tapping(server, broker, new_node, disk_dir, capsys):
    """Two agents side by side for 60 s: one nobody touches, one tapped about once a second."""
    idle_node, busy_node = new_node(), new_node()
    idle = start_agent(agent_config(disk_dir / idle_node, broker, idle_node))
    busy = start_agent(agent_config(disk_dir / busy_node, broker, busy_node, press_every_s=1))
    try:
        for node in (idle_node, busy_node):
            eventually(lambda: (row := node_row(server, node)) and row.state == "online",
                       timeout=60)
        time.sleep(5)  # past start-up
        readings = sample({"idle": idle.pid, "1 tap/s": busy.pid}, 60, 5)
    finally:
        codes = [process.stop(idle), process.stop(busy)]
    assert codes == [0, 0]

    assert assert_nothing_lost(server, idle_node, disk_dir / idle_node / "state") == 0
    taps = assert_nothing_lost(server, busy_node, disk_dir / busy_node / "state")
    assert taps > 0
    report(capsys, "\n".join([
        summary("agent idle", readings["idle"]),
        summary("agent 1 tap/s", readings["1 tap/s"]) + f"; {taps} taps stored in all",
    ]))


@pytest.mark.timeout(600)
def test_agent_memory_soak(server, broker, new_node, disk_dir, capsys):
    """Three minutes at a tap every 0.2 s on average: does the agent's memory grow?"""
    node = new_node()
    agent = start_agent(agent_config(disk_dir / node, broker, node, press_every_s=0.2))
    try:
        eventually(lambda: (row := node_row(server, node)) and row.state == "online", timeout=60)
        readings = sample({"soak": agent.pid}, 180, 10)["soak"]
    finally:
        code = process.stop(agent)
    assert code == 0
    taps = assert_nothing_lost(server, node, disk_dir / node / "state")
    assert taps > 0
    report(capsys, (
        summary("agent soak 5 taps/s", readings)
        + f"; {taps} taps stored; RSS every 10s: "
        + " ".join(f"{r.rss_mb:.1f}" for r in readings)
    ))
