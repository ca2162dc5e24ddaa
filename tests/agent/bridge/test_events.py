"""Scans and status changes pushed to the pages over the real WebSocket, and the local fan-out
behind them: every page gets every scan, and a page that stalls or vanishes holds up nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import websockets

from agent.bridge.page_socket import Page
from agent.local_events import LocalEvents, Missed
from rpfleet.protocol.messages import PeripheralHealth, RatingTap, Scan
from tests.agent.bridge.conftest import ORIGIN, wait_for

AT = datetime(2026, 11, 25, 8, 15, tzinfo=timezone.utc)


def booking(n: int, *, padding: int = 0) -> Scan:
    code = f"IHN-20261125-{n:06d}"
    return Scan(scanner="qr-kiosk", code=code + "X" * padding, code_kind="ihanoi-booking",
                fields={"date": "20261125", "number": f"{n:06d}"}, counter="kiosk-1")


async def listening(running) -> websockets.ClientConnection:
    page = await websockets.connect(running.ws_url, origin=ORIGIN, max_size=None)
    await page.send(json.dumps({"type": "hello", "token": running.token}))
    assert json.loads(await page.recv())["type"] == "ready"
    return page


async def test_every_scan_reaches_every_page_and_nothing_else_does(start_bridge):
    running = start_bridge()
    first, second = await listening(running), await listening(running)
    await wait_for(lambda: running.events.listeners == 2)

    running.events.publish(RatingTap(pad="pad-1", counter="5", rating=5, scale=5), AT)
    running.events.publish(booking(123), AT)

    for page in (first, second):
        said = json.loads(await asyncio.wait_for(page.recv(), 10))
        assert said == {"type": "scan", "at": "2026-11-25T08:15:00Z", "scanner": "qr-kiosk",
                        "code": "IHN-20261125-000123", "code_kind": "ihanoi-booking",
                        "fields": {"date": "20261125", "number": "000123"},
                        "counter": "kiosk-1", "partial": False, "redacted": False}
        await page.close()
    await wait_for(lambda: running.events.listeners == 0)


async def test_a_stalled_page_and_a_vanished_one_hold_up_neither_recording_nor_others(
        start_bridge):
    running = start_bridge()
    stalled = await listening(running)  # never reads until the end
    vanished = await listening(running)
    reader = await listening(running)
    await wait_for(lambda: running.events.listeners == 3)
    vanished.transport.abort()  # gone without a closing handshake, as a crashed tab
    sent = 600

    got = []
    for n in range(sent):
        running.events.publish(booking(n, padding=3000), AT)  # as record() does: never awaits
        got.append(json.loads(await asyncio.wait_for(reader.recv(), 10))["fields"]["number"])

    assert got == [f"{n:06d}" for n in range(sent)]
    await wait_for(lambda: running.events.listeners == 2)  # the vanished page is let go
    async with running.client() as client:
        assert (await client.get("/v1/status")).status_code == 200  # still answering

    # The stalled page gets what was kept for it, in order; all it lost is counted.
    numbers, missed = [], 0
    while not numbers or numbers[-1] != sent - 1:
        said = json.loads(await asyncio.wait_for(stalled.recv(), 10))
        if said["type"] == "missed":
            missed += said["count"]
        else:
            numbers.append(int(said["fields"]["number"]))
    assert numbers == sorted(numbers)
    assert len(numbers) + missed == sent
    await stalled.close()
    await reader.close()


async def test_a_status_change_is_pushed_to_the_pages(start_bridge):
    state = {"scanner": "ok"}
    running = start_bridge(peripherals=lambda: [
        PeripheralHealth(id="qr-kiosk", kind="scanner", state=state["scanner"])])
    page = await listening(running)

    state["scanner"] = "missing"  # unplugged

    said = json.loads(await asyncio.wait_for(page.recv(), 10))
    assert said["type"] == "status"
    assert said["status"]["peripherals"] == [{"id": "qr-kiosk", "kind": "scanner",
                                              "state": "missing"}]
    await page.close()


# ---- the fan-out and a page's queue, without the network ----------------------------------


async def test_a_listener_that_falls_behind_loses_its_oldest_events_and_is_told():
    events = LocalEvents()
    scans = events.subscribe(lambda detail: detail.kind == "scan", backlog=3)
    taps = events.subscribe(lambda detail: detail.kind == "rating-tap")

    for n in range(5):
        events.publish(booking(n), AT)
    events.publish(RatingTap(pad="pad-1", counter="5", rating=4, scale=5), AT)
    scans.close()
    scans.close()  # twice is harmless

    seen = [item if isinstance(item, Missed) else item.detail.fields["number"]
            async for item in scans]
    assert seen == [Missed(2), "000002", "000003", "000004"]
    assert events.listeners == 1
    taps.close()
    assert [item.detail.rating async for item in taps] == [4]


async def test_a_failing_listener_never_reaches_the_publisher():
    events = LocalEvents()
    events.subscribe(lambda detail: 1 / 0)
    kept = events.subscribe()

    events.publish(booking(1), AT)  # does not raise
    kept.close()

    assert [item.detail.code async for item in kept] == ["IHN-20261125-000001"]


async def test_a_page_queue_keeps_the_newest_and_counts_the_rest():
    page = Page(backlog=2)
    for text in ("a", "b", "c", "d"):
        page.push(text)

    assert [await page.next() for _ in range(3)] == ['{"type":"missed","count":2}', "c", "d"]
