"""A driver that fails is restarted and reported; the agent and the other drivers go on."""

from __future__ import annotations

from tests.conftest import eventually
from tests.system.helpers import node_row, stored_events

PADS = [
    {"kind": "rating-pad", "id": "pad-1", "counter": "1", "source": "fake", "bounce": 0},
    {"kind": "rating-pad", "id": "pad-2", "counter": "2", "source": "fake", "bounce": 0},
]


def test_a_crashing_driver_is_restarted_reported_and_alone(server, running_agent, new_node, monkeypatch):
    monkeypatch.setattr("agent.node.Backoff", lambda first, cap: _Quick())
    node = new_node()
    runner = running_agent(node, peripherals=PADS)
    broken, healthy = runner.agent.drivers
    eventually(lambda: runner.call(lambda: runner.agent.link.connected and broken.health().state == "ok"))

    runner.call(lambda: broken.adapter.fail(RuntimeError("firmware said something unexpected")))
    runner.call(lambda: healthy.adapter.press("KEY_KP5"))

    def alarms():
        row = node_row(server, node)
        return ((row.last_health if row else None) or {}).get("alarms", [])

    eventually(lambda: "driver-crashed:pad-1" in alarms() or _alarm_stored(server, node))
    eventually(lambda: runner.call(lambda: broken.health().state) == "ok")
    runner.call(lambda: broken.adapter.press("KEY_KP2"))
    eventually(lambda: sorted(r.rating for r in stored_events(server, node) if r.kind == "rating-tap") == [2, 5])
    eventually(lambda: "driver-crashed:pad-1" not in alarms())
    codes = [(r.detail["code"], r.detail.get("cleared", False))
             for r in stored_events(server, node) if r.kind == "alarm"]
    assert codes == [("driver-crashed:pad-1", False), ("driver-crashed:pad-1", True)]
    crash = next(r for r in stored_events(server, node) if r.kind == "alarm")
    assert "firmware said something unexpected" in crash.detail["message"]


def _alarm_stored(server, node) -> bool:
    return any(r.kind == "alarm" for r in stored_events(server, node))


class _Quick:
    def next(self) -> float:
        return 0.05

    def reset(self) -> None:
        pass
