"""The update guard: ``python -m agent.update.guard --config /etc/rpfleet/agent.toml``.

Runs before every start of the agent service (``ExecStartPre=``), from the last
proven release (the ``guard`` link), so that a release that cannot even start (a crash
loop, an import error, a hang the watchdog kills) is still switched back: it counts the
service starts of an unproven release and judges its deadline. It touches nothing
unless an update is being proven or rolled back, never downloads, and always exits 0
so the service starts whatever happens here.

It reads only ``state_dir`` and the ``[update]`` table of agent.toml, tolerating keys
a newer release added.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from agent.update.journal import JournalFile
from agent.update.machine import Started, Tick
from agent.update.proof import ProofFile
from agent.update.releases import ReleaseStore
from agent.update.settings import UpdateSettings
from agent.update.updater import NoRestart, Updater, utc_now


class NoArtifacts:
    def verify(self, *args) -> None:
        raise RuntimeError("the guard never verifies artifacts")

    install = verify


def load(config: Path) -> tuple[Path, UpdateSettings, str]:
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    table = data.get("update", {})
    try:
        settings = UpdateSettings.model_validate(table)
    except ValueError:
        known = {k: v for k, v in table.items() if k in UpdateSettings.model_fields}
        try:
            settings = UpdateSettings.model_validate(known)
        except ValueError:
            settings = UpdateSettings()
    return Path(data.get("state_dir", "/var/lib/rpfleet")), settings, str(data.get("node_id", "unknown"))


def guard(state_dir: Path, settings: UpdateSettings, node_id: str = "unknown", clock=utc_now,
          pause=lambda point: None) -> str:
    """One guard pass; returns the journal state afterwards."""
    journal = JournalFile(state_dir / "update").load()
    if journal.state not in ("proving", "rolling-back"):
        return journal.state
    updater = Updater(node_id=node_id, state_dir=state_dir, settings=settings, running=None,
                      artifacts=NoArtifacts(), node=None, restarter=NoRestart(), clock=clock,
                      store=ReleaseStore(settings.prefix, pause=pause), pause=pause)
    updater._feed(Started(running=None, current=updater.store.current()))
    journal = updater._feed(Tick(gate=None, proof=ProofFile(state_dir / "update").load()))
    return journal.state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rpfleet-update-guard", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("/etc/rpfleet/agent.toml"))
    args = parser.parse_args(argv)
    try:
        state_dir, settings, node_id = load(args.config)
        state = guard(state_dir, settings, node_id)
        print(f"update guard: {state}", flush=True)
    except Exception as e:  # never keep the agent from starting
        print(f"update guard: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
