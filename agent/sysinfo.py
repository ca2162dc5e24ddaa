"""What the node's health reports about the machine: parsers of /proc and /sys
kept pure, and one reader that takes the roots as arguments (tests give it
files of their own)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

TIME_ERROR = 5
STA_UNSYNC = 0x0040


def parse_cpu_times(stat: str) -> tuple[int, int]:
    """(busy, total) jiffies from the ``cpu`` line of /proc/stat."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total = sum(values[:8])  # guest time is already counted in user
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def cpu_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    busy, total = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return None
    # iowait may go backwards (proc(5)), so busy can outrun total: keep to 0..100.
    return round(min(100.0, max(0.0, 100.0 * busy / total)), 1)


def parse_meminfo(meminfo: str) -> tuple[float, float]:
    """(total, available) in MiB from /proc/meminfo."""
    values = {}
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            values[key] = int(rest.split()[0]) / 1024
    return round(values["MemTotal"], 1), round(values["MemAvailable"], 1)


def parse_uptime(uptime: str) -> float:
    return float(uptime.split()[0])


def rss_mb(statm: str, page_size: int) -> float:
    """Resident set size in MiB from /proc/<pid>/statm."""
    return round(int(statm.split()[1]) * page_size / 2**20, 1)


def hottest_zone_c(readings: list[str]) -> float | None:
    """The highest temperature among thermal zones (millidegrees Celsius)."""
    temps = []
    for text in readings:
        try:
            temps.append(int(text.strip()) / 1000)
        except ValueError:
            continue
    return round(max(temps), 1) if temps else None


def clock_synced(state: int, status: int) -> bool:
    """The kernel's view, from adjtimex(2): is the clock kept by NTP?"""
    return state != TIME_ERROR and not status & STA_UNSYNC


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h>; longs follow the platform (armhf or 64-bit).
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    # Looked up once: find_library runs `ldconfig -p`, a process per call.
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def read_clock_synced() -> bool | None:
    """Ask the kernel (read-only adjtimex); None where that is not possible."""
    try:
        timex = _Timex()
        state = _libc().adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return clock_synced(state, timex.status)


@dataclass(frozen=True)
class Machine:
    system_uptime_s: float | None
    cpu_percent: float | None
    load_1m: float | None
    mem_total_mb: float | None
    mem_available_mb: float | None
    disk_total_mb: float | None
    disk_free_mb: float | None
    cpu_temp_c: float | None
    agent_rss_mb: float | None


class MachineReader:
    """Reads the machine's state; CPU use is measured between two reads."""

    def __init__(self, disk: Path, proc: Path = Path("/proc"), sys: Path = Path("/sys")) -> None:
        self._disk = disk
        self._proc = proc
        self._sys = sys
        self._last_cpu: tuple[int, int] | None = None

    def read(self) -> Machine:
        cpu = self._try(lambda: parse_cpu_times(self._text("stat")))
        percent = cpu_percent(self._last_cpu, cpu) if cpu and self._last_cpu else None
        self._last_cpu = cpu or self._last_cpu
        mem = self._try(lambda: parse_meminfo(self._text("meminfo")))
        disk = self._try(lambda: shutil.disk_usage(self._disk))
        return Machine(
            system_uptime_s=self._try(lambda: parse_uptime(self._text("uptime"))),
            cpu_percent=percent,
            load_1m=self._try(lambda: round(float(self._text("loadavg").split()[0]), 2)),
            mem_total_mb=mem[0] if mem else None,
            mem_available_mb=mem[1] if mem else None,
            disk_total_mb=round(disk.total / 2**20, 1) if disk else None,
            disk_free_mb=round(disk.free / 2**20, 1) if disk else None,
            cpu_temp_c=hottest_zone_c(self._zones()),
            agent_rss_mb=self._try(
                lambda: rss_mb(self._text(f"{os.getpid()}/statm"), os.sysconf("SC_PAGE_SIZE"))
            ),
        )

    def _text(self, name: str) -> str:
        return (self._proc / name).read_text()

    def _zones(self) -> list[str]:
        readings = []
        for zone in sorted((self._sys / "class" / "thermal").glob("thermal_zone*/temp")):
            try:
                readings.append(zone.read_text())
            except OSError:
                continue
        return readings

    @staticmethod
    def _try(read):
        try:
            return read()
        except (OSError, ValueError, KeyError, IndexError):
            return None
