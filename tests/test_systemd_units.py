"""The systemd units in systemd/: systemd's own checker on the real files, and
the agent speaking sd_notify and living under the unit's sandbox for real."""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rpfleet import process
from tests.conftest import agent_toml, eventually
from tests.system.helpers import stored_events

UNITS = Path(__file__).resolve().parents[1] / "systemd"
UNIT_FILES = sorted(UNITS.glob("*.service"))

# The host's unit directories, copied under the verify root so that what our
# units name (sysinit.target through the default dependencies,
# network-online.target, modprobe@.service) resolves as it would on a node.
HOST_UNIT_DIRS = ("usr/lib/systemd/system", "lib/systemd/system", "etc/systemd/system")


def service_section(unit: Path) -> dict[str, list[str]]:
    """The [Service] keys of a unit file, each with its values in order."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def executable(unit: Path) -> str:
    """The program ExecStart= runs, without systemd's prefixes (-, @, :, +, !)."""
    [command] = service_section(unit)["ExecStart"]
    return command.split()[0].lstrip("-@:+!")


def verify(unit_text: str, name: str, root: Path) -> tuple[int, str, list[str]]:
    """`systemd-analyze verify --root` on ``unit_text``, installed as ``name`` under ``root``.

    Returns the exit code, the whole output, and the output lines about this unit.

    verify refuses a unit whose ExecStart= program does not exist. Instead of
    rewriting any line of the unit, the program is created at the exact path
    ExecStart= names, as a stub, inside a throwaway root directory; with
    --root, verify looks for it there. So every line of the real file, the
    ExecStart= path included, is checked as written.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    copied: set[Path] = set()
    for relative in HOST_UNIT_DIRS:
        host = Path("/") / relative
        if host.is_dir() and host.resolve() not in copied:  # /lib is /usr/lib on merged-/usr hosts
            shutil.copytree(host, root / relative, symlinks=True, dirs_exist_ok=True)
            copied.add(host.resolve())
    if Path("/lib").is_symlink() and not (root / "lib").exists():
        (root / "lib").symlink_to(os.readlink("/lib"))  # a merged-/usr host stays merged
    installed = root / "etc/systemd/system" / name
    installed.parent.mkdir(parents=True, exist_ok=True)
    installed.write_text(unit_text, encoding="utf-8")
    stub = root / executable(installed).lstrip("/")
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", str(installed)],
        capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    # Lines about other units (the host's own, copied in) are not ours to judge;
    # every complaint about this unit names it, by file path or by unit name.
    ours = [line for line in output.splitlines() if name in line]
    return result.returncode, output, ours


@pytest.mark.parametrize("unit", UNIT_FILES, ids=[u.name for u in UNIT_FILES])
def test_systemd_analyze_verify_finds_nothing_to_say(unit, tmp_path):
    code, output, ours = verify(unit.read_text(encoding="utf-8"), unit.name, tmp_path / "root")
    assert ours == [], output
    assert code == 0, output


def test_verify_would_report_a_bad_line(tmp_path):
    """The check above is not vacuous: a bad line in a unit is reported as this unit's."""
    unit = UNITS / "rpfleet-agent.service"
    broken = unit.read_text(encoding="utf-8").replace(
        "DeviceAllow=char-input rw", "DeviceAllow=char-input rwz\nWatchdogSecs=30s"
    )
    _, output, ours = verify(broken, unit.name, tmp_path / "root")
    assert any("Invalid device rights 'rwz'" in line for line in ours), output
    assert any("Unknown key 'WatchdogSecs'" in line for line in ours), output


def test_the_agent_unit_waits_for_ready_and_watches_the_agent():
    service = service_section(UNITS / "rpfleet-agent.service")
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30s"]
    assert service["Restart"] == ["always"]
    # ProtectClock=yes would make the agent's read-only adjtimex() fail (EPERM),
    # and every tap would be reported with clock_synced unknown.
    assert "ProtectClock" not in service
    assert executable(UNITS / "rpfleet-agent.service") == "/opt/rpfleet/current/bin/rpfleet"


# The real agent process --------------------------------------------------------


def write_config(tmp_path: Path, broker, node: str, press_every_s: float | None = None) -> Path:
    config = tmp_path / f"{node}.toml"
    config.write_text(agent_toml(broker, node, tmp_path / node, press_every_s=press_every_s),
                      encoding="utf-8")
    return config


def agent_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "rpfleet", "agent", "run", "--config", str(config)]


