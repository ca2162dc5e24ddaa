"""Sending handover records, and keeping the ones the server has not confirmed.

A record counts as sent only when the server's ``down/ack`` names its
``handover_id``. Until then it stays in ``<state_dir>/handover-pending.json``
(oldest first), and the next self-test, or ``rpfleet agent self-test --resend``,
sends it again. Sending twice is harmless: the server stores each id once.

The self-test connects with a client id of its own (``<node>-selftest``) and
a clean session, so a running agent keeps its session and its queued messages.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from agent.link import Delivery, publish_confirmed
from agent.settings import AgentSettings
from rpfleet.protocol import Channel, PayloadError, decode_as
from rpfleet.protocol.messages import Ack, Handover

PENDING_FILE = "handover-pending.json"

_RECORDS = TypeAdapter(list[Handover])


def pending_path(settings: AgentSettings) -> Path:
    return settings.state_dir / PENDING_FILE


def load_pending(path: Path) -> list[Handover]:
    """The records waiting to be sent; [] when there are none.

    Raises ValueError naming the file when it cannot be read, or not as records.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    try:
        return _RECORDS.validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"{path} does not hold handover records: {exc.error_count()} error(s)") from None


def save_pending(path: Path, records: list[Handover]) -> None:
    """Replace the file with ``records`` (none: remove it), atomically and durably:
    written beside it, flushed to disk, then renamed over it."""
    if not records:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(
        [json.loads(r.to_json()) for r in records], ensure_ascii=False, indent=1
    ).encode()
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def confirms(handover_id: str):
    """A test of a ``down/ack`` payload: does it name ``handover_id``? Anything else
    on that topic (the agent's own acks, a malformed payload) is not the answer."""

    def check(payload: bytes) -> bool:
        try:
            return handover_id in decode_as(Ack, payload).ids
        except PayloadError:
            return False

    return check


async def send(settings: AgentSettings, record: Handover, timeout: float) -> Delivery:
    """Publish ``record`` on ``up/handover`` and wait for the server to confirm it."""
    return await publish_confirmed(
        settings.node_id,
        settings.broker,
        Channel.HANDOVER,
        record,
        client_id=client_id(settings.node_id),
        confirms=confirms(record.handover_id),
        timeout=timeout,
    )


def client_id(node: str) -> str:
    return f"{node}-selftest"


@dataclass(frozen=True)
class Sent:
    confirmed: list[Handover]
    waiting: list[Handover]
    """Still unconfirmed, saved in the pending file."""
    detail: str
    """Why the first unconfirmed record was not confirmed (empty when all were)."""
    unsaved: str | None = None
    """Why the pending file could not be written (``waiting`` is then not on disk)."""


async def send_all(settings: AgentSettings, records: list[Handover], timeout: float) -> Sent:
    """Send ``records`` oldest first; stop at the first one not confirmed, and leave it and
    the rest in the pending file (which then holds exactly what is unconfirmed)."""
    path = pending_path(settings)
    confirmed: list[Handover] = []
    unsaved = None
    for index, record in enumerate(records):
        delivery = await send(settings, record, timeout)
        waiting = records[index + (1 if delivery.confirmed else 0):]
        try:
            save_pending(path, waiting)
        except OSError as exc:
            unsaved = f"cannot write {path}: {exc.strerror or exc}"
        if not delivery.confirmed:
            return Sent(confirmed, waiting, delivery.detail, unsaved)
        confirmed.append(record)
    return Sent(confirmed, [], "", unsaved)
