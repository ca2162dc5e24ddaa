"""Fixtures of the hardware-in-the-loop rig: the guest image (built once per session
when the cache lacks it) and emulated nodes that are always torn down.

A boot costs 10-20 s under TCG, so a module whose scenarios can share one node
uses `shared_guest` (booted once per module; the module says what must be
plugged at boot by overriding `shared_guest_setup`) rather than `guest` (booted
per test). `shared_node` is a node id with broker credentials for that module.

On a failing test, the guest's console and agent log are printed in teardown
(pytest shows them with the failure); the files stay under the test's tmp_path
(``tmp_path_factory``'s ``shared-guest*`` directory for a shared guest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from provisioning.mosquitto import PrivateBroker
from tests.conftest import NODE_POOL, _next_node
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


@pytest.fixture(scope="module")
def shared_guest_setup() -> tuple[Callable[[GuestNode], object] | None, dict]:
    """``(before_boot, options)`` of the module's `shared_guest`, as `make_guest` takes
    them; a module overrides this fixture to plug serial adapters at boot."""
    return None, {}


@pytest.fixture(scope="module")
def shared_guest(hil_image: Image, broker: PrivateBroker, tmp_path_factory: pytest.TempPathFactory,
                 shared_guest_setup) -> Iterator[GuestNode]:
    """One emulated node booted for all the tests of a module (whose MQTT reaches the
    session broker); QEMU always ends after the module's last test. Tests leave it
    as they found it: what they plug, they unplug."""
    before_boot, options = shared_guest_setup
    node = GuestNode(hil_image, tmp_path_factory.mktemp("shared-guest"),
                     broker=(broker.host, broker.port), **options)
    try:
        if before_boot is not None:
            before_boot(node)
        yield node.start()
    finally:
        node.stop()


@pytest.fixture(scope="module")
def shared_node(broker: PrivateBroker) -> str:
    """A node id with broker credentials, for a module whose tests share one agent."""
    return NODE_POOL[next(_next_node)]


@pytest.fixture(autouse=True)
def _tell_shared_guest_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing test that uses `shared_guest` prints its console and agent log."""
    node = request.getfixturevalue("shared_guest") if "shared_guest" in request.fixturenames else None
    yield
    if node is not None and request.node.stash.get(_FAILED, set()):
        _tell(node)


def _tell(node: GuestNode) -> None:
    print(f"\n--- {node.workdir}: boot {node.boot_seconds}s, guest console ---")
    print("\n".join(node.console_log().splitlines()[-60:]))
    log = node.agent_log() if node.ready else ""
    if log:
        print("--- agent log (tail) ---")
        print("\n".join(log.splitlines()[-80:]))