class NotifySocket:
    """What systemd listens on for a Type=notify service: a unix datagram socket
    that also learns each sender's pid (SCM_CREDENTIALS), as NotifyAccess=main needs."""

    def __init__(self) -> None:
        # A short directory: a socket path must fit in 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="sd-notify-"))
        self.path = self.dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(str(self.path))
        self.received: list[tuple[float, int | None, list[str]]] = []
        """(monotonic time, sender pid, lines) of every datagram, in order."""

    def next(self, timeout: float) -> tuple[float, int | None, list[str]]:
        self.sock.settimeout(timeout)
        data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        message = (time.monotonic(), pid, data.decode().split("\n"))
        self.received.append(message)
        return message

    def until(self, line: str, timeout: float) -> tuple[float, int | None, list[str]]:
        """The first message from now on that has ``line``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line} within {timeout}s; received {self.received}")
            try:
                message = self.next(left)
            except TimeoutError:
                continue
            if line in message[2]:
                return message

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_the_agent_says_ready_feeds_the_watchdog_and_says_stopping(broker, new_node, tmp_path):
    node = new_node()
    config = write_config(tmp_path, broker, node)
    notify = NotifySocket()
    ours = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env |= {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}  # WATCHDOG_PID unset
    agent = process.spawn(agent_command(config), env=env, stdout=subprocess.DEVNULL,
                          stderr=open(tmp_path / "agent.log", "ab"))
    try:
        _, pid, ready = notify.until("READY=1", timeout=60)
        assert pid == agent.pid  # NotifyAccess=main accepts only the main process
        assert "STATUS=serving 1 peripheral(s)" in ready

        pings = [notify.until("WATCHDOG=1", timeout=10) for _ in range(4)]
        assert {pid for _, pid, _ in pings} == {agent.pid}
        gaps = [later[0] - earlier[0] for earlier, later in zip(pings, pings[1:])]
        # The contract with systemd, not a benchmark: a ping well within WATCHDOG_USEC.
        assert max(gaps) < 2.0, gaps

        agent.send_signal(signal.SIGTERM)
        notify.until("STOPPING=1", timeout=10)
        assert agent.wait(20) == 0  # within the unit's TimeoutStopSec=20s
    finally:
        process.stop(agent)
        notify.close()


# MemoryDenyWriteExecute=yes, reproduced ---------------------------------------------
#
# systemd 252 implements MemoryDenyWriteExecute=yes as a seccomp filter that
# refuses mmap() with PROT_WRITE|PROT_EXEC, mprotect() and pkey_mprotect() with
# PROT_EXEC, and shmat() with SHM_EXEC (systemd.exec(5)). The same filter,
# installed between fork and exec, shows whether the agent can live with it.

_X86_64_NR = {"mmap": 9, "mprotect": 10, "pkey_mprotect": 329, "shmat": 30}


def _seccomp_deny_write_execute() -> bytes:
    def op(code: int, jt: int, jf: int, k: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    ld, jeq, and_, ret, jset = 0x20, 0x15, 0x54, 0x06, 0x45
    allow, eperm = 0x7FFF0000, 0x00050000 | 1
    prot = 16 + 2 * 8  # struct seccomp_data: nr, arch, ip, then args[6]; args[2], low word
    return b"".join([
        # Other ABIs pass: SystemCallArchitectures=native kills their calls anyway.
        op(ld, 0, 0, 4), op(jeq, 0, 13, 0xC000003E),
        op(ld, 0, 0, 0),
        op(jeq, 4, 0, _X86_64_NR["mmap"]), op(jeq, 6, 0, _X86_64_NR["mprotect"]),
        op(jeq, 5, 0, _X86_64_NR["pkey_mprotect"]), op(jeq, 6, 0, _X86_64_NR["shmat"]),
        op(ret, 0, 0, allow),
        op(ld, 0, 0, prot), op(and_, 0, 0, 0x6), op(jeq, 5, 4, 0x6),  # mmap: W and X together
        op(ld, 0, 0, prot), op(jset, 3, 2, 0x4),                    # mprotect: X
        op(ld, 0, 0, prot), op(jset, 1, 0, 0o100000),               # shmat: SHM_EXEC
        op(ret, 0, 0, allow),
        op(ret, 0, 0, eperm),
    ])


def _deny_write_execute_then_exec() -> None:
    # Runs in the child between fork and exec, like rpfleet.process._die_with_parent.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    program = _seccomp_deny_write_execute()
    buffer = ctypes.create_string_buffer(program)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, as NoNewPrivileges=yes
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the filter here is written for x86_64")
def test_the_agent_delivers_taps_under_memory_deny_write_execute(
    server, broker, new_node, tmp_path
):
    probe = subprocess.run(
        [sys.executable, "-c",
         "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)"],
        preexec_fn=_deny_write_execute_then_exec, capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode != 0 and "Operation not permitted" in probe.stderr, probe.stderr

    node = new_node()
    config = write_config(tmp_path, broker, node, press_every_s=0.2)
    log = tmp_path / "agent.log"
    agent = subprocess.Popen(
        agent_command(config), preexec_fn=_deny_write_execute_then_exec, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
    )
    try:
        eventually(lambda: len(stored_events(server, node)) >= 5, timeout=60)
    finally:
        code = process.stop(agent)
    assert code == 0, log.read_text()
    assert "MemoryError" not in log.read_text()
