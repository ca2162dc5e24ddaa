"""The `ticket` event kind (1.5) on the wire, and the server storing it like any event."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from fleet_server.ingest import event_rows
from rpfleet.protocol.messages import EventBatch, TicketPrint, event_detail_adapter

AT = datetime(2026, 11, 25, 1, 34, tzinfo=timezone.utc)


def batch(detail: dict) -> bytes:
    return EventBatch(node="kiosk-bd-01", events=[
        {"id": "a" * 32, "seq": 1, "at": AT, "detail": detail}]).to_json()


def test_a_ticket_event_round_trips_on_the_wire():
    sent = TicketPrint(printer="may-in-ve", job_id="b" * 32, number="A012",
                       service="Cấp đổi căn cước", counter="5", outcome="failed",
                       reason="paper-out", detail="the printer is out of paper")

    received = EventBatch.model_validate_json(batch(sent.model_dump()))

    assert received.events[0].detail == sent
    assert event_detail_adapter.validate_python({"kind": "ticket", "printer": "p",
                                                 "job_id": "j", "number": "A1",
                                                 "outcome": "voided"}).outcome == "voided"


@pytest.mark.parametrize("field, value", [
    ("outcome", "lost"), ("reason", "no-ink"), ("number", ""), ("counter", "x" * 65),
], ids=["outcome", "reason", "number", "counter"])
def test_a_bad_ticket_event_is_refused_naming_the_field(field, value):
    detail = {"kind": "ticket", "printer": "p", "job_id": "j", "number": "A1",
              "outcome": "printed", field: value}
    with pytest.raises(ValidationError, match=field):
        event_detail_adapter.validate_python(detail)


def test_the_server_stores_it_generically():
    received = EventBatch.model_validate_json(batch({
        "kind": "ticket", "printer": "may-in-ve", "job_id": "c" * 32, "number": "B1023",
        "service": "Đăng ký khai sinh", "counter": "12", "outcome": "reprinted",
        "reprint_of": "d" * 32}))

    [row] = event_rows(received, AT)

    assert (row["kind"], row["counter"], row["rating"]) == ("ticket", "12", None)
    assert row["detail"] == {"kind": "ticket", "printer": "may-in-ve", "job_id": "c" * 32,
                             "number": "B1023", "service": "Đăng ký khai sinh", "counter": "12",
                             "outcome": "reprinted", "reprint_of": "d" * 32}
