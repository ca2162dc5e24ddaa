"""The real agent process: presence with Last Will, and kill -9 between write and send."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.mosquitto import free_port
from provisioning.secret_files import write_secret
from rpfleet import process
from rpfleet.demo.fleet import agent_toml
from tests.conftest import eventually
from tests.system.helpers import node_row, stored_events


def outbox_ids(state_dir: Path) -> list[str]:
    path = state_dir / "outbox.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT id FROM events ORDER BY seq")]


@pytest.fixture
def agent_process(tmp_path: Path, broker):
    started: list[subprocess.Popen] = []

    def start(node: str, *, port: int | None = None, press_every_s: float | None = None):
        config = tmp_path / f"{node}.toml"
        config.write_text(
            agent_toml(node, "5", port or broker.port,
                       write_secret(tmp_path / f"{node}.pw", broker.users[node]),
                       tmp_path / node, press_every_s),
            encoding="utf-8",
        )
        proc = process.spawn(
            [sys.executable, "-m", "rpfleet", "agent", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{node}.log", "ab"),
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        process.stop(proc)


def test_presence_follows_the_agent_through_a_crash_and_a_clean_stop(server, agent_process, new_node):
    node = new_node()
    agent = agent_process(node)
    eventually(lambda: (row := node_row(server, node)) and row.state == "online")

    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    eventually(lambda: node_row(server, node).state == "offline")  # the Last Will

    agent = agent_process(node)
    eventually(lambda: node_row(server, node).state == "online")
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(20) == 0
    eventually(lambda: node_row(server, node).state == "offline")


def test_taps_written_but_not_sent_survive_kill_9_and_arrive_once(server, agent_process, new_node, tmp_path):
    node = new_node()
    # No broker on this port: taps are written to the outbox and cannot leave.
    offline = agent_process(node, port=free_port(), press_every_s=0.05)
    eventually(lambda: len(outbox_ids(tmp_path / node)) >= 3)
    offline.send_signal(signal.SIGKILL)
    offline.wait(10)
    waiting = outbox_ids(tmp_path / node)

    agent_process(node)  # same state dir, now with the broker and no more presses
    eventually(lambda: outbox_ids(tmp_path / node) == [])
    assert [row.event_id for row in stored_events(server, node)] == waiting


def test_a_bad_config_file_names_the_field_and_exits_non_zero(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('node_id = "Bad/Id"\nhealth_interval = "soon"\nwho = 1\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "rpfleet", "agent", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "node_id: 'Bad/Id'" in result.stderr
    assert "health_interval: 'soon' is not a valid duration" in result.stderr
    assert "who: unknown key" in result.stderr
