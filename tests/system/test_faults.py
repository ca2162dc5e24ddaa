"""Faults injected for real, each followed by what the server stored: every
event exactly once, in order per node (sequences 1..n without a gap, times
non-decreasing with the sequence)."""

from __future__ import annotations

import signal

from tests.conftest import eventually
from tests.system.helpers import node_row, outbox_ids, stored_events, stored_seqs


def assert_exactly_once_in_order(server, node: str, at_least: int) -> None:
    rows = stored_events(server, node)
    seqs = [row.seq for row in rows]
    assert len(seqs) >= at_least
    assert seqs == list(range(1, len(seqs) + 1)), "a gap or a duplicate in the stored sequence"
    assert len({row.event_id for row in rows}) == len(rows)
    times = [row.at for row in rows if row.kind == "rating-tap"]
    assert times == sorted(times)


def press(runner, *codes: str) -> None:
    for code in codes:
        runner.call(lambda c=code: runner.agent.drivers[0].adapter.press(c))


def recorded(server, node: str, state_dir) -> int:
    """Events recorded so far, each once: an event stored whose ack the agent
    has not processed yet is both stored and still in the outbox."""
    return len({row.event_id for row in stored_events(server, node)} | set(outbox_ids(state_dir)))


def test_kill_9_in_the_middle_of_bursts_loses_and_doubles_nothing(server, agent_process, new_node, tmp_path):
    node = new_node()
    for _ in range(6):
        before = recorded(server, node, tmp_path / node)
        agent = agent_process(node, press_every_s=0.01)
        # Let it take a burst of taps, some sent, some only written, then kill it.
        eventually(lambda: recorded(server, node, tmp_path / node) >= before + 20)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    agent_process(node)  # no more presses: drain what was left behind
    eventually(lambda: outbox_ids(tmp_path / node) == [] and stored_seqs(server, node), timeout=60)
    assert_exactly_once_in_order(server, node, at_least=6 * 20)


def test_broker_restarted_without_its_state(server, running_agent, new_node, broker, probe):
    node = new_node()
    runner = running_agent(node)
    eventually(lambda: runner.call(lambda: runner.agent.link.connected))
    press(runner, "KEY_KP5", "KEY_KP4")
    eventually(lambda: len(stored_seqs(server, node)) == 2)

    broker.stop()
    (broker.workdir / "mosquitto.db").unlink(missing_ok=True)  # sessions, subscriptions, retained: gone
    press(runner, "KEY_KP1", "KEY_KP2", "KEY_KP3")
    broker.start()

    eventually(lambda: len(stored_seqs(server, node)) == 5, timeout=60)
    eventually(lambda: runner.call(runner.agent.outbox.pending) == 0)
    assert_exactly_once_in_order(server, node, at_least=5)
    # The node said "online" again, retained, though the broker had forgotten everything.
    watcher = probe("_fleet-server")
    watcher.subscribe(f"rp/v1/nodes/{node}/up/status")
    status = watcher.next()
    assert status.retain and b'"online"' in status.payload
    assert node_row(server, node).state == "online"


def test_no_acks_while_the_server_is_down_then_everything_once(server, running_agent, new_node):
    from fleet_server.service import FleetServer

    node = new_node()
    runner = running_agent(node, ack_timeout=0.5)
    eventually(lambda: runner.call(lambda: runner.agent.link.connected))
    server.stop()
    press(runner, "KEY_KP1", "KEY_KP2", "KEY_KP3", "KEY_KP4")
    # Unacked, the batch goes out again and again; the broker keeps every copy for the server.
    eventually(lambda: runner.call(runner.agent.outbox.pending) == 4)
    eventually(lambda: runner.call(lambda: runner.agent.sender.batches_sent) >= 3)

    revived = FleetServer(server.settings)
    revived.start()
    try:
        eventually(lambda: runner.call(runner.agent.outbox.pending) == 0, timeout=60)
        assert_exactly_once_in_order(revived, node, at_least=4)
        assert [row.rating for row in stored_events(revived, node)] == [1, 2, 3, 4]
        assert revived.ingest.stats.events_duplicate > 0, "the resent copies did arrive"
    finally:
        revived.stop()


def test_a_full_disk_is_an_alarm_and_taps_still_arrive_once(server, running_agent, new_node, small_disk):
    node = new_node()
    runner = running_agent(node, state_dir=small_disk.path / node)
    eventually(lambda: runner.call(lambda: runner.agent.link.connected))
    press(runner, "KEY_KP5")
    eventually(lambda: len(stored_seqs(server, node)) == 1)

    small_disk.fill()
    press(runner, "KEY_KP4", "KEY_KP3")
    eventually(lambda: "disk-full" in (node_row(server, node).last_health or {}).get("alarms", []))
    eventually(lambda: [r.rating for r in stored_events(server, node) if r.kind == "rating-tap"] == [5, 4, 3])
    assert runner.call(lambda: runner.agent.drivers[0].adapter.thanked) == 3

    small_disk.free()
    press(runner, "KEY_KP2")
    eventually(lambda: "disk-full" not in (node_row(server, node).last_health or {}).get("alarms", ["?"]))
    eventually(lambda: runner.call(runner.agent.outbox.pending) == 0)
    assert_exactly_once_in_order(server, node, at_least=4)
    alarms = [(r.detail["code"], r.detail.get("cleared", False))
              for r in stored_events(server, node) if r.kind == "alarm"]
    assert alarms == [("disk-full", False), ("disk-full", True)]
