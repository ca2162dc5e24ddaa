"""Release artifacts: one signed file per agent release, and how it is checked.

An artifact is an **uncompressed** POSIX tar holding, in this order::

    manifest.json     the `Manifest` (UTF-8 JSON)
    manifest.sig      Ed25519 signatures over the exact bytes of manifest.json
                      (format in `rpfleet.release.keys`); absent until `sign`
    payload/<name>    the wheels, each listed in the manifest with size and sha256

The payload is a wheel set: the rpfleet wheel and, when the manifest says
``bundles_dependencies``, the wheels of its ``[agent]`` dependencies for the
target Python and architecture, so that a node installs offline::

    pip install --no-index --find-links DIR 'rpfleet[agent]==VERSION'

Uncompressed because the wheels are compressed already, because a flipped
byte then lands in the file it flips (and is caught by that file's hash), and
because a download can resume at a byte offset.

Trust: `read_manifest` trusts nothing (for display). `verify_artifact` checks
the signature against the caller's trusted keys, then the target and the
version, then every payload byte. `extract_payload` re-checks every byte while
it writes; pass it the manifest `verify_artifact` returned (``expected=``) so
that a file swapped between the two calls is refused.

Every refusal is an `ArtifactRefused` with a stable ``reason`` (see `REASONS`)
and a message for a person.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import sys
import tarfile
from datetime import datetime
from pathlib import Path
from typing import IO, Callable, Literal, Sequence

from packaging.version import InvalidVersion, Version
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rpfleet.release import keys as release_keys
from rpfleet.validation import error_lines

ARTIFACT_FORMAT = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
PAYLOAD_DIR = "payload/"
MAX_MANIFEST_BYTES = 1 << 20
_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE

REASONS = (
    "unsigned",  # no manifest.sig
    "bad-signature",  # a trusted key's signature does not match the manifest bytes
    "unknown-key",  # signed, but by no trusted key
    "tampered",  # payload differs from the signed manifest (bytes, size, files)
    "truncated",  # the file ends before the archive does
    "wrong-architecture",  # built for another CPU architecture or Python
    "downgrade",  # older than the installed version (and no explicit rollback)
    "not-newer",  # the version already installed
    "malformed",  # not an rpfleet artifact, or a manifest that does not validate
)
Reason = Literal[
    "unsigned", "bad-signature", "unknown-key", "tampered", "truncated",
    "wrong-architecture", "downgrade", "not-newer", "malformed",
]

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8l": "aarch64",
                 "armhf": "armv7l", "armv7": "armv7l"}


class ArtifactRefused(Exception):
    """An artifact that must not be installed: ``reason`` is one of `REASONS` (stable,
    for programs and the ``up/update`` report), ``message`` says why for a person."""

    def __init__(self, reason: Reason, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def normalize_architecture(name: str) -> str:
    """``amd64`` -> ``x86_64``, ``arm64`` -> ``aarch64``…; ``any`` and others unchanged (lower-cased)."""
    lowered = name.strip().lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def machine_architecture() -> str:
    """This machine's architecture as manifests name it (``x86_64``, ``aarch64``, ``armv7l``)."""
    return normalize_architecture(platform.machine())


def interpreter_tag() -> str:
    """The running interpreter's tag as wheels name it, e.g. ``cp311``."""
    return f"cp{sys.version_info.major}{sys.version_info.minor}"


