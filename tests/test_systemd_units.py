"""The systemd units in systemd/: systemd's own checker on the real files, and
the agent speaking sd_notify and living under the unit's sandbox for real."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devices.kiosk_browser.cdp import CdpConnection
from devices.kiosk_browser.chromium_adapter import (
    BROWSER_UNIT_ENV,
    KIOSK_SWITCHES,
    BrowserStartFailed,
    ChromiumProcess,
    instance_name,
)
from rpfleet import process
from tests.conftest import agent_toml, eventually
from tests.system.helpers import stored_events

UNITS = Path(__file__).resolve().parents[1] / "systemd"
UNIT_FILES = sorted(UNITS.glob("*.service"))
DROP_INS = sorted(UNITS.glob("*.service.d/*.conf"))
BROWSER_UNIT = UNITS / "rpfleet-kiosk-browser@.service"
POLKIT_RULES = sorted((UNITS / "polkit").glob("*.rules"))
# A template is verified as an instance: a screen id that needs escaping.
SAMPLE_INSTANCE = "kiosk-sanh"

# The host's unit directories, copied under the verify root so that what our
# units name (sysinit.target through the default dependencies,
# network-online.target, modprobe@.service) resolves as it would on a node.
HOST_UNIT_DIRS = ("usr/lib/systemd/system", "lib/systemd/system", "etc/systemd/system")


def service_section(unit: Path, section_name: str = "[Service]") -> dict[str, list[str]]:
    """The [Service] keys of a unit file (or drop-in), each with its values in order."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == section_name:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def exec_programs(unit_text: str) -> set[str]:
    """Every program the Exec*= lines of a unit (or drop-in) text run, without prefixes."""
    programs = set()
    for raw in unit_text.splitlines():
        key, _, value = raw.strip().partition("=")
        if key.startswith("Exec") and value.strip():
            programs.add(value.split()[0].lstrip("-@:+!"))
    return programs


def executable(unit: Path) -> str:
    """The program ExecStart= runs, without systemd's prefixes (-, @, :, +, !)."""
    [command] = service_section(unit)["ExecStart"]
    return command.split()[0].lstrip("-@:+!")


