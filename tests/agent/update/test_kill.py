"""kill -9 at every step of install, switch, proof and rollback, then systemd's restarts:
the node always ends on a good release, and ``current`` never names a broken one."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.update.journal import JournalFile
from agent.update.releases import ReleaseStore
from tests.agent.update.node_process import agent_start, service_start
from tests.agent.update.tiny import installed_node

SCRIPT = Path(__file__).with_name("node_process.py")
ROOT = Path(__file__).resolve().parents[3]
START = 1_795_000_000.0
STEP = 25  # seconds between two starts of the service (the proving deadline is 60)


def start(node: Path, role: str, now: float, *extra: str,
          kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    if kill_at:
        env["RPFLEET_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, str(SCRIPT), str(node), role, str(now), *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def good_current(node: Path) -> str:
    store = ReleaseStore(node / "opt")
    version = store.current()
    assert version is not None and store.is_complete(version), f"current names {version!r}, not a complete release"
    return version


def systemd(node: Path, now: float, bad: bool) -> str:
    """Start the service (guard, then agent) in a new process until the update has ended,
    checking before each start that ``current`` names a complete release; the final state."""
    run = start(node, "systemd", now, *(("--bad",) if bad else ()))
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.split()[-1]


def fresh_node(tmp_path: Path) -> Path:
    (tmp_path / "opt").mkdir()
    installed_node(tmp_path / "opt", "1.0.0")
    return tmp_path


# Every pause point the first start (the old release taking down/update) passes, in order;
# test_the_points_are_the_ones_the_updater_passes checks this list against a real run.
OLD_RELEASE_POINTS = [
    "journal:downloading", "download", "journal:verifying", "journal:ready", "journal:installing",
    "install", "tiny:bin", "tiny:mark", "journal:switching", "journal:switching#2", "guard:link", "guard:linked",
    "switch:link", "switch:linked", "journal:proving", "restart",
]
# ...and those of the new release's first start: proof accepted, or (bad) rolled back later.
NEW_RELEASE_POINTS = ["journal:done", "guard:link", "guard:linked"]
# The rollback of a release that never proves itself: the guard of the start after the
# deadline takes it back; its last service start then records it.
ROLLBACK_POINTS = ["guard/journal:rolling-back", "guard/switch-back:link", "guard/switch-back:linked",
                   "journal:rolled-back"]


def test_the_points_are_the_ones_the_updater_passes(tmp_path):
    node = fresh_node(tmp_path)
    assert start(node, "agent", START, "--desired", "1.1.0").returncode == 3
    assert systemd(node, START + 1, bad=False) == "done"
    seen = [line.split(":", 1)[1] for line in (node / "points.log").read_text().splitlines()
            if not line.split(":", 1)[1].startswith("guard/")]
    seen[seen.index("journal:switching") + 1] += "#2"  # the switch decided: the baseline recorded
    assert seen[:len(OLD_RELEASE_POINTS)] == OLD_RELEASE_POINTS
    assert NEW_RELEASE_POINTS == [p for p in seen[len(OLD_RELEASE_POINTS):] if p in NEW_RELEASE_POINTS]


def no_pause(point: str) -> None:
    pass


def unique(points):
    return list(dict.fromkeys(points))


@pytest.mark.parametrize("point", unique(OLD_RELEASE_POINTS))
def test_kill_during_install_and_switch_ends_on_the_new_release(tmp_path, point):
    node = fresh_node(tmp_path)
    killed = start(node, "agent", START, "--desired", "1.1.0", kill_at=point)
    assert killed.returncode == -signal.SIGKILL, f"never reached {point}: {killed.stdout} {killed.stderr}"
    good_current(node)
    assert systemd(node, START + 1, bad=False) == "done"
    assert good_current(node) == "1.1.0"


@pytest.mark.parametrize("point", unique(ROLLBACK_POINTS))
def test_kill_during_a_rollback_still_ends_on_the_old_release(tmp_path, point):
    node = fresh_node(tmp_path)
    # (the steps before the kill run in this process: only the killed start and the
    # recovery need processes of their own)
    assert agent_start(node, START, no_pause, desired="1.1.0", bad=False) == ("proving", True)
    assert good_current(node) == "1.1.0"
    service_start(node, START + 1, no_pause, bad=True)  # the new release starts and proves nothing
    now = START + 61  # past the proving deadline (60 s)
    run = start(node, "service", now, "--bad", kill_at=point)
    assert run.returncode == -signal.SIGKILL, f"never reached {point}: {run.stdout} {run.stderr}"
    good_current(node)
    assert systemd(node, now + STEP, bad=True) == "rolled-back"
    assert good_current(node) == "1.0.0"
    assert "did not prove itself" in JournalFile(node / "state" / "update").load().reason


@pytest.mark.parametrize("point", NEW_RELEASE_POINTS)
def test_kill_while_the_proven_release_settles_keeps_it(tmp_path, point):
    node = fresh_node(tmp_path)
    assert agent_start(node, START, no_pause, desired="1.1.0", bad=False) == ("proving", True)
    killed = start(node, "service", START + 1, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, f"never reached {point}: {killed.stderr}"
    assert good_current(node) == "1.1.0"
    assert systemd(node, START + 2, bad=False) == "done"
    assert good_current(node) == "1.1.0"
    assert ReleaseStore(node / "opt").guard() == "1.1.0"
