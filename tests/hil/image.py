"""The emulated node's boot image: Debian's kernel and an uncompressed cpio initramfs
holding a minimal bookworm root with the agent installed in a venv.

``python -m tests.hil.image`` (or ``make hil-image``) builds it; `ensure_image` is
what the test suite calls. Two layers, cached separately under
``${RPFLEET_HIL_CACHE:-~/.cache/rpfleet-hil}``:

- ``base-<hash>/``: debootstrap's root (minbase plus `PACKAGES`), trimmed, with
  only the kernel modules in `MODULES` (and what they need), packed once as
  ``base.cpio``; the hash covers `BASE_RECIPE` only, so it survives agent changes.
- ``<hash>/``: ``vmlinux`` (the kernel, uncompressed) and ``initrd.cpio``, which is
  ``base.cpio`` followed by a layer cpio (the kernel unpacks concatenated
  archives in turn) holding ``/init``, the guest control program, the MQTT mux
  and ``/opt/rpfleet/venv`` with the agent from a wheel of the working tree. The
  hash covers the base recipe, this file, the guest scripts and every source
  file that goes into the wheel, so an unchanged tree reuses the image and a
  changed agent only repacks the layer (seconds).
- ``wheels-<hash>/``: the ``[agent]`` dependencies as wheels, by requirement list.

The three newest images are kept; other bases, wheel sets and half-built
directories are removed.

Building needs root (debootstrap, chroot, an overlay mount) and Debian's
``debootstrap``, ``cpio`` and ``apt-get`` (``scripts/bootstrap`` installs them).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zlib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HIL = Path(__file__).resolve().parent
GUEST_FILES = {  # path in the guest -> file in the tree
    "init": HIL / "guest" / "init",
    "opt/hil/control.py": HIL / "guest" / "control.py",
    "opt/hil/mux.py": HIL / "mux.py",
}
# The node's side of the project: what `rpfleet agent` imports. The server and
# provisioning packages stay out, so that a server change does not rebuild the guest.
WHEEL_PACKAGES = ("rpfleet", "agent", "devices")
WHEEL_DATA = (".py", ".toml", ".md", ".json", ".csv")  # pyproject's package-data, plus code

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "python3", "python3-venv", "udev", "kmod", "alsa-utils", "libasound2", "libportaudio2",
    "libudev1",  # pyudev loads it with ctypes
)
KERNEL_PACKAGE = "linux-image-amd64"  # Debian's metapackage; resolved to the current ABI
# Loaded by name, with whatever modules.dep says they need.
MODULES = (
    # USB host controllers (qemu-xhci, and the older ones a machine type may bring)
    "xhci_pci", "xhci_hcd", "ehci_pci", "ohci_pci", "uhci_hcd",
    # keypads and wedge scanners
    "usbhid", "hid_generic", "evdev",
    # USB serial pads and readers
    "usbserial", "ftdi_sio", "cp210x", "pl2303", "ch341", "cdc_acm",
    # sound: intel-hda + hda-output, and usb-audio
    "snd_hda_intel", "snd_hda_codec_generic", "snd_usb_audio",
    # the control and MQTT channels
    "virtio_pci", "virtio_console",
)
# Nothing here is read on a node: gone, the initramfs is smaller and boots faster.
TRIM = (
    "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
    "usr/share/bash-completion", "var/cache/apt", "var/lib/apt/lists", "var/cache/debconf",
    "usr/lib/python3.11/ensurepip", "usr/lib/python3.11/idlelib", "usr/lib/python3.11/lib2to3",
    "usr/lib/python3.11/pydoc_data", "usr/lib/python3.11/turtledemo",
    "usr/lib/udev/hwdb.d",  # compiled into hwdb.bin, which stays
    "usr/lib/x86_64-linux-gnu/gconv", "usr/share/zoneinfo/right", "usr/share/sounds",
)
# Needed to build the agent's venv in a chroot of the root, never in the guest.
BUILD_ONLY = (
    "usr/share/python-wheels", "var/lib/dpkg", "usr/bin/perl", "usr/bin/perl5.36.0",
    "usr/lib/x86_64-linux-gnu/perl-base", "usr/share/perl5",
)
BASE_RECIPE = {
    "suite": SUITE, "mirror": MIRROR, "variant": "minbase", "packages": PACKAGES,
    "kernel": KERNEL_PACKAGE, "modules": MODULES, "trim": TRIM, "build_only": BUILD_ONLY,
    "format": 2,  # bump when the base's build steps change
}
# Kept out of the layer: pip's leftovers and what the chroot touched.
LAYER_JUNK = ("tmp", "root", "var", "run", "dev", "proc", "sys", "etc/ld.so.cache")


@dataclass(frozen=True)
class Image:
    """A built image: boot ``kernel`` (an ELF vmlinux, PVH entry) with ``initrd``."""

    dir: Path
    kernel: Path
    initrd: Path
    kernel_version: str


def cache_root() -> Path:
    return Path(os.environ.get("RPFLEET_HIL_CACHE") or Path.home() / ".cache" / "rpfleet-hil")


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def base_hash() -> str:
    return _digest(json.dumps(BASE_RECIPE, sort_keys=True).encode())


def wheel_sources() -> list[Path]:
    """The files of the tree that go into the guest's wheel (relative to the repo)."""
    found = [Path("pyproject.toml"), Path("README.md")]
    for package in WHEEL_PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and path.suffix in WHEEL_DATA and "__pycache__" not in path.parts:
                found.append(path.relative_to(REPO))
    return found