def verify(unit_text: str, name: str, root: Path, *, drop_ins: dict[str, str] | None = None,
           instance: str | None = None) -> tuple[int, str, list[str]]:
    """`systemd-analyze verify --root` on ``unit_text``, installed as ``name`` under ``root``
    with ``drop_ins`` (file name: text) in ``name``.d/; a template as its ``instance``.

    Returns the exit code, the whole output, and the output lines about this unit.

    verify refuses a unit whose Exec*= programs do not exist. Instead of
    rewriting any line of the unit, each program is created at the exact path
    its line names, as a stub, inside a throwaway root directory; with
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
    texts = [unit_text]
    for file_name, text in (drop_ins or {}).items():
        drop_in = installed.parent / f"{name}.d" / file_name
        drop_in.parent.mkdir(parents=True, exist_ok=True)
        drop_in.write_text(text, encoding="utf-8")
        texts.append(text)
    for program in set().union(*map(exec_programs, texts)):
        stub = root / program.lstrip("/")
        if not stub.exists():
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
            stub.chmod(0o755)
    target = str(installed)
    if instance is not None:
        target = subprocess.run(
            ["systemd-escape", f"--template={name}", instance],
            capture_output=True, text=True, check=True).stdout.strip()
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", target],
        capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    # Lines about other units (the host's own, copied in) are not ours to judge;
    # every complaint about this unit names it, by file path (drop-ins' too:
    # NAME.d/FILE) or by unit name.
    ours = [line for line in output.splitlines() if name in line or target in line]
    return result.returncode, output, ours


@pytest.mark.parametrize("unit", UNIT_FILES, ids=[u.name for u in UNIT_FILES])
def test_systemd_analyze_verify_finds_nothing_to_say(unit, tmp_path):
    instance = SAMPLE_INSTANCE if "@." in unit.name else None
    code, output, ours = verify(unit.read_text(encoding="utf-8"), unit.name, tmp_path / "root",
                                instance=instance)
    assert ours == [], output
    assert code == 0, output


@pytest.mark.parametrize("drop_in", DROP_INS, ids=[f"{d.parent.name}/{d.name}" for d in DROP_INS])
def test_systemd_analyze_verify_finds_nothing_to_say_with_each_drop_in(drop_in, tmp_path):
    unit = UNITS / drop_in.parent.name.removesuffix(".d")
    code, output, ours = verify(unit.read_text(encoding="utf-8"), unit.name, tmp_path / "root",
                                drop_ins={drop_in.name: drop_in.read_text(encoding="utf-8")})
    assert ours == [], output
    assert code == 0, output


def test_verify_reads_the_drop_in_and_the_template_instance(tmp_path):
    """Not vacuous either: a bad line in a drop-in or in a template is reported."""
    unit = UNITS / "rpfleet-agent.service"
    drop_in = UNITS / "rpfleet-agent.service.d/kiosk.conf"
    broken = drop_in.read_text(encoding="utf-8").replace("char-cec rw", "char-cec rwz")
    _, output, ours = verify(unit.read_text(encoding="utf-8"), unit.name, tmp_path / "agent",
                             drop_ins={"kiosk.conf": broken})
    assert any("kiosk.conf" in line and "Invalid device rights 'rwz'" in line
               for line in ours), output

    broken = BROWSER_UNIT.read_text(encoding="utf-8").replace("Restart=no", "Restart=sometimes")
    _, output, ours = verify(broken, BROWSER_UNIT.name, tmp_path / "browser",
                             instance=SAMPLE_INSTANCE)
    assert any("sometimes" in line for line in ours), output


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


def test_the_agent_unit_runs_the_update_guard_first_and_restarts_after_a_switch():
    service = service_section(UNITS / "rpfleet-agent.service")
    # "-": the guard never keeps the agent from starting; it runs from the last proven release.
    assert service["ExecStartPre"] == [
        "-/opt/rpfleet/guard/bin/python -m agent.update.guard --config /etc/rpfleet/agent.toml"]
    from agent.update_link import RESTART_STATUS

    assert service["RestartForceExitStatus"] == [str(RESTART_STATUS)]  # what the agent exits with


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


# The agent's sandbox stays strict; kiosks get a browser unit of their own -----------------

# Every sandbox line the agent unit had before kiosk nodes came: none may go or be
# loosened, on any node (kiosk.conf only adds groups and devices).
AGENT_HARDENING = {
    "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "ProtectHome": ["yes"],
    "PrivateTmp": ["yes"], "ProtectKernelTunables": ["yes"], "ProtectKernelModules": ["yes"],
    "ProtectKernelLogs": ["yes"], "ProtectControlGroups": ["yes"], "ProtectHostname": ["yes"],
    "RestrictSUIDSGID": ["yes"], "RestrictRealtime": ["yes"], "RestrictNamespaces": ["yes"],
    "LockPersonality": ["yes"], "MemoryDenyWriteExecute": ["yes"],
    "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
    "SystemCallArchitectures": ["native"], "CapabilityBoundingSet": [""],
    "DevicePolicy": ["closed"], "User": ["rpfleet"], "Group": ["rpfleet"], "UMask": ["0077"],
    "StateDirectoryMode": ["0700"],
    # the updater's releases and links (issue 11): the only path written beyond the state dir
    "ReadWritePaths": ["/opt/rpfleet"],
}
AGENT_DEVICES = {"char-input rw", "char-ttyUSB rw", "char-ttyACM rw", "char-usb_device rw",
                 "char-alsa rw", "char-usb rw"}


def test_the_agent_unit_keeps_every_hardening_line():
    service = service_section(UNITS / "rpfleet-agent.service")
    assert {key: service.get(key) for key in AGENT_HARDENING} == AGENT_HARDENING
    assert set(service["DeviceAllow"]) == AGENT_DEVICES
    groups = service["SupplementaryGroups"][0].split()
    # The printers' group and the journal's (fetch-logs); nothing that owns a display.
    assert set(groups) == {"input", "dialout", "audio", "plugdev", "lp", "systemd-journal"}


def test_the_kiosk_drop_in_only_adds_groups_devices_and_the_browser_unit():
    drop_in = service_section(UNITS / "rpfleet-agent.service.d/kiosk.conf")
    assert set(drop_in) == {"Environment", "SupplementaryGroups", "DeviceAllow"}
    assert not set(drop_in) & set(AGENT_HARDENING)
    assert drop_in["Environment"] == [f"{BROWSER_UNIT_ENV}={BROWSER_UNIT.name}"]
    assert drop_in["SupplementaryGroups"][0].split() == ["rpfleet-kiosk", "video"]
    assert set(drop_in["DeviceAllow"]) == {"char-cec rw", "char-vchiq rw"}


def test_the_browser_unit_runs_chromium_as_the_adapter_would_in_its_own_sandbox():
    service = service_section(BROWSER_UNIT)
    assert service["User"] == ["rpfleet-kiosk"] and service["Group"] == ["rpfleet-kiosk"]
    # What Chromium cannot live without is left out; the rest of the sandbox is there.
    assert "MemoryDenyWriteExecute" not in service and "PrivateDevices" not in service
    assert service["RestrictNamespaces"] == ["user pid net"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "RestrictSUIDSGID",
                "ProtectKernelModules", "LockPersonality"):
        assert service[key] == ["yes"], key
    assert service["ProtectSystem"] == ["strict"] and service["CapabilityBoundingSet"] == [""]
    # The agent does the restarting (its repair ladder counts them).
    assert service["Restart"] == ["no"]
    [start] = service["ExecStart"]
    words = start.split()
    assert words[0] == "/usr/bin/chromium" and words[-1] == "about:blank"
    assert set(KIOSK_SWITCHES) <= set(words)
    assert "--remote-debugging-port=0" in words and "$RPFLEET_BROWSER_ARGS" in words
    assert "--no-sandbox" not in words


def _polkit_answers(rule: Path, asks: list[dict]) -> list[str | None]:
    """What ``rule`` answers each ask ({user, id, details}), evaluated by node like polkitd does:
    rules in order, the first answer that is not NOT_HANDLED (null) wins."""
    harness = r"""
