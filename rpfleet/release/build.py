"""Building an unsigned artifact from a working tree.

The tree is copied to a temporary directory first (only what goes into the
wheel: pyproject.toml, README.md and the packages pyproject names), so that a
build neither writes ``build/`` or ``*.egg-info`` into the tree nor sees a
half-edited file twice, and so that ``version`` can be stamped into the copy
without touching the tree. Then ``pip wheel --no-deps`` makes the rpfleet
wheel and, with ``with_deps``, pip fetches the ``[agent]`` dependencies as
wheels for the target (built here from source when the target is this
machine; binary wheels only for another architecture).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from packaging.version import InvalidVersion, Version

from rpfleet.release.artifact import (
    ARTIFACT_FORMAT,
    Manifest,
    PayloadFile,
    interpreter_tag,
    machine_architecture,
    normalize_architecture,
    write_artifact,
)

Progress = Callable[[str], None]

_PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
# manylinux tags a Debian 12 node (glibc 2.36) accepts, for a build for another architecture.
_GLIBC_MINORS = range(17, 37)


class BuildError(RuntimeError):
    """The build could not finish; the message says which step and why."""


def default_source() -> Path:
    """The working tree this rpfleet was imported from (the directory with pyproject.toml)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise BuildError(f"no pyproject.toml at {root}: build from a working tree (--source DIR)")
    return root


def build_artifact(out: Path, *, source: Path | None = None, version: str | None = None,
                   with_deps: bool = False, architecture: str | None = None,
                   python_tag: str | None = None, progress: Progress = lambda line: None) -> Manifest:
    """Build an **unsigned** artifact at ``out`` from the tree at ``source`` (default: this one).

    ``version`` (PEP 440) is stamped into a copy of the tree, never into the tree.
    ``architecture`` defaults to ``any`` without dependencies (the rpfleet wheel is
    pure Python) and to this machine's with them; ``python_tag`` to ``py3`` and to
    this interpreter's (``cp311``). Calls ``progress`` with a line per step.
    Raises `BuildError` naming the step that failed.
    """
    started = time.monotonic()

    def say(line: str) -> None:
        progress(f"[{time.monotonic() - started:5.1f}s] {line}")

    source = Path(source) if source is not None else default_source()
    if version is not None:
        try:
            version = str(Version(version))
        except InvalidVersion:
            raise BuildError(f"--version: {version!r} is not a PEP 440 version (e.g. 0.3.0)") from None
    if architecture is not None:
        architecture = normalize_architecture(architecture)
        if not re.fullmatch(r"[a-z0-9_]{1,32}", architecture):
            raise BuildError(f"--arch: {architecture!r} is not an architecture name (x86_64, aarch64, any)")
    if with_deps:
        architecture = architecture or machine_architecture()
        python_tag = python_tag or interpreter_tag()
        if architecture == "any":
            raise BuildError("--arch any with --with-deps: dependency wheels are built for one architecture")
    else:
        architecture = architecture or "any"
        python_tag = python_tag or "py3"
    if not re.fullmatch(r"py3|cp3[0-9]{1,2}", python_tag):
        raise BuildError(f"--python: {python_tag!r} is not a Python tag (py3, cp311)")

    with tempfile.TemporaryDirectory(prefix="rpfleet-release-") as tmp:
        work = Path(tmp)
        tree, wheels = work / "tree", work / "wheels"
        say(f"copying the tree at {source}")
        copy_tree(source, tree)
        version = stamp_version(tree, version)
        say(f"pip wheel rpfleet {version} (no dependencies)")
        _run([*_PIP, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels),
              str(tree)], step="building the rpfleet wheel", cwd=work)
        built = sorted(wheels.glob("rpfleet-*.whl"))
        if len(built) != 1 or f"-{version}-" not in built[0].name:
            raise BuildError(f"building the rpfleet wheel: expected rpfleet-{version}-*.whl, got "
                             f"{[p.name for p in built]}")
        if with_deps:
            requirements = agent_requirements(tree)
            say(f"fetching {len(requirements)} [agent] dependencies as wheels for "
                f"{architecture}/{python_tag} (slow the first time: some build from source)")
            _fetch_dependencies(requirements, wheels, architecture, python_tag, work)
            if architecture == machine_architecture() and python_tag == interpreter_tag():
                say("checking that the wheel set installs offline")
                _run([*_PIP, "install", "--quiet", "--dry-run", "--ignore-installed", "--no-index",
                      "--find-links", str(wheels), f"rpfleet[agent]=={version}"],
                     step="the offline install check (pip install --no-index)", cwd=work)
        files = [_payload_file(path) for path in sorted(wheels.glob("*.whl"))]
        manifest = Manifest(
            format=ARTIFACT_FORMAT, version=version, architecture=architecture, python_tag=python_tag,
            min_config_schema=contract_version(tree), created_at=datetime.now(timezone.utc).replace(microsecond=0),
            bundles_dependencies=with_deps, files=tuple(files), total_size=sum(f.size for f in files),
        )
        say(f"writing {out} ({len(files)} wheel(s), {manifest.total_size / 1e6:.1f} MB)")
        write_artifact(Path(out), manifest.encode(), None,
                       [(f.path, wheels / f.path, f.size) for f in files], manifest.created_at)
    say("done (unsigned: sign it with `rpfleet release sign`)")
    return manifest