class PayloadFile(BaseModel):
    """One file of the payload: a plain file name (no directories), its size and sha256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(min_length=1, max_length=200)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not is_plain_name(value):
            raise ValueError(f"{value!r} must be a plain file name (no '/', '\\', '..' or control characters)")
        return value


class Manifest(BaseModel):
    """What a release is and what it holds; signed as the exact bytes of ``manifest.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = Field(description="Artifact format; a node refuses formats it does not know.")
    version: str = Field(description="The release's PEP 440 version, normalised (e.g. '0.3.0').")
    architecture: str = Field(
        pattern=r"^[a-z0-9_]{1,32}$",
        description="CPU architecture the payload is built for ('x86_64', 'aarch64', 'armv7l'), or 'any' "
                    "for pure-Python wheels.",
    )
    python_tag: str = Field(
        pattern=r"^(py3|cp3[0-9]{1,2})$",
        description="Python the payload needs: 'py3' for pure wheels, 'cp311' for compiled ones.",
    )
    min_config_schema: str = Field(
        pattern=r"^[0-9]+\.[0-9]+$",
        description="The wire-contract version (major.minor) this release needs from the server's "
                    "config and commands: never send it to a fleet whose server speaks less.",
    )
    created_at: AwareDatetime
    bundles_dependencies: bool = Field(
        description="True when the payload holds every [agent] dependency (an offline install).",
    )
    files: tuple[PayloadFile, ...] = Field(min_length=1)
    total_size: int = Field(ge=0, description="Sum of the payload files' sizes, in bytes.")

    @field_validator("version")
    @classmethod
    def _pep440(cls, value: str) -> str:
        try:
            return str(Version(value))
        except InvalidVersion:
            raise ValueError(f"{value!r} is not a PEP 440 version (e.g. '0.3.0', '1.0rc1')") from None

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        names = [f.path for f in self.files]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"files: repeated path(s) {', '.join(repeated)}")
        total = sum(f.size for f in self.files)
        if total != self.total_size:
            raise ValueError(f"total_size: {self.total_size} but the files add up to {total}")
        return self

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)

    @property
    def requirement(self) -> str:
        """What pip installs from the payload: ``rpfleet[agent]==<version>``."""
        return f"rpfleet[agent]=={self.version}"

    def encode(self) -> bytes:
        """The manifest's bytes as written into an artifact (these are what gets signed)."""
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")


def is_plain_name(name: str) -> bool:
    """A file name safe to create in a directory: one segment, no traversal, printable."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and not name.startswith("-")
        and all(ch.isprintable() for ch in name)
    )


def parse_manifest(data: bytes) -> Manifest:
    """A `Manifest` from ``manifest.json`` bytes; `ArtifactRefused` (``malformed``) names the bad field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactRefused("malformed", "manifest.json is not UTF-8") from None
    try:
        return Manifest.model_validate_json(text)
    except ValidationError as exc:
        raise ArtifactRefused("malformed", "manifest.json: " + "; ".join(error_lines(exc, limit=5))) from None


