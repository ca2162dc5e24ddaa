"""Runs each driver in its own task and restarts it when it fails.

A driver that raises is reported and restarted after a jittered back-off; it
never takes the agent or another driver down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from agent.backoff import Backoff
from devices.base import Driver

log = logging.getLogger(__name__)

STABLE_AFTER_S = 60.0
"""A driver that ran this long before failing starts its back-off afresh."""


async def supervise(
    driver: Driver,
    on_crash: Callable[[Driver, BaseException], None],
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    while True:
        started = time.monotonic()
        try:
            await driver.run()
            raise RuntimeError("the driver stopped by itself")
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being stopped
            failure: BaseException = exc  # the driver's own cancelled await: a fault like any
        except Exception as exc:  # noqa: BLE001 - any driver failure is contained here
            failure = exc
        else:  # pragma: no cover - run() above always raises
            continue
        if time.monotonic() - started >= STABLE_AFTER_S:
            backoff.reset()
        delay = backoff.next()
        log.error("driver %s failed (%s: %s); restarting in %.1fs",
                  driver.id, type(failure).__name__, failure, delay, exc_info=failure)
        on_crash(driver, failure)
        await sleep(delay)
