"""Tiny releases for the updater's tests: a directory with ``bin/rpfleet`` instead of a venv.

`TinyArtifacts` implements `agent.update.artifacts.Artifacts` for artifact files that
just name their version; the real format and a real venv install are covered by
test_real_release.py. Also a probe of the running node and a restart that only records.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agent.update.artifacts import Refused
from agent.update.releases import COMPLETE, ReleaseStore
from rpfleet.protocol.messages import UpdateDesired

NODE = "bd-phuong-q1"


def tiny_artifact(directory: Path, version: str) -> tuple[Path, UpdateDesired]:
    """An artifact file for ``version`` and the ``down/update`` that announces it."""
    path = directory / f"rpfleet-{version}.artifact"
    path.write_bytes(f"tiny-release {version}\n".encode() + bytes(range(256)) * 8)
    data = path.read_bytes()
    return path, UpdateDesired(version=version, url=path.as_uri(), sha256=hashlib.sha256(data).hexdigest(),
                               size=len(data), signature="tiny")


def make_release(store: ReleaseStore, version: str) -> None:
    """A complete tiny release whose ``bin/rpfleet`` prints its version."""
    target = store.path(version)
    (target / "bin").mkdir(parents=True, exist_ok=True)
    script = target / "bin" / "rpfleet"
    script.write_text(f"#!/bin/sh\necho {version}\n", encoding="utf-8")
    script.chmod(0o755)
    (target / COMPLETE).write_text(version + "\n", encoding="utf-8")


def installed_node(prefix: Path, version: str = "1.0.0") -> ReleaseStore:
    """A node as ansible leaves it: one release, ``current`` pointing at it."""
    store = ReleaseStore(prefix)
    make_release(store, version)
    os.symlink(Path("releases") / version, prefix / "current")
    return store


class TinyArtifacts:
    def verify(self, path: Path, target, installed: str | None) -> None:
        first = path.read_bytes().split(b"\n", 1)[0].decode(errors="replace")
        if first != f"tiny-release {target.version}":
            raise Refused("tampered", f"{path.name} starts with {first!r}")

    def install(self, path: Path, target, installed: str | None, store: ReleaseStore) -> None:
        self.verify(path, target, installed)
        if store.is_complete(target.version):
            return
        release = store.path(target.version)
        shutil.rmtree(release, ignore_errors=True)
        (release / "bin").mkdir(parents=True)
        store.pause("tiny:bin")
        script = release / "bin" / "rpfleet"
        script.write_text(f"#!/bin/sh\necho {target.version}\n", encoding="utf-8")
        script.chmod(0o755)
        store.pause("tiny:mark")
        (release / COMPLETE).write_text(target.version + "\n", encoding="utf-8")


class FakeNode:
    """The running agent's view of itself (`agent.update.updater.NodeProbe`)."""

    def __init__(self, *, connected: bool = True, busy: str | None = None, drivers_ok=("pad-1",)) -> None:
        self.is_connected = connected
        self.is_busy = busy
        self.ok = list(drivers_ok)

    def connected(self) -> bool:
        return self.is_connected

    def busy(self) -> str | None:
        return self.is_busy

    def drivers_ok(self) -> list[str]:
        return self.ok


class RecordingRestart:
    def __init__(self) -> None:
        self.count = 0

    def restart(self) -> None:
        self.count += 1


class Clock:
    """A settable clock; starts inside the default maintenance window (02:00 Hanoi)."""

    def __init__(self, start: datetime = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
