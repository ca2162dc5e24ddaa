"""The proof a new release writes, and the judgement on it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from agent.update.journal import Baseline, Journal, JournalFile, Target
from agent.update.proof import REQUIRED, ProofFile, ProofRecorder, judge

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)
BASE = Baseline(connected=True, drivers_ok=("pad-1", "scanner-1"), at=T0)


def proving(directory, version="1.1.0"):
    target = Target(version=version, url="https://u.invalid/a", sha256="a" * 64, size=1)
    journal = Journal(update_id="e" * 32, target=target, previous="1.0.0", baseline=BASE)
    JournalFile(directory).save(journal.entering("proving", T0, timedelta(seconds=300)))


def test_the_recorder_writes_only_for_the_release_under_proof(tmp_path):
    proving(tmp_path)
    other = ProofRecorder(tmp_path, "1.0.0")
    other.started(T0, {"pad-1": "ok"})
    assert not other.active and ProofFile(tmp_path).load() is None
    recorder = ProofRecorder(tmp_path, "1.1.0")
    assert recorder.wants_test_event
    recorder.started(T0, {"pad-1": "ok", "scanner-1": "ok"})
    recorder.connected(T0)
    recorder.health_sent(T0)
    recorder.test_event_written("0" * 32, T0)
    assert not recorder.wants_test_event
    assert judge(BASE, ProofFile(tmp_path).load(), "e" * 32, "1.1.0").missing == ("test-event-sent",)
    recorder.test_event_sent(T0)
    # a restart of the new release keeps what it had already proven
    again = ProofRecorder(tmp_path, "1.1.0")
    assert not again.wants_test_event
    verdict = judge(BASE, ProofFile(tmp_path).load(), "e" * 32, "1.1.0")
    assert verdict.passed and verdict.evidence["test-event-acked"] == "no (not required)"


def test_judgement_names_each_missing_piece(tmp_path):
    proving(tmp_path)
    recorder = ProofRecorder(tmp_path, "1.1.0")
    recorder.started(T0, {"pad-1": "ok", "scanner-1": "serial port busy"})
    recorder.broker_failed("TLS: certificate verify failed")
    verdict = judge(BASE, ProofFile(tmp_path).load(), "e" * 32, "1.1.0")
    assert not verdict.passed
    assert verdict.missing == ("connected", "health-sent", "drivers", "test-event-sent")
    assert verdict.evidence["drivers"] == "scanner-1 was ok before, now: serial port busy"
    assert "certificate verify failed" in verdict.evidence["connected"]


def test_a_driver_that_was_broken_before_is_not_required():
    from agent.update.proof import Proof

    proof = Proof(update_id="e" * 32, version="1.1.0", started_at=T0, connected_at=T0, health_sent_at=T0,
                  drivers={"pad-1": "ok", "scanner-1": "ok", "printer-1": "out of paper"},
                  test_event_written_at=T0, test_event_sent_at=T0)
    assert judge(BASE, proof, "e" * 32, "1.1.0").passed
    assert judge(BASE, None, "e" * 32, "1.1.0").missing == REQUIRED
    assert not judge(BASE, proof, "d" * 32, "1.1.0").passed  # a proof from an earlier update
