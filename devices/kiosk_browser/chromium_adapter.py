"""The Chromium process: started in kiosk mode with its own profile and a DevTools port
picked by the browser itself (``--remote-debugging-port=0``; the port is read back from
``DevToolsActivePort`` in the profile), stopped with its whole process group."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0

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
                 window_size: tuple[int, int], extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.profile_dir = profile_dir
        self.display = display
        self.headless = headless
        self.window_size = window_size
        self.extra_args = extra_args
        self.process: asyncio.subprocess.Process | None = None

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

    async def start(self) -> str:
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if not self.alive:
                raise BrowserStartFailed(
                    f"{self.binary} exited at start ({self.process.returncode}); see {log_path}")
            lines = _read_lines(port_file)
            if len(lines) >= 2 and lines[0].isdigit():
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            await asyncio.sleep(0.05)
        await self.stop()
        raise BrowserStartFailed(f"{self.binary} opened no DevTools port in {START_TIMEOUT_S}s")

    async def stop(self) -> None:
        """Ends the browser and everything it started; safe to call twice."""
        process, self.process = self.process, None
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


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").split()
    except OSError:
        return []
