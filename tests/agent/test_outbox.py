import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest

from agent.outbox import Outbox
from rpfleet.protocol.messages import Alarm, RatingTap

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


def tap(rating: int = 5) -> RatingTap:
    return RatingTap(pad="pad-1", counter="5", rating=rating, scale=5)


@pytest.fixture
def outbox(tmp_path):
    with Outbox(tmp_path / "outbox.sqlite") as box:
        yield box


def test_record_gives_unique_ids_and_increasing_sequence(outbox):
    events = [outbox.record(tap(r), NOW) for r in (1, 3, 5)]
    assert [e.seq for e in events] == [1, 2, 3]
    assert len({e.id for e in events}) == 3
    assert all(len(e.id) == 32 for e in events)
    assert outbox.pending() == 3


def test_oldest_returns_events_in_order_with_their_detail(outbox):
    outbox.record(tap(2), NOW)
    outbox.record(Alarm(code="disk-full", severity="critical", message="đĩa đầy"), NOW)
    first, second = outbox.oldest(10)
    assert first.detail == tap(2)
    assert second.detail.kind == "alarm" and second.detail.message == "đĩa đầy"
    assert first.at == NOW
    assert [e.seq for e in outbox.oldest(1)] == [1]


def test_ack_forgets_only_the_named_events_and_ignores_unknown_ids(outbox):
    a, b, c = (outbox.record(tap(), NOW) for _ in range(3))
    assert outbox.ack([a.id, c.id, "0" * 32]) == 2
    assert [e.id for e in outbox.oldest(10)] == [b.id]


def test_sequence_is_never_reused_after_everything_was_acked(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as box:
        events = [box.record(tap(), NOW) for _ in range(2)]
        box.ack([e.id for e in events])
    with Outbox(path) as box:
        assert box.record(tap(), NOW).seq == 3


def test_recorded_event_survives_kill_9_of_the_writer(tmp_path):
    path = tmp_path / "outbox.sqlite"
    writer = textwrap.dedent(
        f"""
        import os, signal, sys
        from datetime import datetime, timezone
        from agent.outbox import Outbox
        from rpfleet.protocol.messages import RatingTap
        box = Outbox(__import__("pathlib").Path({str(path)!r})).open()
        event = box.record(RatingTap(pad="p", rating=4, scale=5), datetime.now(timezone.utc))
        print(event.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", writer], capture_output=True, text=True, timeout=60)
    assert result.returncode == -9, result.stderr
    recorded_id = result.stdout.strip()
    with Outbox(path) as box:
        assert [e.id for e in box.oldest(10)] == [recorded_id]


def test_using_a_closed_outbox_is_a_clear_error(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    with pytest.raises(RuntimeError, match="is not open"):
        box.pending()
