"""Session fixtures: two real artifacts built from the working tree (one in process,
one through the `rpfleet release build` command, at the same time) and release keys."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from rpfleet.release.artifact import Manifest, read_manifest
from tests.rpfleet.release.factory import ReleaseKey, build, make_key

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Builds:
    """Unsigned artifacts: ``v020`` (0.2.0, any), ``v030_arm`` (0.3.0, aarch64, by the CLI)
    and ``v021_deps`` (0.2.1 with every [agent] dependency for this machine)."""

    v020: Path
    v020_manifest: Manifest
    v030_arm: Path
    cli_build: subprocess.CompletedProcess
    v021_deps: Path
    v021_deps_manifest: Manifest
    tree_before: dict[str, str]
    tree_after: dict[str, str]


def tree_digests() -> dict[str, str]:
    """The tree's files a version stamp would change, and what a build could leave behind."""
    files = {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest()
             for name in ("pyproject.toml", "rpfleet/__init__.py")}
    files["build/ exists"] = str((ROOT / "build").exists())
    return files


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    directory = tmp_path_factory.mktemp("releases")
    arm = directory / "rpfleet-0.3.0-aarch64.tar"
    command = [sys.executable, "-m", "rpfleet", "release", "build", "--version", "0.3.0", "--arch", "arm64",
               "--out", str(arm)]
    before = tree_digests()
    with ThreadPoolExecutor(max_workers=3) as pool:
        cli = pool.submit(subprocess.run, command, capture_output=True, text=True, timeout=240, cwd=ROOT)
        # pip takes the dependency wheels from its cache and the machine's index (pip.conf).
        deps = pool.submit(build, directory, "0.2.1", with_deps=True)
        v020, manifest = build(directory, "0.2.0")
        cli_build = cli.result()
        v021_deps, deps_manifest = deps.result()
    assert cli_build.returncode == 0, cli_build.stderr
    return Builds(v020=v020, v020_manifest=manifest, v030_arm=arm, cli_build=cli_build,
                  v021_deps=v021_deps, v021_deps_manifest=deps_manifest, tree_before=before,
                  tree_after=tree_digests())


@pytest.fixture(scope="session")
def key_a(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    return make_key(tmp_path_factory.mktemp("key-a"))


@pytest.fixture(scope="session")
def key_b(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    """The rotated-in key."""
    return make_key(tmp_path_factory.mktemp("key-b"))


@pytest.fixture(scope="session")
def manifest_v030_arm(builds: Builds) -> Manifest:
    return read_manifest(builds.v030_arm)
