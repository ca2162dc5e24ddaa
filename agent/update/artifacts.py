"""Signed artifacts as the updater uses them: verify, then install beside the running release.

A thin adapter over `rpfleet.release.artifact` (imported when first used): the artifact
format, signatures and refusal reasons are defined there.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from agent.update.journal import Target
from agent.update.releases import ReleaseStore


class Refused(Exception):
    """The artifact must not be installed. ``reason`` is stable (e.g. ``bad-signature``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class Artifacts(Protocol):
    def verify(self, path: Path, target: Target, installed: str | None) -> None:
        """Raise `Refused` unless ``path`` is a trusted artifact of ``target.version`` for this node."""

    def install(self, path: Path, target: Target, installed: str | None, store: ReleaseStore) -> None:
        """Make ``store``'s release ``target.version`` from ``path`` (idempotent); raise
        `Refused` or `agent.update.releases.InstallError`."""


class SignedArtifacts:
    """The real thing: Ed25519-signed artifacts whose payload is a wheel set."""

    def __init__(self, trusted_keys: Sequence, *, architecture: str | None = None,
                 requirement: str | None = None, no_deps: bool = False) -> None:
        """``requirement`` overrides the manifest's (``rpfleet[agent]==VERSION``); ``no_deps``
        installs only the listed wheel (a payload without its dependencies, in tests)."""
        from rpfleet.release import artifact

        self._artifact = artifact
        self.trusted_keys = list(trusted_keys)
        self.architecture = architecture or artifact.machine_architecture()
        self.requirement = requirement
        self.no_deps = no_deps

    def _verified(self, path: Path, target: Target, installed: str | None):
        a = self._artifact
        try:
            manifest = a.verify_artifact(path, self.trusted_keys, installed_version=installed,
                                         architecture=self.architecture, python_tag=a.interpreter_tag(),
                                         allow_downgrade=target.rollback)
        except a.ArtifactRefused as e:
            raise Refused(e.reason, e.message) from e
        if manifest.version != target.version:
            raise Refused("malformed",
                          f"the artifact holds {manifest.version}, the server announced {target.version}")
        return manifest

    def verify(self, path: Path, target: Target, installed: str | None) -> None:
        self._verified(path, target, installed)

    def install(self, path: Path, target: Target, installed: str | None, store: ReleaseStore) -> None:
        if store.is_complete(target.version):
            return
        manifest = self._verified(path, target, installed)  # again: the file may have changed since
        payload = store.releases / f".payload-{target.version}"
        shutil.rmtree(payload, ignore_errors=True)
        try:
            self._artifact.extract_payload(path, payload, expected=manifest)
        except self._artifact.ArtifactRefused as e:
            raise Refused(e.reason, e.message) from e
        store.pause("install:extracted")
        store.install(target.version, payload, self.requirement or manifest.requirement, no_deps=self.no_deps)
        shutil.rmtree(payload, ignore_errors=True)
