"""Fixtures of the hardware-in-the-loop rig: the guest image (built once per session
when the cache lacks it) and emulated nodes that are always torn down.

On a failing test, the guest's console and agent log are printed in teardown
(pytest shows them with the failure); the files stay under the test's tmp_path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from provisioning.mosquitto import PrivateBroker
from tests.hil.image import Image, ensure_image
from tests.hil.rig import GuestNode


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.failed:
        item.stash.setdefault(_FAILED, set()).add(report.when)
    return report


_FAILED = pytest.StashKey[set]()


@pytest.fixture(scope="session")
def hil_image() -> Image:
    """The guest image of the current tree (seconds from the cache; about a minute cold)."""
    return ensure_image(log=lambda line: print(line, flush=True))


@pytest.fixture
def make_guest(hil_image: Image, broker: PrivateBroker, tmp_path: Path,
               request: pytest.FixtureRequest) -> Iterator[Callable[..., GuestNode]]:
    """Boots emulated nodes whose MQTT reaches the session broker; QEMU always ends.

    ``make_guest(before_boot=fn, **options)``: ``options`` go to `GuestNode`
    (``heads``, ``audio``, ``memory_mb``); ``before_boot(node)`` runs before the
    guest starts, for what must be there at boot (``node.plug_serial(...)``).
    """
    started: list[GuestNode] = []

    def make(before_boot: Callable[[GuestNode], object] | None = None, **options) -> GuestNode:
        node = GuestNode(hil_image, tmp_path / f"guest-{len(started)}",
                         broker=(broker.host, broker.port), **options)
        started.append(node)
        if before_boot is not None:
            before_boot(node)
        return node.start()

    try:
        yield make
    finally:
        failed = bool(request.node.stash.get(_FAILED, set()))
        for node in started:
            if failed:
                _tell(node)
            node.stop()


@pytest.fixture
def guest(make_guest) -> GuestNode:
    """A booted emulated node (no agent running yet)."""
    return make_guest()


def _tell(node: GuestNode) -> None:
    print(f"\n--- {node.workdir}: boot {node.boot_seconds}s, guest console ---")
    print("\n".join(node.console_log().splitlines()[-60:]))
    log = node.agent_log() if node.ready else ""
    if log:
        print("--- agent log (tail) ---")
        print("\n".join(log.splitlines()[-80:]))
