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


def test_a_full_disk_holds_events_in_memory_until_it_takes_them_again(small_disk):
    from agent.outbox import write_alarm

    with Outbox(small_disk.path / "outbox.sqlite") as box:
        first = box.record(tap(1), NOW)
        small_disk.fill()
        held = [box.record(tap(r), NOW) for r in (2, 3, 4)]
        assert box.overflow >= 1 and box.pending() == 4
        assert write_alarm(box.write_error) == "disk-full"
        assert [e.id for e in box.oldest(10)] == [first.id] + [e.id for e in held]

        small_disk.free()
        last = box.record(tap(5), NOW)
        assert box.overflow == 0 and box.write_error is None
    with Outbox(small_disk.path / "outbox.sqlite") as box:
        on_disk = box.oldest(10)
    assert [e.id for e in on_disk] == [first.id] + [e.id for e in held] + [last.id]
    assert [e.seq for e in on_disk] == [1, 2, 3, 4, 5]
    assert [e.detail.rating for e in on_disk] == [1, 2, 3, 4, 5]


def test_a_read_only_file_system_holds_events_and_recovers(small_disk):
    from agent.outbox import write_alarm

    small_disk.remount("ro")
    with Outbox(small_disk.path / "state" / "outbox.sqlite") as box:
        held = [box.record(tap(r), NOW) for r in (1, 2)]
        assert box.overflow == 2 and box.pending() == 2
        assert write_alarm(box.write_error) == "disk-read-only"
        assert [e.id for e in box.oldest(10)] == [e.id for e in held]
        small_disk.remount("rw")
        assert box.flush_overflow()
        assert box.write_error is None
    with Outbox(small_disk.path / "state" / "outbox.sqlite") as box:
        assert [(e.id, e.seq) for e in box.oldest(10)] == [(e.id, e.seq) for e in held]


def test_beyond_the_overflow_bound_taps_are_refused_not_evicted(small_disk):
    from agent.outbox import OutboxFull

    with Outbox(small_disk.path / "outbox.sqlite", overflow_limit=3) as box:
        small_disk.fill()
        kept = [box.record(tap(), NOW) for _ in range(3)]
        with pytest.raises(OutboxFull, match="3 events are held"):
            box.record(tap(), NOW)
        assert [e.id for e in box.oldest(10)] == [e.id for e in kept]


def test_acking_events_held_in_memory_forgets_them(small_disk):
    with Outbox(small_disk.path / "outbox.sqlite") as box:
        small_disk.fill()
        held = box.record(tap(), NOW)
        assert box.ack([held.id]) == 1
        assert box.pending() == 0


def test_a_corrupt_file_is_moved_aside_and_a_new_outbox_started(tmp_path):
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database, the SD card lost power mid-write" * 100)
    with Outbox(path) as box:
        assert box.replaced is not None and box.replaced.exists()
        assert box.replaced.read_bytes().startswith(b"this is not a database")
        assert box.record(tap(), NOW).seq == 1
        assert box.pending() == 1


def test_readable_events_are_carried_over_from_a_damaged_file(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as box:
        events = [box.record(Alarm(code="c", severity="info", message="x" * 1500), NOW) for _ in range(40)]
        box.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 8: page * 9] = b"\xde\xad" * (page // 2)  # one page in the middle
    path.write_bytes(bytes(data))
    with Outbox(path) as box:
        assert box.replaced is not None
        carried = box.oldest(100)
    originals = {e.id: e for e in events}
    assert 0 < box.salvaged < len(events)
    assert all(originals[e.id] == e for e in carried)


def test_oldest_age_counts_from_when_the_event_was_recorded(tmp_path):
    now = [1000.0]
    with Outbox(tmp_path / "outbox.sqlite", clock=lambda: now[0]) as box:
        assert box.oldest_age() is None
        box.record(tap(), NOW)
        now[0] += 42
        assert box.oldest_age() == 42
