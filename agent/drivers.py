"""The node's running drivers as one set that follows the config.

`DriverSet.apply(configs)` makes the running drivers what ``configs`` lists,
restarting only what changed: a driver whose config is equal (the models are
frozen, so equal means every key equal) keeps running untouched; one that is
gone or changed is stopped (its task cancelled: the driver closes its device
on the way out); one that is new or changed is built and started under
`agent.supervisor.supervise`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, Sequence

from devices.base import Driver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriverChanges:
    stopped: tuple[str, ...]
    """Ids of drivers stopped: removed, or changed (then also in ``started``)."""
    started: tuple[str, ...]
    kept: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.stopped or self.started)


class DriverSet:
    """The current drivers, in config order; indexable and iterable like a list."""

    def __init__(
        self,
        build: Callable[[object], Driver],
        run: Callable[[Driver], Awaitable[None]],
        configs: Sequence[object] = (),
    ) -> None:
        """``build(config)`` makes a driver (not started); ``run(driver)`` serves it until
        cancelled (the agent's supervision). Drivers for ``configs`` are built now and
        started by `start`."""
        self._build = build
        self._run = run
        self._drivers: list[Driver] = [build(config) for config in configs]
        self._tasks: dict[str, asyncio.Task] = {}

    def __iter__(self) -> Iterator[Driver]:
        return iter(list(self._drivers))

    def __len__(self) -> int:
        return len(self._drivers)

    def __getitem__(self, index: int) -> Driver:
        return self._drivers[index]

    def get(self, driver_id: str) -> Driver | None:
        return next((d for d in self._drivers if d.id == driver_id), None)

    def start(self) -> None:
        """Start every driver not running yet (on the running loop)."""
        for driver in self._drivers:
            if driver.id not in self._tasks:
                self._tasks[driver.id] = asyncio.create_task(self._run(driver), name=f"driver {driver.id}")

    async def apply(self, configs: Sequence[object]) -> DriverChanges:
        """Make the running drivers those of ``configs`` (each with an ``id``), restarting
        only the removed, added and changed ones."""
        old = {driver.id: driver for driver in self._drivers}
        new_ids = [getattr(config, "id") for config in configs]
        kept, stopped = [], []
        for driver_id, driver in old.items():
            config = next((c for c in configs if getattr(c, "id") == driver_id), None)
            if config is not None and config == driver.config:
                kept.append(driver_id)
            else:
                stopped.append(driver_id)
        await self._stop(stopped)
        drivers, started = [], []
        for driver_id, config in zip(new_ids, configs):
            if driver_id in kept:
                drivers.append(old[driver_id])
            else:
                drivers.append(self._build(config))
                started.append(driver_id)
        self._drivers = drivers
        self.start()
        changes = DriverChanges(tuple(stopped), tuple(started), tuple(kept))
        if changes.any:
            log.info("drivers: stopped %s, started %s, kept %s", list(stopped) or "none",
                     started or "none", kept or "none")
        return changes

    async def stop(self) -> None:
        """Stop every driver; safe to call twice."""
        await self._stop(list(self._tasks))

    async def _stop(self, ids: list[str]) -> None:
        tasks = [self._tasks.pop(driver_id) for driver_id in ids if driver_id in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
