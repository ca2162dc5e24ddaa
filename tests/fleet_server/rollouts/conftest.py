"""A simulated fleet for rollout tests: nodes that speak through the real ingest
(the same payloads a node publishes), a real signed artifact added as a release,
and a publisher that keeps, as a broker does, the last retained message per node."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fleet_server.ingest import Ingest
from fleet_server.rollouts.publish import NoUpdate, publish_due
from fleet_server.rollouts.releases import add_release
from fleet_server.store import connect
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import (
    Event, EventBatch, Health, PeripheralHealth, RatingTap, Status, UpdateProgress,
)
from rpfleet.release.artifact import Manifest, PayloadFile, write_artifact
from rpfleet.release.keys import generate_key_pair, load_private_key, load_public_key
from rpfleet.release.signing import sign_artifact

# Wednesday 2026-11-25, 02:00 UTC: 09:00 in Hanoi.
START = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
OLD, NEW = "1.0.0", "1.1.0"


def make_artifact(directory: Path, version: str, private_key) -> Path:
    payload = directory / f"rpfleet-{version}-py3-none-any.whl"
    payload.write_bytes(f"wheel of {version}\n".encode() * 100)
    data = payload.read_bytes()
    manifest = Manifest(
        format=1, version=version, architecture="any", python_tag="py3", min_config_schema="1.5",
        created_at=START, bundles_dependencies=False,
        files=(PayloadFile(path=payload.name, size=len(data), sha256=hashlib.sha256(data).hexdigest()),),
        total_size=len(data))
    out = directory / f"rpfleet-{version}.rpa"
    write_artifact(out, manifest.encode(), None, [(payload.name, payload, len(data))], START)
    sign_artifact(out, private_key)
    return out


@pytest.fixture
def release_keys(tmp_path):
    _, private, public = generate_key_pair(tmp_path / "keys")
    return load_private_key(private), load_public_key(public)


class Fleet:
    """Simulated nodes over a store, talking through `Ingest.handle`."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url = db_url
        self.tmp_path = tmp_path
        self.engine = connect(db_url)
        self.ingest = Ingest(self.engine, publish_ack=lambda node, ack: None)
        self.retained: dict[str, object] = {}  # node -> last retained down/update
        self.received: dict[str, list[str]] = {}  # node -> every version it was sent
        self.versions: dict[str, str] = {}
        self.bad: set[str] = set()
        """Nodes whose update rolls back."""
        self.loses_pad: set[str] = set()
        """Nodes whose new version starts but reports the rating pad missing."""
        self._seq: dict[str, int] = {}

    def restart(self) -> None:
        """A new server process: a fresh engine and ingest over the same store."""
        self.engine.dispose()
        self.engine = connect(self.db_url)
        self.ingest = Ingest(self.engine, publish_ack=lambda node, ack: None)

    def say(self, node: str, channel: Channel, message, at: datetime) -> None:
        self.ingest.handle([(topic(node, channel), message.to_json(), at)])

    def join(self, node: str, at: datetime, version: str = OLD) -> None:
        self.versions[node] = version
        self.say(node, Channel.STATUS, Status(node=node, state="online", agent_version=version), at)
        self.health(node, at)

    def health(self, node: str, at: datetime) -> None:
        lost = node in self.loses_pad and self.versions[node] == NEW
        self.say(node, Channel.HEALTH, Health(
            node=node, at=at, uptime_s=60, outbox_pending=0, agent_version=self.versions[node],
            peripherals=[PeripheralHealth(id="pad-1", kind="rating-pad",
                                          state="missing" if lost else "ok")]), at)

    def taps(self, node: str, times: list[datetime]) -> None:
        """Rating taps pressed at ``times``, sent as the node's outbox sends them."""
        for start in range(0, len(times), 500):
            events = []
            for at in times[start:start + 500]:
                seq = self._seq[node] = self._seq.get(node, 0) + 1
                events.append(Event(id=hashlib.md5(f"{node}/{seq}".encode()).hexdigest(), seq=seq,
                                    at=at, detail=RatingTap(pad="pad-1", counter="1", rating=5, scale=5)))
            self.say(node, Channel.EVENTS, EventBatch(node=node, events=events), times[-1])

    def publish(self, node, channel, message, *, retain=False) -> None:
        assert channel is Channel.UPDATE_DESIRED and retain
        self.retained[node] = message
        if not isinstance(message, NoUpdate):
            self.received.setdefault(node, []).append(message.version)

    def step(self, at: datetime, base_url: str = "https://fleet.example:8443") -> list[str]:
        """The server publishes what is due; each node sent a new version acts on it:
        a bad node rolls back, a good one switches and reports done and healthy."""
        sent = publish_due(self.engine, self.publish, base_url, at)
        for node in sent:
            message = self.retained[node]
            if isinstance(message, NoUpdate) or message.version == self.versions[node]:
                continue
            if node in self.bad:
                self.say(node, Channel.UPDATE_PROGRESS, UpdateProgress(
                    node=node, version=message.version, state="rolled-back",
                    reason="rating pad missing after the switch", at=at), at)
            else:
                self.versions[node] = message.version
                self.say(node, Channel.UPDATE_PROGRESS, UpdateProgress(
                    node=node, version=message.version, state="done", at=at), at)
                self.health(node, at)
        return sent


@pytest.fixture
def fleet(db_url, tmp_path):
    made = Fleet(db_url, tmp_path)
    yield made
    made.engine.dispose()


@pytest.fixture
def release(fleet, release_keys, tmp_path):
    private, public = release_keys
    artifact = make_artifact(tmp_path, NEW, private)
    return add_release(fleet.engine, artifact, [public], tmp_path / "releases", by="test", now=START)


def later(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)
