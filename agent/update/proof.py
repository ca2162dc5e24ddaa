"""Proof that a freshly switched release works, and the judgement on it.

The new release writes what it managed into ``<state_dir>/update/proof.json`` as it
starts (`ProofRecorder`); `judge` compares that with the `Baseline` the previous release
measured just before the switch.

What the proof needs (the "no broker" question): the switch happens only while the old
release is connected to the broker (the baseline records it), so the new release must
also connect, publish a health report and publish a test event from its outbox (the
broker's PUBACK), all within the deadline. A release that cannot reach the broker cannot
be managed any more, so an unproven connection is never accepted. If the broker went
away during those minutes, the node rolls back to the version that is known to work:
the safe side; the report says "not connected" with the last broker error, and the
server may ask again later. The server's end-to-end ``Ack`` of the test event is
recorded as evidence but not required: the server being down is not the release's fault.
A status report (``up/update``) that cannot be sent is never part of the proof.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.update.atomic import write_atomic
from agent.update.journal import Baseline, JournalFile

REQUIRED = ("started", "connected", "health-sent", "drivers", "test-event-sent")


class Proof(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    update_id: str
    version: str
    started_at: datetime | None = None
    connected_at: datetime | None = None
    broker_error: str | None = None
    health_sent_at: datetime | None = None
    drivers: dict[str, str] = {}
    """Peripheral id -> ``"ok"`` or what went wrong."""
    test_event_id: str | None = None
    test_event_written_at: datetime | None = None
    test_event_sent_at: datetime | None = None
    test_event_acked_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    missing: tuple[str, ...]
    evidence: dict[str, str] = field(default_factory=dict)


def judge(baseline: Baseline | None, proof: Proof | None, update_id: str, version: str) -> Verdict:
    """Whether ``proof`` shows release ``version`` (of update ``update_id``) does at least
    what the baseline did. ``missing`` names what is not proven yet; ``evidence`` says,
    in short lines for the server, what was seen."""
    if proof is None or proof.update_id != update_id or proof.version != version:
        return Verdict(False, REQUIRED, {"started": f"no proof from {version}: it never started or hangs"})
    missing, evidence = [], {}
    if proof.started_at is None:
        missing.append("started")
        evidence["started"] = "the agent did not finish starting"
    if proof.connected_at is None:
        missing.append("connected")
        evidence["connected"] = "never connected to the broker" + (
            f" (last error: {proof.broker_error})" if proof.broker_error else "")
    if proof.health_sent_at is None:
        missing.append("health-sent")
        evidence["health-sent"] = "no health report published"
    before = baseline.drivers_ok if baseline else ()
    lost = [p for p in before if proof.drivers.get(p) != "ok"]
    if lost or proof.started_at is None:
        missing.append("drivers")
        if lost:
            evidence["drivers"] = "; ".join(
                f"{p} was ok before, now: {proof.drivers.get(p, 'not started')}" for p in lost)
    if proof.test_event_sent_at is None:
        missing.append("test-event-sent")
        evidence["test-event"] = ("written to the outbox, never published" if proof.test_event_written_at
                                  else "no test event written to the outbox")
    evidence["test-event-acked"] = "yes" if proof.test_event_acked_at else "no (not required)"
    return Verdict(not missing, tuple(missing), evidence)


class ProofFile:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "proof.json"

    def load(self) -> Proof | None:
        """The proof on disk, or None when there is none or it is unreadable."""
        try:
            return Proof.model_validate(json.loads(self.path.read_bytes()))
        except (FileNotFoundError, ValueError, ValidationError):
            return None

    def save(self, proof: Proof) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, proof.model_dump_json(indent=1).encode())

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class ProofRecorder:
    """Used by the agent of a just-switched release to write its proof, step by step.

    Inactive (every method does nothing) unless the journal says this very ``version``
    is being proven, so the agent may call it unconditionally on every start.
    """

    def __init__(self, update_dir: Path, version: str) -> None:
        self._file = ProofFile(update_dir)
        journal = JournalFile(update_dir).load()
        self.active = journal.state == "proving" and journal.version == version
        self._proof = None
        if self.active:
            old = self._file.load()
            fresh = Proof(update_id=journal.update_id or "", version=version)
            # A restart during proving starts the evidence over, but keeps what was sent.
            self._proof = old if old and old.update_id == fresh.update_id else fresh

    def _record(self, **fields) -> None:
        if not self.active:
            return
        self._proof = self._proof.model_copy(update=fields)
        self._file.save(self._proof)

    def started(self, at: datetime, drivers: dict[str, str]) -> None:
        """The agent is up: outbox open, drivers started (id -> "ok" or the error)."""
        self._record(started_at=at, drivers=dict(drivers))

    def connected(self, at: datetime) -> None:
        self._record(connected_at=at, broker_error=None)

    def broker_failed(self, error: str) -> None:
        self._record(broker_error=error[:300])

    def health_sent(self, at: datetime) -> None:
        self._record(health_sent_at=at)

    def test_event_written(self, event_id: str, at: datetime) -> None:
        self._record(test_event_id=event_id, test_event_written_at=at)

    def test_event_sent(self, at: datetime) -> None:
        self._record(test_event_sent_at=at)

    def test_event_acked(self, at: datetime) -> None:
        self._record(test_event_acked_at=at)

    @property
    def proof(self) -> Proof | None:
        """What this release has proven so far (None when inactive)."""
        return self._proof

    @property
    def wants_test_event(self) -> bool:
        """True while a test event still has to be written to the outbox."""
        return self.active and self._proof.test_event_written_at is None