def copy_tree(source: Path, dest: Path) -> None:
    """What the wheel is built from: pyproject.toml, README.md and the packages that
    ``[tool.setuptools.packages.find] include`` names (caches and egg-info left out)."""
    pyproject = source / "pyproject.toml"
    try:
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{pyproject}: {exc}") from None
    include = config.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include")
    if not include:
        raise BuildError(f"{pyproject}: [tool.setuptools.packages.find] include is missing")
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "setup.cfg", "setup.py", "MANIFEST.in"):
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*")
    for package in sorted({pattern.split(".")[0].rstrip("*") for pattern in include}):
        if (source / package).is_dir():
            shutil.copytree(source / package, dest / package, ignore=ignore)


def stamp_version(tree: Path, version: str | None) -> str:
    """Write ``version`` into the copy's pyproject.toml and ``rpfleet/__init__.py``;
    returns the version the wheel will carry (the tree's own when ``version`` is None)."""
    pyproject = tree / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    current = tomllib.loads(text).get("project", {}).get("version")
    if version is None:
        if not current:
            raise BuildError(f"{pyproject}: [project] version is missing")
        return str(Version(current))
    text, count = re.subn(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', text, count=1)
    if count != 1:
        raise BuildError(f"{pyproject}: no `version = \"…\"` line to stamp")
    pyproject.write_text(text, encoding="utf-8")
    init = tree / "rpfleet" / "__init__.py"
    if init.is_file():
        init.write_text(re.sub(r'(?m)^__version__\s*=\s*"[^"]*"', f'__version__ = "{version}"',
                               init.read_text(encoding="utf-8")), encoding="utf-8")
    return version


def agent_requirements(tree: Path) -> list[str]:
    """The requirements a node installs: the core's and the ``[agent]`` extra's."""
    project = tomllib.loads((tree / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return sorted(set(project.get("dependencies", []) + project.get("optional-dependencies", {}).get("agent", [])))


def contract_version(tree: Path) -> str:
    """The wire-contract version (``major.minor``) of the tree, read from its messages.py."""
    messages = tree / "rpfleet" / "protocol" / "messages.py"
    text = messages.read_text(encoding="utf-8")
    major = re.search(r"(?m)^SCHEMA_MAJOR\s*=\s*(\d+)", text)
    minor = re.search(r"(?m)^SCHEMA_MINOR\s*=\s*(\d+)", text)
    if not (major and minor):
        raise BuildError(f"{messages}: SCHEMA_MAJOR / SCHEMA_MINOR not found")
    return f"{major.group(1)}.{minor.group(1)}"


def _fetch_dependencies(requirements: list[str], wheels: Path, architecture: str, python_tag: str,
                        work: Path) -> None:
    if architecture == machine_architecture() and python_tag == interpreter_tag():
        _run([*_PIP, "wheel", "--quiet", "--wheel-dir", str(wheels), *requirements],
             step="fetching the [agent] dependencies (pip wheel)", cwd=work)
        return
    # Another target: pip cannot build sources for it, so binary wheels only.
    platforms = [f"manylinux_2_{minor}_{architecture}" for minor in _GLIBC_MINORS]
    platforms += [f"manylinux2014_{architecture}", f"linux_{architecture}"]
    python_version = f"{python_tag[2]}.{python_tag[3:]}"
    command = [*_PIP, "download", "--quiet", "--only-binary=:all:", "--dest", str(wheels),
               "--implementation", "cp", "--python-version", python_version,
               "--abi", python_tag, "--abi", "abi3", "--abi", "none"]
    for platform_tag in platforms:
        command += ["--platform", platform_tag]
    _run([*command, *requirements],
         step=f"fetching binary wheels for {architecture}/{python_tag} (a dependency without one, "
              f"such as evdev, must be built on an {architecture} machine: run the build there)", cwd=work)


def _payload_file(path: Path) -> PayloadFile:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return PayloadFile(path=path.name, size=path.stat().st_size, sha256=digest.hexdigest())


def _run(command: list[str], *, step: str, cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise BuildError(f"{step} failed (exit {result.returncode}):\n{tail}")
