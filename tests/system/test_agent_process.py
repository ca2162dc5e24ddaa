"""The real agent process: presence with Last Will, and kill -9 between write and send."""

from __future__ import annotations

import signal
import subprocess
import sys

from provisioning.mosquitto import free_port
from tests.conftest import eventually
from tests.system.helpers import node_row, outbox_ids, stored_events


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


def test_a_node_that_falls_silent_is_shown_offline_after_one_and_a_half_keepalives(
    server, agent_process, new_node
):
    node = new_node()
    # The environment overrides the file: a 5 s keepalive means offline after 7.5 s of silence.
    agent = agent_process(node, env={"RPFLEET_BROKER__KEEPALIVE": "5s"})
    eventually(lambda: (row := node_row(server, node)) and row.state == "online")
    agent.send_signal(signal.SIGSTOP)  # the cable is pulled: the socket stays open, nothing flows
    try:
        eventually(lambda: node_row(server, node).state == "offline", timeout=30)
    finally:
        agent.send_signal(signal.SIGCONT)
    eventually(lambda: node_row(server, node).state == "online", timeout=60)


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
