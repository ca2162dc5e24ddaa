"""`rpfleet demo` shows taps being stored and stops clean on Ctrl-C and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import eventually


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (zombies excluded)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline}")
    return found


def check_dashboard_and_console(lines: list[str]) -> None:
    """The dashboard URL it prints opens (page, and the site's data with the URL's key), and the
    console command it prints names the running API and a token file that reads the fleet."""
    output = "".join(lines)
    url = re.search(r"site dashboard \(open in a browser\): (\S+)", output).group(1)
    page, key = url.split("#key=")
    assert httpx.get(page, timeout=10).status_code == 200
    site = page.rstrip("/").split("/")[-2]
    api = page.split("/sites/")[0]
    snapshot = httpx.get(f"{api}/api/v1/sites/{site}/dashboard",
                         headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert snapshot.status_code == 200, snapshot.text

    command = re.search(r"fleet console \(in another terminal\): rpfleet console "
                        r"--server (\S+) --token-file (\S+)", output)
    server, token_file = command.group(1), Path(command.group(2))
    token = token_file.read_text(encoding="utf-8").strip()
    nodes = httpx.get(f"{server}/api/v1/nodes", headers={"Authorization": f"Bearer {token}"},
                      timeout=10)
    assert nodes.status_code == 200 and nodes.json()["total"] >= 5


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_stores_taps_and_stops_clean(tmp_path, sig):
    workdir = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "rpfleet", "demo", "--workdir", str(workdir),
         "--press-every", "0.2", "--refresh", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    try:
        def stored() -> int:
            totals = [int(m.group(1)) for line in list(lines)
                      if (m := re.match(r"all sites\s+(\d+)", line))]
            return max(totals, default=0)

        eventually(stored, timeout=60)
        assert len(processes_mentioning(str(workdir))) >= 7  # broker, server, five agents
        check_dashboard_and_console(lines)
        demo.send_signal(sig)
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    reader.join(10)
    output = "".join(lines)
    # Names come from the sample registry the demo imports: a site, and its branch.
    assert "Phường Ba Đình" in output and "Chi nhánh Ba Đình" in output
    assert "rpfleet demo: stopped" in output
    assert processes_mentioning(str(workdir)) == []