class _Archive:
    """An opened artifact whose layout is checked: regular members with expected names,
    nothing cut off at the end, nothing but zeros after the last member."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: IO[bytes] = open(self.path, "rb")
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> None:
        size = os.fstat(self._file.fileno()).st_size
        if size == 0:
            raise ArtifactRefused("truncated", f"{self.path.name} is empty")
        try:
            self._tar = tarfile.open(fileobj=self._file, mode="r:")
            members = self._tar.getmembers()
        except tarfile.ReadError as exc:
            if size < _BLOCK or "truncated" in str(exc) or "unexpected end" in str(exc):
                raise ArtifactRefused("truncated", f"{self.path.name} ends inside a header") from None
            raise ArtifactRefused(
                "malformed", f"{self.path.name} is not an rpfleet artifact (an uncompressed tar): {exc}"
            ) from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            self._check_member(member)
            self.members[member.name] = member
        end = max((m.offset_data + _padded(m.size) for m in members), default=0)
        # tarfile stops listing silently at a cut or damaged header: the tail tells which.
        if size < end + 2 * _BLOCK:
            raise ArtifactRefused(
                "truncated", f"{self.path.name} ends {end + 2 * _BLOCK - size} byte(s) before the archive does"
            )
        self._file.seek(end)
        offset = end
        while chunk := self._file.read(_CHUNK):
            if chunk.count(0) != len(chunk):
                at = offset + next(i for i, b in enumerate(chunk) if b)
                raise ArtifactRefused(
                    "malformed", f"{self.path.name}: a damaged header or stray data at byte {at}"
                )
            offset += len(chunk)

    def _check_member(self, member: tarfile.TarInfo) -> None:
        name = member.name
        if name in self.members:
            raise ArtifactRefused("malformed", f"member {name!r} appears twice")
        if name not in (MANIFEST_NAME, SIGNATURE_NAME) and not (
            name.startswith(PAYLOAD_DIR) and is_plain_name(name[len(PAYLOAD_DIR):])
        ):
            raise ArtifactRefused(
                "malformed",
                f"unexpected member {name!r}: only {MANIFEST_NAME}, {SIGNATURE_NAME} and "
                f"{PAYLOAD_DIR}<plain file name> may be in an artifact",
            )
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):  # no links, devices, sparse or contiguous files
            raise ArtifactRefused("malformed", f"member {name!r} is not a regular file (links and devices are refused)")

    def read(self, name: str, limit: int) -> bytes | None:
        """A small member's bytes, or None when absent."""
        member = self.members.get(name)
        if member is None:
            return None
        if member.size > limit:
            raise ArtifactRefused("malformed", f"{name} is {member.size} bytes; at most {limit} allowed")
        stream = self._tar.extractfile(member)
        assert stream is not None  # a regular file, checked on open
        return stream.read()

    def open_member(self, name: str) -> IO[bytes]:
        stream = self._tar.extractfile(self.members[name])
        assert stream is not None
        return stream

    def payload_names(self) -> set[str]:
        return {name[len(PAYLOAD_DIR):] for name in self.members if name.startswith(PAYLOAD_DIR)}

    def check_payload(self, manifest: Manifest, sink: Callable[[PayloadFile], IO[bytes]] | None = None) -> None:
        """Every payload byte against the manifest, in manifest order; each file's bytes also
        go to ``sink(file)`` when given (the caller closes and publishes it after the call)."""
        present, listed = self.payload_names(), {f.path for f in manifest.files}
        if present - listed:
            raise ArtifactRefused(
                "tampered", f"{PAYLOAD_DIR}{sorted(present - listed)[0]} is not in the signed manifest"
            )
        if listed - present:
            raise ArtifactRefused(
                "tampered", f"{PAYLOAD_DIR}{sorted(listed - present)[0]} is listed in the manifest but missing"
            )
        for entry in manifest.files:
            member = self.members[PAYLOAD_DIR + entry.path]
            if member.size != entry.size:
                raise ArtifactRefused(
                    "tampered", f"{PAYLOAD_DIR}{entry.path} is {member.size} bytes; the manifest says {entry.size}"
                )
            stream = self._tar.extractfile(member)
            assert stream is not None
            out = sink(entry) if sink is not None else None
            digest = hashlib.sha256()
            try:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
            except tarfile.ReadError:
                raise ArtifactRefused("truncated", f"{PAYLOAD_DIR}{entry.path} is cut short") from None
            if digest.hexdigest() != entry.sha256:
                raise ArtifactRefused(
                    "tampered", f"{PAYLOAD_DIR}{entry.path}: sha256 {digest.hexdigest()[:16]}… differs from "
                                f"the manifest's {entry.sha256[:16]}…"
                )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "_Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _manifest_of(archive: _Archive) -> tuple[bytes, Manifest]:
    data = archive.read(MANIFEST_NAME, MAX_MANIFEST_BYTES)
    if data is None:
        raise ArtifactRefused("malformed", f"{archive.path.name} has no {MANIFEST_NAME}")
    return data, parse_manifest(data)


def read_manifest(path: Path | str) -> Manifest:
    """The artifact's manifest, **not trusted**: no signature or payload check (for display).

    Raises `ArtifactRefused` (``malformed``/``truncated``) when the file is no artifact,
    `OSError` when it cannot be read.
    """
    with _Archive(Path(path)) as archive:
        return _manifest_of(archive)[1]


def check_signature(manifest_bytes: bytes, signature_file: bytes | None,
                    trusted_keys: Sequence[release_keys.TrustedKey]) -> str:
    """The id of the trusted key whose signature matches ``manifest_bytes``.

    Raises `ArtifactRefused`: ``unsigned`` (no signature file), ``malformed`` (an
    unreadable one), ``unknown-key`` (no signature by a trusted key), ``bad-signature``
    (a trusted key's signature that does not match: the manifest changed after signing).
    """
    if signature_file is None:
        raise ArtifactRefused("unsigned", f"no {SIGNATURE_NAME}: sign it with `rpfleet release sign`")
    try:
        entries = release_keys.decode_signatures(signature_file)
    except ValueError as exc:
        raise ArtifactRefused("malformed", str(exc)) from None
    trusted = {}
    for n, key in enumerate(trusted_keys):
        public = release_keys.public_key(key, source=f"trusted key #{n + 1}")
        trusted[release_keys.key_id(public)] = public
    if not trusted:
        raise ValueError("trusted_keys is empty: a node must hold at least one release public key")
    claimed = [entry for entry in entries if entry["key_id"] in trusted]
    if not claimed:
        raise ArtifactRefused(
            "unknown-key",
            f"signed by key(s) {', '.join(e['key_id'] for e in entries)}; trusted here: {', '.join(trusted)}",
        )
    for entry in claimed:
        if release_keys.signature_matches(trusted[entry["key_id"]], entry, manifest_bytes):
            return entry["key_id"]
    raise ArtifactRefused(
        "bad-signature",
        f"the signature by key {claimed[0]['key_id']} does not match {MANIFEST_NAME} "
        "(changed after signing, or a damaged signature)",
    )


def check_target(manifest: Manifest, *, installed_version: str | None, architecture: str | None,
                 python_tag: str | None = None, allow_downgrade: bool = False) -> None:
    """Refuse a trusted manifest that does not fit this node (see `verify_artifact`)."""
    if architecture is not None:
        wanted = normalize_architecture(architecture)
        if manifest.architecture not in ("any", wanted):
            raise ArtifactRefused(
                "wrong-architecture", f"built for {manifest.architecture}; this node is {wanted}"
            )
    if python_tag is not None and manifest.python_tag not in ("py3", python_tag):
        raise ArtifactRefused(
            "wrong-architecture", f"built for Python {manifest.python_tag}; this node runs {python_tag}"
        )
    if installed_version is None:
        return
    try:
        installed = Version(installed_version)
    except InvalidVersion:
        raise ValueError(f"installed_version: {installed_version!r} is not a PEP 440 version") from None
    offered = manifest.parsed_version
    if offered == installed:
        raise ArtifactRefused("not-newer", f"{manifest.version} is the version installed")
    if offered < installed and not allow_downgrade:
        raise ArtifactRefused(
            "downgrade", f"{manifest.version} is older than the installed {installed} "
                         "(only an explicit rollback may go back)"
        )


def verify_artifact(path: Path | str, trusted_keys: Sequence[release_keys.TrustedKey], *,
                    installed_version: str | None, architecture: str | None,
                    python_tag: str | None = None, allow_downgrade: bool = False) -> Manifest:
    """The artifact's manifest once everything in it is proven; else `ArtifactRefused`.

    Checks, in this order (the first failure is the reason): the archive's layout
    (``truncated``, ``malformed``), the signature over ``manifest.json`` by one of
    ``trusted_keys`` (`Ed25519PublicKey` objects, raw 32-byte or PEM public keys;
    ``unsigned``, ``unknown-key``, ``bad-signature``), the manifest itself
    (``malformed``), the target (``wrong-architecture`` unless the manifest's
    architecture is ``any`` or ``architecture``, or its Python tag is not ``py3`` or
    ``python_tag``), the version against ``installed_version`` (``not-newer`` when
    equal, ``downgrade`` when older unless ``allow_downgrade``, which only an explicit
    rollback from the server sets), and last every payload byte (``tampered``,
    ``truncated``).

    ``installed_version=None`` skips the version check (nothing installed, or the
    server adding a release); ``architecture=None`` and ``python_tag=None`` skip their
    checks (the server holds artifacts for every node). `ValueError` for a bad
    argument (no trusted key, an installed version that is not PEP 440); `OSError`
    when the file cannot be read.
    """
    return verify_signed(path, trusted_keys, installed_version=installed_version, architecture=architecture,
                         python_tag=python_tag, allow_downgrade=allow_downgrade)[0]


def verify_signed(path: Path | str, trusted_keys: Sequence[release_keys.TrustedKey], *,
                  installed_version: str | None, architecture: str | None,
                  python_tag: str | None = None, allow_downgrade: bool = False) -> tuple[Manifest, str]:
    """`verify_artifact`, also returning the id of the trusted key whose signature matched."""
    with _Archive(Path(path)) as archive:
        manifest_bytes = archive.read(MANIFEST_NAME, MAX_MANIFEST_BYTES)
        if manifest_bytes is None:
            raise ArtifactRefused("malformed", f"{archive.path.name} has no {MANIFEST_NAME}")
        signer = check_signature(manifest_bytes, archive.read(SIGNATURE_NAME, MAX_MANIFEST_BYTES), trusted_keys)
        manifest = parse_manifest(manifest_bytes)
        check_target(manifest, installed_version=installed_version, architecture=architecture,
                     python_tag=python_tag, allow_downgrade=allow_downgrade)
        archive.check_payload(manifest)
        return manifest, signer


def extract_payload(path: Path | str, dest_dir: Path | str, *, expected: Manifest | None = None) -> Manifest:
    """Write the payload's files into ``dest_dir`` (created; must be empty), checking
    each file's size and sha256 as it is written; returns the artifact's manifest.

    This does **not** check the signature: call `verify_artifact` first and pass its
    manifest as ``expected``, so that a file replaced in between is refused
    (``tampered``). Names are plain file names (no traversal; links and devices are
    refused on open). Each file is written under a ``.part`` name, fsynced and renamed;
    on a refusal everything written is removed and `ArtifactRefused` raised.
    `FileExistsError` when ``dest_dir`` is not empty.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise FileExistsError(f"{dest}: not empty; extract into a new directory")
    written: list[Path] = []
    with _Archive(Path(path)) as archive:
        manifest = _manifest_of(archive)[1]
        if expected is not None and manifest != expected:
            raise ArtifactRefused("tampered", f"{archive.path.name} changed since it was verified")
        current: list[IO[bytes]] = []

        def sink(entry: PayloadFile) -> IO[bytes]:
            _publish(current, written)
            part = dest / f"{entry.path}.part"
            written.append(part)
            current.append(open(part, "xb"))
            return current[-1]

        try:
            archive.check_payload(manifest, sink)
            _publish(current, written)
        except BaseException:
            for handle in current:
                handle.close()
            for file in written:
                file.unlink(missing_ok=True)
            raise
    _fsync_dir(dest)
    return manifest


def _publish(current: list[IO[bytes]], written: list[Path]) -> None:
    """Close the file being written (its hash was checked) under its real name."""
    if not current:
        return
    handle = current.pop()
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    part = written.pop()
    final = part.with_name(part.name.removesuffix(".part"))
    os.replace(part, final)
    written.append(final)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_artifact(out: Path, manifest_bytes: bytes, signature_file: bytes | None,
                   payload: Sequence[tuple[str, Path | Callable[[], IO[bytes]], int]],
                   mtime: datetime) -> None:
    """Write an artifact atomically (``<out>.part`` then rename): the manifest, the
    signature file when given, then ``payload`` as ``(name, source, size)`` where the
    source is a path or an opener of a stream of exactly ``size`` bytes."""
    out = Path(out)
    part = out.with_name(out.name + ".part")
    stamp = int(mtime.timestamp())

    def info(name: str, size: int) -> tarfile.TarInfo:
        entry = tarfile.TarInfo(name)
        entry.size, entry.mtime, entry.mode = size, stamp, 0o644
        return entry

    try:
        with open(part, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(info(MANIFEST_NAME, len(manifest_bytes)), io.BytesIO(manifest_bytes))
                if signature_file is not None:
                    tar.addfile(info(SIGNATURE_NAME, len(signature_file)), io.BytesIO(signature_file))
                for name, source, size in payload:
                    stream = open(source, "rb") if isinstance(source, Path) else source()
                    with stream:
                        tar.addfile(info(PAYLOAD_DIR + name, size), stream)
            raw.flush()  # after the tar's end blocks
            os.fsync(raw.fileno())
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