def image_hash() -> str:
    parts = [base_hash().encode(), Path(__file__).read_bytes()]
    for name, path in sorted(GUEST_FILES.items()):
        parts += [name.encode(), path.read_bytes()]
    for path in wheel_sources():
        parts += [str(path).encode(), (REPO / path).read_bytes()]
    return _digest(*parts)


def ensure_image(log=print) -> Image:
    """The image for the current tree: from the cache, else built (about a minute cold,
    seconds when only the agent changed). Waits while another process builds."""
    missing = [str(p) for p in GUEST_FILES.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"guest files missing: {', '.join(missing)}")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        key = image_hash()
        done = root / key / "manifest.json"
        if done.exists():
            os.utime(root / key)  # recently used: the last to be pruned
            manifest = json.loads(done.read_text())
            return Image(root / key, root / key / "vmlinux", root / key / "initrd.cpio",
                         manifest["kernel_version"])
        started = time.monotonic()
        _need_tools()
        work = Path(tempfile.mkdtemp(prefix="image-", dir=root))
        try:
            # The wheels (and the kernel, in _ensure_base) come while debootstrap runs.
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                wheels = pool.submit(_wheels, root, work / "wheels", log)
                base = _ensure_base(root, log, pool)
                wheels.result()
            image = _build_image(root, key, base, work, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"hil-image: {image.dir} ready in {time.monotonic() - started:.1f}s")
        _prune(root, keep=(key, base.name, _wheels_dir(root).name, _build_env_dir(root).name))
        return image


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# chroot, debootstrap and depmod live in sbin, which a PATH may lack.
_SBIN_PATH = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", {**os.environ, "PATH": _SBIN_PATH})
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def _need_tools() -> None:
    if os.geteuid() != 0:
        raise PermissionError("building the HIL image needs root (debootstrap, chroot, mount)")
    for tool in ("debootstrap", "cpio", "dpkg-deb", "apt-get", "chroot"):
        if shutil.which(tool, path=_SBIN_PATH) is None:
            raise FileNotFoundError(f"{tool} is not installed: run scripts/bootstrap")


# --- base layer ------------------------------------------------------------------------


