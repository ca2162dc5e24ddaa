"""Releases side by side under one prefix, and the links that choose between them::

    <prefix>/releases/<version>/   a virtualenv each; complete once it holds .rpfleet-installed
    <prefix>/current -> releases/<version>   what systemd runs (ExecStart=<prefix>/current/bin/rpfleet)
    <prefix>/guard   -> releases/<version>   the last proven release, which runs the update guard

Links are switched atomically (`agent.update.atomic.point_link_atomic`); a release is
built in place (a venv's scripts name their own absolute path, so it cannot be moved
after) and marked complete last, so a half-built one is recognised and built again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agent.update.atomic import fsync_directory, point_link_atomic

COMPLETE = ".rpfleet-installed"
Pause = Callable[[str], None]


def _no_pause(point: str) -> None:
    pass


class InstallError(Exception):
    """An install step failed; the message says which and carries the tool's output."""


class ReleaseStore:
    def __init__(self, prefix: Path, *, python: str | None = None, pause: Pause = _no_pause) -> None:
        """``python`` builds the venvs (default: the interpreter the running release was
        made from). ``pause`` is called with a step name between steps (tests kill there)."""
        self.prefix = prefix
        self.releases = prefix / "releases"
        self.current_link = prefix / "current"
        self.guard_link = prefix / "guard"
        self.python = python or getattr(sys, "_base_executable", sys.executable)
        self.pause = pause

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise ValueError(f"version: {version!r} is not a usable directory name")
        return self.releases / version

    @staticmethod
    def _named(link: Path) -> str | None:
        try:
            return Path(os.readlink(link)).name
        except (FileNotFoundError, OSError):
            return None

    def current(self) -> str | None:
        """The version ``current`` names, or None when there is no link."""
        return self._named(self.current_link)

    def guard(self) -> str | None:
        return self._named(self.guard_link)

    def is_complete(self, version: str) -> bool:
        return (self.path(version) / COMPLETE).is_file()

    def install(self, version: str, wheels: Path, requirement: str, *, no_deps: bool = False) -> None:
        """Make ``releases/<version>`` a venv with ``requirement`` installed offline from the
        wheel directory ``wheels``. Idempotent: a complete release is left alone, an
        incomplete one is removed and built again. Raises `InstallError`."""
        target = self.path(version)
        if self.is_complete(version):
            return
        if target.exists():
            shutil.rmtree(target)
        self.releases.mkdir(parents=True, exist_ok=True)
        self.pause("install:venv")
        # With pip (ensurepip's bundled wheel, offline): this release installs the next one
        # with its own `sys.executable -m pip`; a venv without pip could never update again.
        self._run([self.python, "-m", "venv", str(target)], "venv")
        self.pause("install:pip")
        pip = [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"), "install",
               "--no-index", "--find-links", str(wheels), "--no-cache-dir", "--disable-pip-version-check",
               "--no-input", "--quiet"] + (["--no-deps"] if no_deps else []) + [requirement]
        self._run(pip, "pip install")
        self.pause("install:mark")
        os.sync()  # the venv's files, not only the marker, must survive a power cut
        self._mark(version)

    def _mark(self, version: str) -> None:
        target = self.path(version)
        with open(target / COMPLETE, "w", encoding="utf-8") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        fsync_directory(target)

    def _run(self, argv: list[str], what: str) -> None:
        env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PYTHONNOUSERSITE": "1"}
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1200)
        if result.returncode != 0:
            raise InstallError(f"{what} failed ({result.returncode}): {(result.stderr or result.stdout)[-800:]}")

    def switch(self, version: str) -> None:
        """Point ``current`` at a complete release (atomically). Raises `InstallError`
        for an incomplete one: ``current`` never names a half-built release."""
        if not self.is_complete(version):
            raise InstallError(f"release {version} is not completely installed")
        self._point(self.current_link, version, "switch")

    def switch_back(self, version: str) -> None:
        """Point ``current`` at ``version`` again, a release that ran before (it may predate
        the completion marker, e.g. installed by ansible). Raises `InstallError` when it is gone."""
        if not self.runnable(version):
            raise InstallError(f"release {version} has no bin/rpfleet: cannot go back to it")
        self._point(self.current_link, version, "switch-back")

    def pin_guard(self, version: str | None) -> None:
        """Point ``guard`` at a release that ran well (the update guard runs from there)."""
        if version and self.runnable(version) and self.guard() != version:
            self._point(self.guard_link, version, "guard")

    def runnable(self, version: str) -> bool:
        return (self.path(version) / "bin" / "rpfleet").exists()

    def _point(self, link: Path, version: str, step: str) -> None:
        self.pause(f"{step}:link")
        point_link_atomic(link, Path("releases") / version)
        self.pause(f"{step}:linked")

    def remove(self, version: str) -> None:
        """Remove a release unless a link names it."""
        if version in (self.current(), self.guard()):
            return
        shutil.rmtree(self.path(version), ignore_errors=True)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove every release but ``keep`` and those the links name; returns the removed."""
        keep = keep | {self.current(), self.guard()}
        removed = []
        for entry in sorted(self.releases.iterdir()) if self.releases.is_dir() else []:
            if entry.is_dir() and entry.name not in keep and not entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed
