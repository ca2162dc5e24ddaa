"""Starts of the agent service on a test node, in a process of their own.

    python tests/agent/update/node_process.py NODE_DIR ROLE NOW [--desired VERSION] [--bad]

``ROLE``:

- ``agent``: one start of the agent that runs what ``current`` names: resume, take
  ``down/update`` VERSION if given, prove itself if it is the release under proof (unless
  ``--bad``: it never does), tick; exit 3 when it asked to be restarted;
- ``service``: the guard first (as ``ExecStartPre=``; its pause points are prefixed
  ``guard/``), then the agent as above;
- ``systemd``: service starts, ``STEP`` seconds apart, until the update has ended;
  prints the final journal state.

``NOW`` is the clock (epoch seconds). With ``RPFLEET_TEST_KILL_AT=POINT`` the process
SIGKILLs itself the first time it reaches that pause point (``POINT#N``: the Nth time):
a kill -9 at exactly that step. Every point reached is appended to NODE_DIR/points.log.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from agent.update.guard import guard  # noqa: E402
from agent.update.journal import TERMINAL  # noqa: E402
from agent.update.proof import ProofRecorder  # noqa: E402
from agent.update.releases import ReleaseStore  # noqa: E402
from agent.update.settings import MaintenanceWindow, StateTimeouts, UpdateSettings  # noqa: E402
from agent.update.updater import Updater  # noqa: E402
from tests.agent.update.tiny import NODE, FakeNode, RecordingRestart, TinyArtifacts, tiny_artifact  # noqa: E402

PROVING = 60
STEP = 25  # seconds between two starts of the service


def settings(node: Path) -> UpdateSettings:
    return UpdateSettings(prefix=node / "opt", window=MaintenanceWindow(start="00:00", end="00:00"),
                          timeouts=StateTimeouts(proving=PROVING))


class Points:
    def __init__(self, node: Path, role: str) -> None:
        self.log = open(node / "points.log", "a", encoding="utf-8")
        self.role = role
        self.kill_at = os.environ.get("RPFLEET_TEST_KILL_AT")
        self.seen: dict[str, int] = {}

    def __call__(self, point: str) -> None:
        self.log.write(f"{self.role}:{point}\n")
        self.log.flush()
        self.seen[point] = self.seen.get(point, 0) + 1
        if self.kill_at in (point, f"{point}#{self.seen[point]}"):
            os.kill(os.getpid(), signal.SIGKILL)


def agent_start(node: Path, now: float, pause, *, desired: str | None, bad: bool) -> tuple[str, bool]:
    """One start of the agent; returns the journal state and whether it asked for a restart."""
    clock = lambda: datetime.fromtimestamp(now, timezone.utc)  # noqa: E731
    state_dir = node / "state"
    store = ReleaseStore(node / "opt", pause=pause)
    updater = Updater(node_id=NODE, state_dir=state_dir, settings=settings(node), running=store.current(),
                      artifacts=TinyArtifacts(), node=FakeNode(), restarter=RecordingRestart(), clock=clock,
                      store=store, pause=pause)
    journal = updater.resume()
    if desired and not updater.restarting:
        _, message = tiny_artifact(node, desired)
        journal = updater.desired(message)
    recorder = ProofRecorder(state_dir / "update", updater.running)
    if recorder.active and not bad:
        at = clock()
        recorder.started(at, {"pad-1": "ok"})
        recorder.connected(at)
        recorder.health_sent(at)
        recorder.test_event_written("0" * 32, at)
        recorder.test_event_sent(at)
    for _ in range(3):
        if updater.restarting or journal.state in TERMINAL:
            break
        journal = updater.tick()
    return journal.state, updater.restarting


def service_start(node: Path, now: float, pause, *, bad: bool) -> tuple[str, bool]:
    clock = lambda: datetime.fromtimestamp(now, timezone.utc)  # noqa: E731
    guard(node / "state", settings(node), clock=clock, pause=lambda point: pause("guard/" + point))
    return agent_start(node, now, pause, desired=None, bad=bad)


def main() -> int:
    node, role, now = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    desired = sys.argv[sys.argv.index("--desired") + 1] if "--desired" in sys.argv else None
    bad = "--bad" in sys.argv
    pause = Points(node, role)
    if role == "agent":
        state, restart = agent_start(node, now, pause, desired=desired, bad=bad)
    elif role == "service":
        state, restart = service_start(node, now, pause, bad=bad)
    else:
        for _ in range(12):
            store = ReleaseStore(node / "opt")
            if not (store.current() and store.is_complete(store.current())):
                print(f"current names {store.current()!r}, not a complete release")
                return 1
            state, restart = service_start(node, now, pause, bad=bad)
            if state in TERMINAL and not restart:
                break
            now += STEP
        restart = False
    print(state)
    return 3 if restart else 0


if __name__ == "__main__":
    sys.exit(main())