def _ensure_base(root: Path, log, pool: concurrent.futures.Executor) -> Path:
    base = root / f"base-{base_hash()}"
    if (base / "base.cpio").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    # Built in memory where there is a tmpfs: dpkg's fsyncs cost nothing there.
    shm = Path("/dev/shm")
    staging = shm if shm.is_dir() and os.access(shm, os.W_OK) else root
    for stale in staging.glob("rpfleet-hil-base-*"):  # a build killed half way (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="rpfleet-hil-base-", dir=staging))
    try:
        started = time.monotonic()
        kernel = pool.submit(_fetch_kernel, work, log)
        tree = work / "root"
        log(f"hil-image: debootstrap {SUITE} ({len(PACKAGES)} packages) ...")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
              SUITE, str(tree), MIRROR])
        log(f"hil-image: debootstrap done in {time.monotonic() - started:.1f}s")
        version = _install_modules(tree, *kernel.result())
        _settle_root(tree)
        _pack(tree, work / "base.cpio", exclude=BUILD_ONLY)
        (work / "kernel-version").write_text(version)
        incoming = Path(tempfile.mkdtemp(prefix="base-", dir=root))
        # cp, not shutil: the root holds device nodes (/dev/console).
        _run(["cp", "-a", f"{work}/.", str(incoming)])
        incoming.rename(base)
        log(f"hil-image: base ready in {time.monotonic() - started:.1f}s")
        return base
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fetch_kernel(work: Path, log) -> tuple[Path, str]:
    """Debian's kernel package unpacked under ``work``, and ``work/vmlinux``;
    returns the unpacked tree and the kernel's version."""
    depends = _run(["apt-cache", "depends", KERNEL_PACKAGE]).stdout
    match = re.search(r"Depends: (linux-image-\S+)", depends)
    if not match:
        raise RuntimeError(f"cannot resolve {KERNEL_PACKAGE} (apt-get update?):\n{depends}")
    package = match.group(1)
    debs = work / "debs"
    debs.mkdir()
    os.chmod(debs, 0o777)  # apt-get download drops to the _apt user
    log(f"hil-image: apt-get download {package}")
    _run(["apt-get", "download", "-q", package], cwd=debs)
    (deb,) = debs.glob("*.deb")
    unpacked = work / "kernel"
    _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    shutil.rmtree(debs)
    (vmlinuz,) = (unpacked / "boot").glob("vmlinuz-*")
    version = vmlinuz.name.removeprefix("vmlinuz-")
    (work / "vmlinux").write_bytes(_uncompressed_kernel(vmlinuz.read_bytes()))
    return unpacked, version


def _install_modules(tree: Path, unpacked: Path, version: str) -> str:
    """The modules of `MODULES` (and what they need) from the unpacked kernel package
    into ``tree``, indexed by depmod; returns the kernel version."""
    # Moved inside the root, so that the guest's own depmod can write the
    # modules.dep that the package leaves to its postinst.
    inside = tree / "tmp" / "kernel"
    unpacked.rename(inside)
    source = _modules_dir(inside, version)
    _run(["chroot", str(tree), "/sbin/depmod", "-b", "/tmp/kernel", version])
    target = tree / "usr" / "lib" / "modules" / version
    target.mkdir(parents=True)
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    for module in _with_dependencies(source, MODULES):
        (target / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / module, target / module)
    _run(["chroot", str(tree), "/sbin/depmod", "-a", version])
    shutil.rmtree(inside)
    return version


