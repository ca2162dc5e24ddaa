"""`rpfleet demo` shows taps being stored and stops clean on Ctrl-C and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

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
