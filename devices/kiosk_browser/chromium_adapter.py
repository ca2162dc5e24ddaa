"""The Chromium process: started in kiosk mode with its own profile and a DevTools port
picked by the browser itself (``--remote-debugging-port=0``; the port is read back from
``DevToolsActivePort`` in the profile), stopped with its whole process group.

On kiosk and dashboard nodes the agent's unit names a systemd template in
``RPFLEET_KIOSK_BROWSER_UNIT`` (systemd/rpfleet-agent.service.d/kiosk.conf): the browser
then runs as that template's instance for the screen, as the display user and outside
the agent's sandbox (systemd/rpfleet-kiosk-browser@.service), and is started and stopped
with ``systemctl``; the DevTools endpoint is found the same way, in that unit's profile."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import shutil
import signal
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0

BROWSER_UNIT_ENV = "RPFLEET_KIOSK_BROWSER_UNIT"
"""Names the browser unit template (``rpfleet-kiosk-browser@.service``); unset: a child."""
UNIT_STATE_ROOT = Path("/var/lib")
"""systemd's StateDirectory= root (%S): the unit's profile is ``rpfleet-kiosk-browser/<id>``."""
_UNSAFE_IN_ENV_FILE = set(" \t\n\"'\\$`")

KIOSK_SWITCHES = (
    "--kiosk",
    "--no-first-run",
    "--no-default-browser-check",
    "--noerrdialogs",
    "--disable-infobars",
    "--disable-session-crashed-bubble",
    "--hide-crash-restore-bubble",
    "--disable-translate",
    "--disable-features=Translate,MediaRouter",
    "--password-store=basic",
    "--autoplay-policy=no-user-gesture-required",
    "--check-for-update-interval=31536000",
    # A dashboard in a background tab or behind a screensaver must keep ticking.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
)


class BrowserStartFailed(OSError):
    """Chromium did not start or did not open its DevTools endpoint."""


class ChromiumProcess:
    """One Chromium. ``start`` returns the browser's DevTools WebSocket URL."""

    def __init__(self, binary: Path, profile_dir: Path, *, display: str, headless: bool,
                 window_size: tuple[int, int], extra_args: tuple[str, ...] = (),
                 unit_template: str | None = None, systemctl: str = "systemctl",
                 unit_state_root: Path = UNIT_STATE_ROOT) -> None:
        """``unit_template``: run the browser as this systemd template's instance for the
        screen (the name of ``profile_dir``'s parent, the driver's directory for it); by
        default the one ``RPFLEET_KIOSK_BROWSER_UNIT`` names, never for a headless browser."""
        self.binary = binary
        self.profile_dir = profile_dir
        self.display = display
        self.headless = headless
        self.window_size = window_size
        self.extra_args = extra_args
        if unit_template is None and not headless:
            unit_template = os.environ.get(BROWSER_UNIT_ENV) or None
        self.unit = unit_template and instance_name(unit_template, profile_dir.parent.name)
        self.systemctl = systemctl
        self.unit_profile = unit_state_root / "rpfleet-kiosk-browser" / profile_dir.parent.name
        self.process: asyncio.subprocess.Process | UnitMainProcess | None = None

    def arguments(self) -> list[str]:
        width, height = self.window_size
        args = [str(self.binary), *KIOSK_SWITCHES, "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={self.profile_dir}", f"--window-size={width},{height}",
                "--window-position=0,0"]
        if self.headless:
            args += ["--headless=new", "--hide-scrollbars", "--mute-audio"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        args = [*args, *self.extra_args, "about:blank"]
        setpriv = shutil.which("setpriv")
        if setpriv:
            # Should the agent die without stopping it (kill -9), the browser goes too; under
            # systemd its cgroup would be killed anyway, elsewhere nothing else would.
            args = [setpriv, "--pdeathsig", "TERM", "--", *args]
        return args

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def unit_environment(self) -> str:
        """The unit's EnvironmentFile: the display and the switches that differ per screen."""
        width, height = self.window_size
        switches = [f"--window-size={width},{height}", "--window-position=0,0",
                    *self.extra_args]
        for switch in (self.display, *switches):
            if not switch or _UNSAFE_IN_ENV_FILE & set(switch):
                raise BrowserStartFailed(
                    f"extra_args {switch!r}: a browser unit takes no spaces, quotes, "
                    "backslashes or $ in a switch")
        return f"DISPLAY={self.display}\nRPFLEET_BROWSER_ARGS={' '.join(switches)}\n"

    async def start(self) -> str:
        if self.unit:
            return await self._start_unit()
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        port_file = self.profile_dir / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        env = dict(os.environ)
        if not self.headless:
            env["DISPLAY"] = self.display
        log_path = self.profile_dir.parent / "browser.log"
        with open(log_path, "wb") as output:
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.arguments(), stdin=asyncio.subprocess.DEVNULL, stdout=output,
                    stderr=output, env=env, start_new_session=True)
            except OSError as exc:
                raise BrowserStartFailed(f"cannot start {self.binary}: {exc}") from exc
        return await self._devtools_url(port_file, f"see {log_path}")

    async def _start_unit(self) -> str:
        """A fresh browser in its unit (``restart``: a running one from before goes)."""
        assert self.unit
        env_file = self.profile_dir.parent / "browser.env"
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text(self.unit_environment(), encoding="utf-8")
        if isinstance(self.process, UnitMainProcess):
            self.process.close()  # the run before, not stopped: restart replaces it
        try:
            await self._systemctl("restart", self.unit)
            pid = int(await self._systemctl("show", "--property=MainPID", "--value", self.unit))
            self.process = UnitMainProcess(pid, self.unit)
        except (OSError, ValueError) as exc:
            raise BrowserStartFailed(f"cannot start {self.unit}: {exc}") from exc
        return await self._devtools_url(self.unit_profile / "DevToolsActivePort",
                                         f"see journalctl -u {self.unit}")

    async def _devtools_url(self, port_file: Path, where: str) -> str:
        """Waits for the browser to write its DevTools port (and path) to ``port_file``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if not self.alive:
                raise BrowserStartFailed(
                    f"{self.binary} exited at start ({self.process.returncode}); {where}")
            lines = _read_lines(port_file)
            if len(lines) >= 2 and lines[0].isdigit():
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            await asyncio.sleep(0.05)
        await self.stop()
        raise BrowserStartFailed(f"{self.binary} opened no DevTools port in {START_TIMEOUT_S}s")

    async def stop(self) -> None:
        """Ends the browser and everything it started; safe to call twice."""
        process, self.process = self.process, None
        if isinstance(process, UnitMainProcess):
            process.close()
            try:
                # Stopped whether or not it still runs: the unit's other processes go too.
                await self._systemctl("stop", process.unit)
            except (OSError, asyncio.TimeoutError) as exc:
                log.warning("kiosk browser: could not stop %s: %s", process.unit, exc)
            return
        if process is None or process.returncode is not None:
            return
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(process.wait(), grace)
                break
            except asyncio.TimeoutError:
                continue
        # The zygote and renderers share the group; make sure none lingers.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


    async def _systemctl(self, *args: str) -> str:
        """``systemctl ARGS``' output; OSError naming the command when it fails."""
        try:
            process = await asyncio.create_subprocess_exec(
                self.systemctl, *args, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except OSError as exc:
            raise OSError(f"cannot run {self.systemctl}: {exc}") from exc
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        said = output.decode("utf-8", "replace").strip()
        if process.returncode != 0:
            raise OSError(f"{self.systemctl} {' '.join(args)} failed ({process.returncode}): "
                          f"{said[:500]}")
        return said


class UnitMainProcess:
    """A browser unit's main process: not the agent's child, so watched through a pidfd."""

    def __init__(self, pid: int, unit: str) -> None:
        if pid <= 0:
            raise OSError(f"{unit} has no main process (it exited at start)")
        self.pid = pid
        self.unit = unit
        self._pidfd: int | None = os.pidfd_open(pid)

    @property
    def returncode(self) -> str | None:
        """None while it runs; its exit status is the unit's, in its journal."""
        if self._pidfd is not None and not select.select([self._pidfd], [], [], 0)[0]:
            return None
        return f"see journalctl -u {self.unit}"

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def instance_name(template: str, instance: str) -> str:
    """``template`` (``name@.service``) instantiated for ``instance``, escaped as
    ``systemd-escape --template`` does (the unit gets the original back with %I)."""
    prefix, at, suffix = template.partition("@")
    if not at or not suffix.startswith("."):
        raise ValueError(f"{template!r} is not a template unit name (name@.service)")
    escaped = []
    for position, char in enumerate(instance):
        if char == "/":
            escaped.append("-")
        elif (char.isascii() and (char.isalnum() or char in ":_.")
              and not (char == "." and position == 0)):
            escaped.append(char)
        else:
            escaped.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8"))
    return f"{prefix}@{''.join(escaped)}{suffix}"


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").split()
    except OSError:
        return []