def _uncompressed_kernel(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage. QEMU boots it straight at its PVH entry,
    which saves the 3 s that decompressing it takes under TCG."""
    for magic, decompressor in ((b"\xfd7zXZ\x00", lzma.LZMADecompressor),
                                (b"\x1f\x8b\x08", lambda: zlib.decompressobj(31))):
        start = bzimage.find(magic)
        while start != -1:
            try:
                elf = decompressor().decompress(bzimage[start:])
            except (lzma.LZMAError, zlib.error):
                elf = b""
            if elf.startswith(b"\x7fELF"):
                return elf
            start = bzimage.find(magic, start + 1)
    raise ValueError("no xz or gzip ELF kernel found in the bzImage")


def _modules_dir(unpacked: Path, version: str) -> Path:
    for candidate in (unpacked / "lib" / "modules" / version, unpacked / "usr" / "lib" / "modules" / version):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no modules for {version} in the kernel package")


def _with_dependencies(modules_dir: Path, wanted: tuple[str, ...]) -> list[str]:
    """Relative paths of the module files for ``wanted`` and everything they depend on;
    modules built into the kernel need no file."""
    deps: dict[str, list[str]] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, needs = line.partition(":")
        deps[path] = needs.split()
    by_name = {_module_name(path): path for path in deps}
    builtin = {_module_name(line) for line in (modules_dir / "modules.builtin").read_text().split()}
    chosen: set[str] = set()
    for name in wanted:
        name = name.replace("-", "_")
        if name in builtin:
            continue
        if name not in by_name:
            raise LookupError(f"kernel module {name} is neither a module nor built in")
        todo = [by_name[name]]
        while todo:
            path = todo.pop()
            if path not in chosen:
                chosen.add(path)
                todo.extend(deps[path])
    return sorted(chosen)


def _module_name(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return re.sub(r"\.ko(\.(xz|zst|gz))?$", "", name).replace("-", "_")


def _settle_root(tree: Path) -> None:
    for junk in TRIM:
        path = tree / junk
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
    for cache in ("var/cache/apt", "var/lib/apt/lists"):
        (tree / cache).mkdir(parents=True, exist_ok=True)
    # The kernel opens /dev/console for /init before anything is mounted.
    dev = tree / "dev"
    dev.mkdir(exist_ok=True)
    if not (dev / "console").exists():
        os.mknod(dev / "console", 0o600 | 0o020000, os.makedev(5, 1))
    (tree / "etc" / "hostname").write_text("rpfleet-hil\n")


def _pack(tree: Path, archive: Path, *, skip_root: bool = False, exclude: tuple[str, ...] = ()) -> None:
    """An uncompressed newc cpio of ``tree`` without ``exclude`` (paths relative to it).

    Uncompressed: the kernel unpacks it faster than it would inflate it under TCG.
    """
    prune = "".join(f"-path ./{path} -prune -o " for path in exclude)
    find = f"find . {'-mindepth 1 ' if skip_root else ''}{prune}-print0"
    with open(archive, "wb") as out:
        subprocess.run(
            f"{find} | LC_ALL=C sort -z | cpio --null --create --format=newc --quiet --reproducible",
            shell=True, cwd=tree, stdout=out, check=True,
        )


# --- agent layer -----------------------------------------------------------------------


def _build_image(root: Path, key: str, base: Path, work: Path, log) -> Image:
    """The image from ``base`` and the wheels in ``work/wheels``."""
    started = time.monotonic()
    wheels = work / "wheels"
    layer = work / "layer"
    _install_agent(base / "root", wheels, layer, work)
    for name, source in GUEST_FILES.items():
        target = layer / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o755 if name == "init" else 0o644)
    _pack(layer, work / "layer.cpio", skip_root=True)
    with open(work / "initrd.cpio", "wb") as out:
        for part in (base / "base.cpio", work / "layer.cpio"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    version = (base / "kernel-version").read_text()
    out = work / "out"
    out.mkdir()
    os.replace(work / "initrd.cpio", out / "initrd.cpio")
    os.link(base / "vmlinux", out / "vmlinux")
    manifest = {
        "hash": key, "base": base.name, "kernel_version": version,
        "initrd_bytes": (out / "initrd.cpio").stat().st_size,
        "layer_seconds": round(time.monotonic() - started, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    final = root / key
    shutil.rmtree(final, ignore_errors=True)  # a build that died half way
    out.rename(final)
    log(f"hil-image: agent layer in {manifest['layer_seconds']}s, "
        f"initrd {manifest['initrd_bytes'] / 2**20:.0f} MiB")
    return Image(final, final / "vmlinux", final / "initrd.cpio", version)


def _requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"] + project["optional-dependencies"]["agent"])


def _wheels_dir(root: Path) -> Path:
    return root / f"wheels-{_digest(json.dumps(_requirements()).encode(), sys.version.encode())}"


def _build_env_dir(root: Path) -> Path:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    return root / f"buildenv-{_digest(json.dumps(sorted(requires)).encode(), sys.version.encode())}"


def _build_env(root: Path, log) -> Path:
    """A venv with the project's build requirements (pyproject's build-system)."""
    env = _build_env_dir(root)
    if not (env / "ready").exists():
        log("hil-image: a build venv for the project's wheel")
        shutil.rmtree(env, ignore_errors=True)
        requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
        _run([sys.executable, "-m", "venv", str(env)])
        _run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", *requires])
        (env / "ready").touch()
    return env


def _wheels(root: Path, out: Path, log) -> None:
    """The project's wheel (from a copy of the node's packages) and its ``[agent]``
    dependencies; those are cached by their requirement list."""
    requirements = _requirements()
    deps = _wheels_dir(root)
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
    if not deps.exists():
        log(f"hil-image: pip wheel {len(requirements)} requirements")
        tmp = Path(tempfile.mkdtemp(prefix="wheels-", dir=root))
        _run([*pip, "--wheel-dir", str(tmp), *requirements])
        tmp.rename(deps)
    source = out.parent / "source"
    for path in wheel_sources():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, source / path)
    # In a build venv of our own, kept: an isolated build would set one up every time.
    builder = _build_env(root, log)
    _run([str(builder / "bin" / "python"), *pip[1:], "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(out), str(source)])
    for wheel in deps.glob("*.whl"):
        shutil.copy2(wheel, out / wheel.name)


def _install_agent(lower: Path, wheels: Path, layer: Path, work: Path) -> None:
    """``/opt/rpfleet/venv`` with the agent, made in a chroot of the base root through an
    overlay: what the chroot writes lands in ``layer``, the cached base stays as it is."""
    upper, scratch, merged = layer, work / "ovl-work", work / "merged"
    for path in (upper, scratch, merged):
        path.mkdir()
    _run(["mount", "-t", "overlay", "overlay", "-o",
          f"lowerdir={lower},upperdir={upper},workdir={scratch}", str(merged)])
    try:
        shutil.copytree(wheels, merged / "tmp" / "wheels")
        pip_whl = sorted((merged / "usr" / "share" / "python-wheels").glob("pip-*.whl"))[-1]
        venv = "/opt/rpfleet/venv"
        chroot = ["chroot", str(merged)]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8"}
        _run([*chroot, "python3", "-m", "venv", "--without-pip", venv], env=env)
        _run([*chroot, f"{venv}/bin/python", f"/usr/share/python-wheels/{pip_whl.name}/pip",
              "install", "--quiet", "--no-index", "--no-cache-dir", "--disable-pip-version-check",
              "--find-links", "/tmp/wheels", "rpfleet[agent]"], env=env)
    finally:
        _run(["umount", str(merged)])
    for junk in LAYER_JUNK:
        path = upper / junk
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _prune(root: Path, keep: tuple[str, ...], images: int = 3) -> None:
    """All but the newest ``images`` images go (each is about 150 MiB), and so do
    bases and wheel sets of other recipes and what a killed build left behind.
    Runs under the cache lock: nothing else is building."""
    built = sorted(
        (p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"[0-9a-f]{16}", p.name)),
        key=lambda p: p.stat().st_mtime, reverse=True,
    )
    stale = [p for p in built if p.name not in keep][images - 1:]
    stale += [p for p in root.iterdir()
              if p.is_dir() and p.name not in keep and not re.fullmatch(r"[0-9a-f]{16}", p.name)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    started = time.monotonic()
    image = ensure_image()
    print(f"{image.dir} (kernel {image.kernel_version}) in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
