"""Message models of the wire contract and the codec that turns bytes into them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from rpfleet.protocol import messages as m
from rpfleet.protocol.codec import MAX_PAYLOAD, PayloadError, decode, decode_as
from rpfleet.protocol.topics import Channel

HANOI = timezone(timedelta(hours=7))
AT = datetime(2025, 3, 14, 8, 30, 15, 250000, tzinfo=HANOI)
EVENT_ID = "0123456789abcdef0123456789abcdef"
NODE = "hn-badinh-c03"

EVENT_DETAILS: dict[str, m.Part] = {
    "rating-tap": m.RatingTap(pad="pad-1", counter="c03", rating=4, scale=5),
    "scan": m.Scan(scanner="honeywell-1", code="VN-CCCD-001099012345", symbology="qr"),
    "peripheral-attached": m.PeripheralAttached(
        peripheral="pad-1", peripheral_kind="rating-pad", identity="usb-1a86_7523-if00"
    ),
    "peripheral-detached": m.PeripheralDetached(peripheral="pad-1", peripheral_kind="rating-pad"),
    "alarm": m.Alarm(code="disk-low", severity="warning", message="12 MB free on /var"),
    "announcement": m.AnnouncementResult(
        soundbox="loa-5", announce_id="call-20261125-1023", announce_kind="queue-call",
        counter="5", ticket="1023", outcome="played",
        clips=["call-intro", "n1", "thousand", "n0", "hundred", "n2", "tens", "n3", "to-counter", "n5"],
        duration_ms=6758, waited_ms=12,
    ),
    "ticket": m.TicketPrint(
        printer="may-in-ve", job_id="5b4bb02f16834cef83837273920a1425", number="A012",
        service="Cấp đổi căn cước", counter="5", outcome="failed", reason="paper-out",
        detail="the printer is out of paper (the ticket was cut short)",
    ),
    "browser-repair": m.BrowserRepair(
        browser="kiosk-1", step="reload", trouble="hung",
        reason="no answer to the heartbeat script in 5 s", done_this_hour=1,
    ),
}


def batch_of(*details: m.Part) -> m.EventBatch:
    return m.EventBatch(
        node=NODE,
        events=[
            m.Event(id=f"{seq:032x}", seq=seq, at=AT, detail=detail)
            for seq, detail in enumerate(details, start=1)
        ],
    )


EXAMPLES: dict[type[m.Message], m.Message] = {
    m.Status: m.Status(node=NODE, state="online", agent_version="0.1.0", at=AT),
    m.Health: m.Health(
        node=NODE,
        at=AT,
        uptime_s=3600.5,
        outbox_pending=3,
        agent_version="0.1.0",
        disk_free_mb=1024.0,
        cpu_temp_c=51.2,
        peripherals=[
            m.PeripheralHealth(id="pad-1", kind="rating-pad", state="ok"),
            m.PeripheralHealth(id="sb-1", kind="soundbox", state="missing", detail="unplugged"),
        ],
        alarms=["disk-low"],
    ),
    m.EventBatch: batch_of(*EVENT_DETAILS.values()),
    m.ConfigReported: m.ConfigReported(
        node=NODE, version="cfg-9f2c", state="rejected", reason="pad-1: scale must be 3..5"
    ),
    m.CommandResult: m.CommandResult(
        node=NODE,
        id="cmd-17",
        outcome="ok",
        detail="took 2 s",
        output={"peripherals": ["pad-1"], "passed": True},
        finished_at=AT,
    ),
    m.UpdateProgress: m.UpdateProgress(
        node=NODE, version="0.2.0", state="downloading", progress=0.25
    ),
    m.Handover: m.Handover(
        handover_id="e" * 32,
        node=NODE,
        technician="Trần Thị Bình",
        started_at=AT,
        finished_at=AT + timedelta(minutes=4),
        agent_version="0.1.0",
        results=[
            m.HandoverResult(peripheral="pad-1", kind="rating-pad", passed=True,
                             seen="ratings 1, 2, 3, 4, 5 pressed"),
            m.HandoverResult(peripheral="qr-1", kind="scanner", passed=False,
                             seen="nothing seen in 60s", note="cáp USB lỏng"),
        ],
    ),
    m.Ack: m.Ack(ids=[EVENT_ID, "f" * 32]),
    m.ConfigDesired: m.ConfigDesired(
        version="cfg-9f2c",
        config={"pads": [{"id": "pad-1", "scale": 5}], "volume": 0.8, "note": None},
        issued_at=AT,
    ),
    m.Command: m.Command(
        id="cmd-17",
        name="self-test",
        args={"verbose": True},
        issuer="operator@hanoi",
        issued_at=AT,
        expires_at=AT + timedelta(minutes=5),
    ),
    m.UpdateDesired: m.UpdateDesired(
        version="0.2.0",
        url="https://fleet.invalid/artifacts/rpfleet-0.2.0.tar.zst",
        sha256="ab" * 32,
        size=12_345_678,
        signature="MEUCIQ-signature",
    ),
    m.Announce: m.Announce(
        id="ann-5",
        kind="payment",
        ticket="A-042",
        counter="c03",
        amount_vnd=150_000,
        text="Vui lòng thanh toán 150.000 đ",
        expires_at=AT + timedelta(seconds=30),
    ),
}

CHANNEL_BY_MODEL = {model: channel for channel, model in m.MODEL_BY_CHANNEL.items()}
MODEL_CASES = [pytest.param(model, id=model.__name__) for model in m.MODEL_BY_CHANNEL.values()]


def payload(model: type[m.Message], **changes: Any) -> dict[str, Any]:
    """The example of ``model`` as a JSON object, with top-level ``changes`` applied."""
    data = json.loads(EXAMPLES[model].to_json())
    data.update(changes)
    return data


def encode(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def test_every_model_has_an_example() -> None:
    assert set(EXAMPLES) == set(m.MODEL_BY_CHANNEL.values()), (
        "add an example to EXAMPLES for every model in MODEL_BY_CHANNEL"
    )
    assert len(m.MODEL_BY_CHANNEL) == len(Channel), "every channel needs a model"


@pytest.mark.parametrize("model", MODEL_CASES)
def test_example_is_an_instance_of_its_model(model: type[m.Message]) -> None:
    assert type(EXAMPLES[model]) is model
    assert EXAMPLES[model].v == m.SCHEMA_VERSION


@pytest.mark.parametrize("model", MODEL_CASES)
def test_json_round_trip_through_decode(model: type[m.Message]) -> None:
    example = EXAMPLES[model]
    wire = example.to_json()

    decoded = decode(CHANNEL_BY_MODEL[model], wire)

    assert type(decoded) is model
    assert decoded == example
    assert decoded.to_json() == wire


@pytest.mark.parametrize("model", MODEL_CASES)
def test_payload_is_a_utf8_json_object_with_version(model: type[m.Message]) -> None:
    data = json.loads(EXAMPLES[model].to_json().decode("utf-8"))

    assert isinstance(data, dict)
    assert data["v"] == m.SCHEMA_VERSION
    assert None not in data.values(), "to_json leaves unset optional fields out"


@pytest.mark.parametrize("model", MODEL_CASES)
def test_unknown_fields_of_a_newer_minor_version_are_tolerated(model: type[m.Message]) -> None:
    data = payload(model, v="1.7", added_in_1_7={"nested": [1, 2]}, flag=True)

    decoded = decode(CHANNEL_BY_MODEL[model], encode(data))

    assert decoded.v == "1.7"
    assert decoded.model_dump(exclude={"v"}) == EXAMPLES[model].model_dump(exclude={"v"})
    assert "added_in_1_7" not in decoded.to_json().decode()


def test_unknown_fields_inside_nested_parts_are_tolerated() -> None:
    data = payload(m.EventBatch, v="1.7")
    data["events"][0]["trace"] = "abc"
    data["events"][0]["detail"]["pressure_kpa"] = 12.5
    data["events"][1]["detail"]["extra"] = None

    decoded = decode(Channel.EVENTS, encode(data))

    assert decoded.model_dump(exclude={"v"}) == EXAMPLES[m.EventBatch].model_dump(exclude={"v"})


@pytest.mark.parametrize("model", MODEL_CASES)
@pytest.mark.parametrize("version", ["2.0", "0.9", "10.0", "2"])
def test_other_major_version_is_refused(model: type[m.Message], version: str) -> None:
    with pytest.raises(PayloadError, match="wrong-version") as caught:
        decode(CHANNEL_BY_MODEL[model], encode(payload(model, v=version)))

    assert caught.value.reason == "wrong-version"
    assert repr(version) in caught.value.detail


def test_other_major_version_is_refused_when_building_a_model() -> None:
    with pytest.raises(ValidationError, match="schema version 2.0 is not supported"):
        m.Status(v="2.0", node=NODE, state="online")


@pytest.mark.parametrize(
    "version",
    ["1", "1.", "1.x", "1.0.3", "v1.0", " 1.0", "1.0\n", "", 1.0, 1, None, ["1", "0"]],
    ids=repr,
)
def test_garbled_version_is_refused(version: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        decode(Channel.STATUS, encode(payload(m.Status, v=version)))

    assert caught.value.reason in ("schema", "wrong-version")
    if caught.value.reason == "schema":
        assert caught.value.detail.startswith("v: ")


def test_version_with_non_ascii_digits_is_refused() -> None:
    # "\d" in pydantic's Rust regex is any Unicode digit: "1.٠" must not pass as a version.
    with pytest.raises(PayloadError, match="^schema: v: "):
        decode(Channel.STATUS, encode(payload(m.Status, v="1.\u0660")))
    with pytest.raises(ValidationError):
        m.Status(v="\u0661.0", node=NODE, state="online")


def test_payload_without_version_is_refused() -> None:
    data = payload(m.Status)
    del data["v"]

    # Python code may leave "v" to its default; on the wire it is required.
    with pytest.raises(PayloadError, match="^schema: v: "):
        decode(Channel.STATUS, encode(data))


# ---- codec reasons -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b" " * (MAX_PAYLOAD + 1), "too-large"),
        (b"\xff\xfe", "not-utf8"),
        (b"", "not-json"),
        (b'{"v": "1.0", "node": ', "not-json"),
        (b"{'v': '1.0'}", "not-json"),
        (b"[]", "not-object"),
        (b'[{"v": "1.0", "node": "a", "state": "online"}]', "not-object"),
        (b'"online"', "not-object"),
        (b"null", "not-object"),
        (b"{}", "schema"),
    ],
    ids=[
        "one byte too large",
        "not utf-8",
        "empty",
        "truncated json",
        "python repr",
        "empty list",
        "object inside a list",
        "string",
        "null",
        "empty object",
    ],
)
def test_codec_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=f"^{reason}: ") as caught:
        decode(Channel.STATUS, raw)

    assert caught.value.reason == reason
    assert caught.value.detail


def test_payload_of_exactly_max_size_is_decoded() -> None:
    wire = EXAMPLES[m.Status].to_json()
    padded = wire + b" " * (MAX_PAYLOAD - len(wire))
    assert len(padded) == MAX_PAYLOAD

    assert decode(Channel.STATUS, padded) == EXAMPLES[m.Status]


def test_too_large_is_checked_before_parsing() -> None:
    with pytest.raises(PayloadError, match="too-large") as caught:
        decode(Channel.STATUS, b"\xff" * (MAX_PAYLOAD + 1))

    assert str(MAX_PAYLOAD) in caught.value.detail


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"state": "asleep"}, "state"),
        ({"node": "Bad Node"}, "node"),
        ({"at": "yesterday"}, "at"),
    ],
    ids=["bad enum", "bad node id", "bad datetime"],
)
def test_schema_error_names_the_field(change: dict[str, Any], path: str) -> None:
    with pytest.raises(PayloadError, match="schema") as caught:
        decode(Channel.STATUS, encode(payload(m.Status, **change)))

    assert caught.value.reason == "schema"
    assert caught.value.detail.startswith(f"{path}: ")


def test_schema_error_names_the_nested_field_path() -> None:
    data = payload(m.EventBatch)
    data["events"][0]["detail"]["rating"] = 9

    with pytest.raises(PayloadError, match="schema") as caught:
        decode(Channel.EVENTS, encode(data))

    assert "events.0.detail.rating-tap.rating" in caught.value.detail


def test_schema_error_lists_at_most_three_problems() -> None:
    with pytest.raises(PayloadError, match="schema") as caught:
        decode(Channel.CMD, b'{"v": "1.0"}')

    # Command has five required fields: three are named, the rest counted.
    assert caught.value.detail.count(": required but missing") == 3
    assert caught.value.detail.endswith(" (+2 more)")


def test_decode_as_uses_the_given_model() -> None:
    wire = EXAMPLES[m.Ack].to_json()

    assert decode_as(m.Ack, wire) == EXAMPLES[m.Ack]
    with pytest.raises(PayloadError, match="schema"):
        decode_as(m.Status, wire)


# ---- events ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EVENT_DETAILS), ids=list(EVENT_DETAILS))
def test_event_batch_with_each_kind_round_trips(kind: str) -> None:
    batch = batch_of(EVENT_DETAILS[kind])

    decoded = decode(Channel.EVENTS, batch.to_json())

    assert decoded == batch
    assert type(decoded.events[0].detail) is type(EVENT_DETAILS[kind])
    assert decoded.events[0].detail.kind == kind


def test_event_kinds_cover_the_detail_union() -> None:
    schema = m.event_detail_adapter.json_schema()

    assert set(schema["discriminator"]["mapping"]) == set(EVENT_DETAILS)


def test_unknown_event_kind_is_refused() -> None:
    data = payload(m.EventBatch)
    data["events"][0]["detail"] = {"kind": "door-opened", "door": "front"}

    with pytest.raises(PayloadError, match="schema") as caught:
        decode(Channel.EVENTS, encode(data))

    assert caught.value.detail.startswith("events.0.detail")


@pytest.mark.parametrize(
    ("rating", "scale"),
    [(4, 3), (5, 4), (5, 3)],
    ids=["4 of 3", "5 of 4", "5 of 3"],
)
def test_rating_above_scale_is_refused(rating: int, scale: int) -> None:
    with pytest.raises(ValidationError, match=f"rating {rating} is above the pad's scale {scale}"):
        m.RatingTap(pad="pad-1", rating=rating, scale=scale)


def test_rating_above_scale_is_refused_on_the_wire() -> None:
    data = payload(m.EventBatch)
    data["events"][0]["detail"].update(rating=5, scale=3)

    with pytest.raises(PayloadError, match="above the pad's scale 3"):
        decode(Channel.EVENTS, encode(data))


@pytest.mark.parametrize(
    ("rating", "scale"),
    [(1, 3), (3, 3), (4, 4), (5, 5)],
    ids=["worst of 3", "best of 3", "best of 4", "best of 5"],
)
def test_rating_within_scale_is_accepted(rating: int, scale: int) -> None:
    assert m.RatingTap(pad="pad-1", rating=rating, scale=scale).rating == rating


@pytest.mark.parametrize(
    ("rating", "scale"),
    [(0, 5), (-1, 5), (6, 5), (1, 2), (1, 6)],
    ids=["rating 0", "negative rating", "rating 6", "scale 2", "scale 6"],
)
def test_rating_and_scale_out_of_range_are_refused(rating: int, scale: int) -> None:
    with pytest.raises(ValidationError):
        m.RatingTap(pad="pad-1", rating=rating, scale=scale)


def test_event_batch_of_max_batch_events_is_accepted() -> None:
    batch = batch_of(*[EVENT_DETAILS["rating-tap"]] * m.MAX_BATCH)

    assert len(decode(Channel.EVENTS, batch.to_json()).events) == m.MAX_BATCH


@pytest.mark.parametrize("count", [0, m.MAX_BATCH + 1], ids=["empty", "max + 1"])
def test_event_batch_size_out_of_range_is_refused(count: int) -> None:
    one = payload(m.EventBatch)["events"][0]
    data = payload(m.EventBatch, events=[{**one, "seq": i + 1} for i in range(count)])

    with pytest.raises(PayloadError, match="schema") as caught:
        decode(Channel.EVENTS, encode(data))

    assert caught.value.detail.startswith("events: ")


@pytest.mark.parametrize("count", [0, m.MAX_BATCH + 1], ids=["empty", "max + 1"])
def test_ack_size_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(PayloadError, match="schema"):
        decode(Channel.ACK, encode({"v": "1.0", "ids": [EVENT_ID] * count}))


@pytest.mark.parametrize(
    "event_id",
    [
        EVENT_ID.upper(),
        EVENT_ID[:-1],
        EVENT_ID + "0",
        "g" * 32,
        "0123456789abcdef-0123456789abcde",
        "",
        "{" + EVENT_ID[2:] + "}",
    ],
    ids=["upper hex", "31 chars", "33 chars", "not hex", "uuid dash", "empty", "braces"],
)
def test_event_id_must_be_32_lower_hex(event_id: str) -> None:
    data = payload(m.EventBatch)
    data["events"][0]["id"] = event_id

    with pytest.raises(PayloadError, match="schema") as caught:
        decode(Channel.EVENTS, encode(data))

    assert caught.value.detail.startswith("events.0.id: ")
    with pytest.raises(ValidationError):
        m.Ack(ids=[event_id])


@pytest.mark.parametrize("seq", [0, -1], ids=["zero", "negative"])
def test_event_seq_starts_at_one(seq: int) -> None:
    with pytest.raises(ValidationError, match="seq"):
        m.Event(id=EVENT_ID, seq=seq, at=AT, detail=EVENT_DETAILS["scan"])


def test_naive_datetime_is_refused_in_a_model() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        m.Event(id=EVENT_ID, seq=1, at=datetime(2025, 3, 14, 8, 30), detail=EVENT_DETAILS["scan"])


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (m.Status, "at"),
        (m.Health, "at"),
        (m.Command, "expires_at"),
        (m.Announce, "expires_at"),
        (m.CommandResult, "finished_at"),
    ],
    ids=lambda x: x if isinstance(x, str) else x.__name__,
)
def test_naive_datetime_is_refused_on_the_wire(model: type[m.Message], field: str) -> None:
    data = payload(model, **{field: "2025-03-14T08:30:15"})

    with pytest.raises(PayloadError, match="schema") as caught:
        decode(CHANNEL_BY_MODEL[model], encode(data))

    assert caught.value.detail.startswith(f"{field}: ")
    assert "timezone" in caught.value.detail


def test_aware_datetime_keeps_its_instant_across_the_wire() -> None:
    decoded = decode(Channel.STATUS, EXAMPLES[m.Status].to_json())

    assert decoded.at == AT
    assert decoded.at.utcoffset() == timedelta(hours=7)


def test_messages_are_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        EXAMPLES[m.Status].state = "offline"  # type: ignore[misc]