const fs = require("fs"), vm = require("vm");
const rules = [];
const polkit = {Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_ADMIN: "auth_admin",
                         NOT_HANDLED: null},
                addRule: (f) => rules.push(f), log: () => {}};
vm.runInNewContext(fs.readFileSync(process.argv[1], "utf8"), {polkit});
const asks = JSON.parse(process.argv[2]);  // node -e: no script name in argv
console.log(JSON.stringify(asks.map((ask) => {
  const action = {id: ask.id, lookup: (key) => (ask.details || {})[key]};
  for (const f of rules) {
    const answer = f(action, {user: ask.user});
    if (answer !== null && answer !== undefined) return answer;
  }
  return null;
})));
"""
    result = subprocess.run(["node", "-e", harness, str(rule), json.dumps(asks)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("rule", POLKIT_RULES, ids=[r.name for r in POLKIT_RULES])
def test_the_polkit_rule_is_valid_javascript(rule):
    if shutil.which("node") is None:
        pytest.skip("node is not installed (a JavaScript syntax check)")
    result = subprocess.run(["node", "--check", "-"], input=rule.read_text(encoding="utf-8"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    broken = subprocess.run(["node", "--check", "-"], input=rule.read_text(encoding="utf-8")[:-5],
                            capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0  # the check can fail


def test_the_polkit_rule_gives_the_agent_exactly_reboot_and_its_units():
    if shutil.which("node") is None:
        pytest.skip("node is not installed (it runs the rule)")
    browser = instance_name(BROWSER_UNIT.name, SAMPLE_INSTANCE)

    def units(user: str, unit: str, verb: str) -> dict:
        return {"user": user, "id": "org.freedesktop.systemd1.manage-units",
                "details": {"unit": unit, "verb": verb}}

    allowed = [
        {"user": "rpfleet", "id": "org.freedesktop.login1.reboot"},
        {"user": "rpfleet", "id": "org.freedesktop.login1.reboot-multiple-sessions"},
        units("rpfleet", "display-manager.service", "restart"),
        units("rpfleet", "lightdm.service", "restart"),
        units("rpfleet", browser, "restart"),
        units("rpfleet", browser, "stop"),
    ]
    refused = [
        {"user": "rpfleet", "id": "org.freedesktop.login1.reboot-ignore-inhibit"},
        {"user": "rpfleet", "id": "org.freedesktop.login1.power-off"},
        {"user": "rpfleet-kiosk", "id": "org.freedesktop.login1.reboot"},
        {"user": "rpfleet", "id": "org.freedesktop.systemd1.manage-unit-files"},
        units("rpfleet", "lightdm.service", "stop"),
        units("rpfleet", "ssh.service", "restart"),
        units("rpfleet", "rpfleet-agent.service", "stop"),
        units("rpfleet", "rpfleet-kiosk-browser@.service", "restart"),
        units("rpfleet", browser, "start"),
        units("rpfleet-kiosk", browser, "restart"),
    ]
    [rule] = POLKIT_RULES
    answers = _polkit_answers(rule, allowed + refused)
    assert answers == ["yes"] * len(allowed) + [None] * len(refused)


@pytest.mark.parametrize("screen", ["kiosk-sanh", "tv_cho.2", ".an", "a/b", "Màn hình 1"])
def test_the_browser_unit_name_is_escaped_as_systemd_escape_does(screen):
    expected = subprocess.run(["systemd-escape", f"--template={BROWSER_UNIT.name}", screen],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert instance_name(BROWSER_UNIT.name, screen) == expected


def test_the_browser_unit_refuses_a_switch_its_environment_file_cannot_carry(tmp_path):
    browser = ChromiumProcess(Path("/usr/bin/chromium"), tmp_path / "tv" / "profile",
                              display=":0", headless=False, window_size=(1280, 720),
                              extra_args=("--force-device-scale-factor=1",),
                              unit_template=BROWSER_UNIT.name)
    assert browser.unit_environment() == (
        "DISPLAY=:0\nRPFLEET_BROWSER_ARGS=--window-size=1280,720 --window-position=0,0 "
        "--force-device-scale-factor=1\n")
    browser.extra_args = ("--lang=vi VN",)
    with pytest.raises(BrowserStartFailed, match="extra_args '--lang=vi VN'"):
        browser.unit_environment()


def test_playbooks_install_files_that_exist():
    ansible = UNITS.parent / "ansible"
    sources = [(book.name, source) for book in sorted(ansible.glob("*.yml"))
               for source in re.findall(r"^\s*src: (\.\./\S+)", book.read_text(encoding="utf-8"),
                                        re.MULTILINE)]
    assert ("kiosk.yml", "../systemd/rpfleet-kiosk-browser@.service") in sources
    missing = [(book, source) for book, source in sources if not (ansible / source).exists()]
    assert missing == []


# The adapter driving the browser unit, with real Chromium -----------------------------------
#
# There is no service manager on this machine to start a unit (systemd is not PID 1
# here), so a stand-in `systemctl` plays its part for this one template: it reads the
# real unit file and does what systemd would with its lines (StateDirectory=, UMask=,
# Environment=, EnvironmentFile=, ExecStartPre=, ExecStart= with %S, %I and
# $RPFLEET_BROWSER_ARGS), with /var/lib moved under a test root. Chromium is real.

STAND_IN_SYSTEMCTL = r'''
import os, signal, subprocess, sys, time
from pathlib import Path

root, template = Path(os.environ["TEST_ROOT"]), Path(os.environ["TEST_TEMPLATE"])
verb, unit = sys.argv[1], sys.argv[-1]
pid_file = root / "run" / (unit + ".pid")
state = root / "var/lib"


def main_pid():
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return 0


def stop():
    pid = main_pid()
    if pid:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(200):
            if not main_pid() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break
            time.sleep(0.05)
        else:
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def start():
    instance = subprocess.run(["systemd-escape", "--unescape", "--instance", unit],
                              capture_output=True, text=True, check=True).stdout.strip()
    lines = {}
    for raw in template.read_text().splitlines():
        key, _, value = raw.partition("=")
        if value and not raw.startswith("#"):
            value = value.replace("%S", str(state)).replace("%I", instance)
            lines.setdefault(key, []).append(value)
    profile = state / lines["StateDirectory"][0]
    profile.mkdir(parents=True, exist_ok=True)
    profile.chmod(int(lines["StateDirectoryMode"][0], 8))
    env = {"PATH": os.environ["PATH"]}
    env.update(line.split("=", 1) for line in lines["Environment"])
    env_file = Path(str(root) + lines["EnvironmentFile"][0].lstrip("-"))
    if env_file.exists():
        env.update(line.split("=", 1) for line in env_file.read_text().splitlines() if line)
    for command in lines.get("ExecStartPre", []):
        subprocess.run(command.split(), check=True)
    argv = []
    for word in lines["ExecStart"][0].split():
        argv += env.get(word[1:], "").split() if word.startswith("$") else [word]
    umask = int(lines["UMask"][0], 8)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(root / "run" / (unit + ".log"), "ab") as log:
        browser = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log, start_new_session=True,
                                   preexec_fn=lambda: os.umask(umask))
    pid_file.write_text(str(browser.pid))


if verb == "restart":
    stop()
    start()
elif verb == "stop":
    stop()
elif verb == "show":
    print(main_pid())
else:
    sys.exit(f"stand-in systemctl: {verb} is not played")
'''


def test_the_adapter_starts_supervises_and_stops_chromium_in_its_unit(tmp_path, monkeypatch):
    root = tmp_path / "root"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f"#!{sys.executable}\n{STAND_IN_SYSTEMCTL}", encoding="utf-8")
    systemctl.chmod(0o755)
    monkeypatch.setenv("TEST_ROOT", str(root))
    monkeypatch.setenv("TEST_TEMPLATE", str(BROWSER_UNIT))
    # No display here: headless through extra_args, as the agent does not know. Root may
    # not run Chromium's sandbox; the unit runs it as rpfleet-kiosk, with it.
    extra = ("--headless=new",) + (("--no-sandbox",) if os.geteuid() == 0 else ())
    agent_home = root / "var/lib/rpfleet/kiosk-browser" / SAMPLE_INSTANCE
    browser = ChromiumProcess(Path("/usr/bin/chromium"), agent_home / "profile", display=":0",
                              headless=False, window_size=(800, 600), extra_args=extra,
                              unit_template=BROWSER_UNIT.name, systemctl=str(systemctl),
                              unit_state_root=root / "var/lib")
    unit_profile = root / "var/lib/rpfleet-kiosk-browser" / SAMPLE_INSTANCE

    async def product(url: str) -> str:
        cdp = CdpConnection(url)
        await cdp.connect()
        try:
            return (await cdp.send("Browser.getVersion"))["product"]
        finally:
            await cdp.close()

    async def scenario() -> None:
        try:
            first_url = await browser.start()
            assert browser.unit == r"rpfleet-kiosk-browser@kiosk\x2dsanh.service"
            assert "Chrome" in await product(first_url)
            main = browser.process.pid
            argv = Path(f"/proc/{main}/cmdline").read_bytes().split(b"\0")
            assert b"--user-data-dir=" + bytes(unit_profile) in argv
            assert b"--window-size=800,600" in argv  # from the agent's browser.env
            assert (unit_profile / "DevToolsActivePort").stat().st_mode & 0o777 == 0o640
            assert browser.alive

            # Killed behind the agent's back: the pidfd says so (the driver's "browser-gone").
            os.kill(main, signal.SIGKILL)
            for _ in range(200):
                if not browser.alive:
                    break
                await asyncio.sleep(0.05)
            assert not browser.alive
            assert "journalctl -u" in browser.process.returncode

            # Started afresh: a new process, the old port file not taken for the new one.
            second_url = await browser.start()
            assert browser.process.pid != main
            assert "Chrome" in await product(second_url)
            second = browser.process.pid
        finally:
            await browser.stop()
        assert browser.process is None and not browser.alive
        eventually(lambda: not Path(f"/proc/{second}").exists()
                   or Path(f"/proc/{second}/stat").read_text().split()[2] == "Z", timeout=15)

    try:
        asyncio.run(scenario())
    finally:
        subprocess.run([str(systemctl), "stop", str(browser.unit)], timeout=30)
