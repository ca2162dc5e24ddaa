"""The node's updater: runs the state machine's actions against disk, network and systemd.

Blocking and single-threaded: the agent calls it from one worker thread
(``asyncio.to_thread``), never from two at once. Every call loads the journal, feeds one
observation to `agent.update.machine.next_state`, saves the result **before** taking
the actions it names, then feeds each action's outcome back in.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from agent.update.artifacts import Artifacts, Refused
from agent.update.download import DownloadError, check_disk_space, download
from agent.update.journal import Baseline, Journal, JournalFile, Target
from agent.update.machine import Act, Desired, Done, Failed, Observation, Reset, Started, Tick, next_state
from agent.update.proof import ProofFile
from agent.update.releases import InstallError, ReleaseStore
from agent.update.reports import ReportQueue
from agent.update.settings import UpdateSettings, may_install_now
from rpfleet.protocol.messages import UpdateDesired, UpdateProgress

log = logging.getLogger(__name__)

# Internal states as the wire contract names them; `idle` and `rolling-back` are not
# reported (a reset is the server's own act; `rolled-back` follows a rollback).
WIRE_STATE = {
    "downloading": "downloading", "verifying": "verifying", "ready": "verifying",
    "installing": "installing", "switching": "switching", "proving": "proving", "done": "done",
    "rolled-back": "rolled-back", "refused": "refused", "failed": "failed",
}


class NodeProbe(Protocol):
    """What the running agent knows about itself, for the install gate and the baseline."""

    def connected(self) -> bool: ...
    def busy(self) -> str | None: ...
    def drivers_ok(self) -> list[str]: ...


class Restarter(Protocol):
    def restart(self) -> None:
        """End this agent so that systemd starts what ``current`` names (the agent exits;
        ``Restart=always`` brings the service back)."""


class NoRestart:
    """For the guard: the service it runs before is about to start ``current`` anyway."""

    def restart(self) -> None:
        pass


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def running_release(prefix: Path) -> str | None:
    """The release this interpreter runs from (``<prefix>/releases/<version>``), or None
    when it runs from elsewhere (a development checkout)."""
    here = Path(sys.prefix).resolve()
    return here.name if here.parent == (prefix / "releases").resolve() else None


class Updater:
    def __init__(self, *, node_id: str, state_dir: Path, settings: UpdateSettings, running: str | None,
                 artifacts: Artifacts, node: NodeProbe | None, restarter: Restarter,
                 store: ReleaseStore | None = None, clock: Callable[[], datetime] = utc_now,
                 pause: Callable[[str], None] = lambda point: None) -> None:
        """``running``: this process's release version, None in the guard. ``pause`` is
        called with a step name between steps (tests stop the process there)."""
        self.node_id = node_id
        self.directory = state_dir / "update"
        self.downloads = self.directory / "downloads"
        self.settings = settings
        self.running = running
        self.artifacts = artifacts
        self.node = node
        self.restarter = restarter
        self.store = store or ReleaseStore(settings.prefix, pause=pause)
        self.clock = clock
        self.pause = pause
        self.journal_file = JournalFile(self.directory)
        self.proof_file = ProofFile(self.directory)
        self.reports = ReportQueue(self.directory / "reports")
        self.restarting = False
        self._lock = threading.Lock()

    # ---- what the agent calls ------------------------------------------------

    def journal(self) -> Journal:
        return self.journal_file.load()

    def resume(self) -> Journal:
        """At every start: take the interrupted step again, or roll back."""
        return self._feed(Started(running=self.running, current=self.store.current()))

    def desired(self, message: UpdateDesired) -> Journal:
        """``down/update`` arrived (retained: also at every reconnect)."""
        target = Target(version=message.version, url=message.url, sha256=message.sha256,
                        size=message.size, rollback=message.rollback, force=message.force)
        return self._feed(Desired(target=target, update_id=uuid.uuid4().hex, current=self.store.current()))

    def tick(self) -> Journal:
        """Every few seconds: deadlines, the maintenance window, the proof, retries."""
        journal = self.journal_file.load()
        return self._feed(Tick(gate=self._gate(journal), proof=self.proof_file.load()))

    def reset(self, reason: str = "reset by the server") -> Journal:
        """The server's reset: a stuck or finished update is forgotten (one under proof
        rolls back first)."""
        return self._feed(Reset(reason))

    # ---- the loop ------------------------------------------------------------

    def _gate(self, journal: Journal) -> Baseline | None:
        if journal.state not in ("ready", "switching") or journal.target is None or self.node is None:
            return None
        decision = may_install_now(self.settings.window, self.clock(), self.node.busy(), journal.target.force)
        if not decision.allowed:
            return None
        if journal.state == "switching" and not self.node.connected():
            return None  # the proof will need the broker: switch only while it answers
        return Baseline(connected=self.node.connected(), drivers_ok=tuple(sorted(self.node.drivers_ok())),
                        at=self.clock())

    def _feed(self, observation: Observation) -> Journal:
        with self._lock:
            pending = [observation]
            journal = self.journal_file.load()
            while pending and not self.restarting:
                before, old = journal.state, journal
                journal, actions = next_state(journal, pending.pop(0), self.clock(), self.settings.timeouts,
                                              self.settings.max_starts_while_proving)
                if journal.state != before and journal.state in ("ready", "switching"):
                    # the next step waits for the gate: look at it now, not a tick later
                    pending.append(Tick(gate=self._gate(journal), proof=None))
                if journal != old:
                    self.journal_file.save(journal)
                    self.pause(f"journal:{journal.state}")
                for action in actions:
                    outcome = self._do(action, journal)
                    if outcome is not None:
                        pending.append(outcome)
                    if self.restarting:
                        break
            return journal

    def _artifact_path(self, version: str) -> Path:
        return self.downloads / f"{version}.artifact"

    def _do(self, act: Act, j: Journal) -> Observation | None:
        try:
            return getattr(self, "_" + act.kind.replace("-", "_"))(act, j)
        except Refused as e:
            return Failed(_step(act), f"{e.reason}: {e.message}", "refused", {"verify": e.reason})
        except InstallError as e:
            return Failed(_step(act), str(e), "failed", {act.kind: str(e)[:500]})
        except DownloadError as e:
            return Failed(_step(act), str(e), e.kind, {"download": str(e)[:500]})
        except OSError as e:  # disk full, read-only file system, permissions
            return Failed(_step(act), f"{act.kind}: {e}", "failed" if act.kind != "download" else "transient",
                          {act.kind: str(e)[:500]})

    def _report(self, act: Act, j: Journal) -> None:
        state = WIRE_STATE.get(j.state)
        if state is None or j.version is None:
            return None
        try:
            self._queue_report(state, j)
        except (OSError, ValueError) as e:  # a report never decides the update: log and go on
            log.warning("update report %s %s not queued: %s", j.version, state, e)
        return None

    def _queue_report(self, state: str, j: Journal) -> None:
        self.reports.put(UpdateProgress(
            node=self.node_id, version=j.version, state=state, at=j.entered_at,
            progress=1.0 if j.state == "ready" else None,
            reason=(j.reason or (f"waiting for the maintenance window {self.settings.window.describe()}"
                                 if j.state == "ready" else None)),
            evidence=j.evidence or None))

    def _download(self, act: Act, j: Journal) -> Observation:
        target = j.target
        path = self._artifact_path(target.version)
        part = path.with_name(path.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        check_disk_space(self.downloads, target.size - have + self.settings.install_headroom)
        self.pause("download")
        download(target.url, path, target.size, target.sha256)
        return Done("download", self.running)

    def _verify(self, act: Act, j: Journal) -> Observation:
        self.artifacts.verify(self._artifact_path(j.version), j.target, j.previous)
        return Done("verify", self.running)

    def _install(self, act: Act, j: Journal) -> Observation:
        self.pause("install")
        self.artifacts.install(self._artifact_path(j.version), j.target, j.previous, self.store)
        return Done("install", self.running)

    def _switch(self, act: Act, j: Journal) -> Observation:
        self.proof_file.clear()
        self.store.pin_guard(j.previous)
        self.store.switch(j.version)
        return Done("switch", self.running)

    def _switch_back(self, act: Act, j: Journal) -> Observation:
        self.store.switch_back(j.previous)
        return Done("switch-back", self.running)

    def _restart(self, act: Act, j: Journal) -> None:
        self.pause("restart")
        if not isinstance(self.restarter, NoRestart):
            self.restarting = True
        self.restarter.restart()

    def _cleanup(self, act: Act, j: Journal) -> None:
        if act.version:
            for leftover in self.downloads.glob(f"{act.version}.artifact*"):
                leftover.unlink(missing_ok=True)
            if act.version not in (j.previous, self.running):
                self.store.remove(act.version)
            shutil.rmtree(self.store.releases / f".payload-{act.version}", ignore_errors=True)

    def _settle(self, act: Act, j: Journal) -> None:
        self.store.pin_guard(j.version)
        self.store.prune({j.version, j.previous} - {None})
        shutil.rmtree(self.downloads, ignore_errors=True)


def _step(act: Act) -> str:
    return act.kind if act.kind in ("download", "verify", "install", "switch", "switch-back") else "install"
