"""A driver that fails is restarted and reported; the agent and the other drivers go on."""

from __future__ import annotations

from tests.conftest import eventually
from tests.system.helpers import node_row, stored_events

PADS = [
    {"kind": "rating-pad", "id": "pad-1", "counter": "1", "source": "fake", "bounce": 0},
    {"kind": "rating-pad", "id": "pad-2", "counter": "2", "source": "fake", "bounce": 0},
]


def test_a_crashing_driver_is_restarted_reported_and_alone(server, running_agent, new_node, monkeypatch):
    import asyncio
    import functools

    from agent.supervisor import supervise

    released: list[asyncio.Event] = []

    async def held_sleep(_delay: float) -> None:
        # The restart waits until the test has looked at the crashed state.
        released.append(asyncio.Event())
        await released[-1].wait()

    monkeypatch.setattr("agent.node.supervise", functools.partial(supervise, sleep=held_sleep))
    node = new_node()
    runner = running_agent(node, peripherals=PADS)
    broken, healthy = runner.agent.drivers
    eventually(lambda: runner.call(lambda: runner.agent.link.connected and broken.health().state == "ok"))

    runner.call(lambda: broken.adapter.fail(RuntimeError("firmware said something unexpected")))
    runner.call(lambda: healthy.adapter.press("KEY_KP5"))

    def alarms():
        row = node_row(server, node)
        return ((row.last_health if row else None) or {}).get("alarms", [])

    eventually(lambda: "driver-crashed:pad-1" in alarms())
    assert runner.call(lambda: broken.health().state) == "failed"
    runner.call(lambda: released[0].set())
    eventually(lambda: runner.call(lambda: broken.health().state) == "ok")
    runner.call(lambda: broken.adapter.press("KEY_KP2"))
    eventually(lambda: sorted(r.rating for r in stored_events(server, node) if r.kind == "rating-tap") == [2, 5])
    eventually(lambda: "driver-crashed:pad-1" not in alarms())
    eventually(lambda: [(r.detail["code"], r.detail.get("cleared", False))
                        for r in stored_events(server, node) if r.kind == "alarm"]
               == [("driver-crashed:pad-1", False), ("driver-crashed:pad-1", True)])
    crash = next(r for r in stored_events(server, node) if r.kind == "alarm")
    assert "firmware said something unexpected" in crash.detail["message"]
