"""Waiting for a device's file descriptor to have something to read, on the event loop."""

from __future__ import annotations

import asyncio


async def wait_readable(fd: int, timeout: float | None = None) -> bool:
    """True once ``fd`` is readable; False if ``timeout`` seconds pass first (None: no limit).

    Uses the loop's selector (``add_reader``), so no thread is held while a device is quiet.
    """
    loop = asyncio.get_running_loop()
    readable = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await asyncio.wait_for(readable, timeout)
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
    return True
