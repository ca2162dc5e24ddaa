"""agent.sysinfo: pure parsers of /proc and /sys on golden samples, and the reader."""

import os
import shutil
from pathlib import Path

import pytest

from agent.sysinfo import (
    STA_UNSYNC,
    TIME_ERROR,
    Machine,
    MachineReader,
    clock_synced,
    cpu_percent,
    hottest_zone_c,
    parse_cpu_times,
    parse_meminfo,
    parse_uptime,
    read_clock_synced,
    rss_mb,
)

CASES = Path(__file__).parent / "testcases" / "sysinfo"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def sample(name: str) -> str:
    return (CASES / name).read_text()


# ---- parsers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # cpu  32655 0 7335 276099 644 0 168 25 0 0
        (sample("stat-build-vm"), (40183, 316926)),
        # cpu  183743 512 61390 12843557 9214 0 3892 0 0 0
        (sample("stat-raspberry-pi"), (249537, 13102308)),
        # guest (9th field) is already part of user and must not be counted twice
        ("cpu  100 0 50 800 10 0 5 5 30 0\n", (160, 970)),
        # old kernels print only user nice system idle
        ("cpu  100 20 30 850\n", (150, 1000)),
    ],
    ids=["build-vm", "raspberry-pi", "guest-time-not-double-counted", "four-fields"],
)
def test_parse_cpu_times_gives_busy_and_total_jiffies(text, expected):
    assert parse_cpu_times(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "cpu0 1 2 3 4 5 6 7 8\nintr 1\n", "cpux 1 2 3 4\n"],
    ids=["empty", "per-cpu-lines-only", "no-aggregate-line"],
)
def test_parse_cpu_times_without_the_cpu_line_raises(text):
    with pytest.raises(ValueError, match="no cpu line"):
        parse_cpu_times(text)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ((100, 1000), (250, 1500), 30.0),
        ((100, 1000), (100, 1500), 0.0),
        ((100, 1000), (600, 1500), 100.0),
        ((0, 0), (1, 3), 33.3),
        ((100, 1000), (100, 1000), None),
        ((100, 1000), (90, 900), None),
    ],
    ids=["thirty", "idle", "flat-out", "rounded", "no-time-passed", "counters-went-back"],
)
def test_cpu_percent_between_two_reads(before, after, expected):
    assert cpu_percent(before, after) == expected


def test_cpu_percent_stays_within_0_and_100_when_iowait_goes_back():
    before = parse_cpu_times("cpu  1000 0 500 8000 300 0 0 0 0 0\n")
    after = parse_cpu_times("cpu  1010 0 500 8000 298 0 0 0 0 0\n")  # busy +10, iowait -2
    percent = cpu_percent(before, after)
    assert percent is None or 0 <= percent <= 100, percent


def test_cpu_percent_between_the_two_golden_pi_samples():
    before = parse_cpu_times(sample("stat-raspberry-pi"))
    after = (before[0] + 150, before[1] + 500)
    assert cpu_percent(before, after) == 30.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (sample("meminfo-build-vm"), (24105.6, 23458.7)),  # 24684096 kB, 24021676 kB
        ("MemTotal:        3884096 kB\nMemFree:  1000 kB\nMemAvailable:    3312640 kB\n",
         (3793.1, 3235.0)),
    ],
    ids=["build-vm", "raspberry-pi-4gb"],
)
def test_parse_meminfo_gives_total_and_available_mib(text, expected):
    assert parse_meminfo(text) == expected


def test_parse_meminfo_without_memavailable_raises():
    # kernels before 3.14 do not have MemAvailable
    with pytest.raises(KeyError, match="MemAvailable"):
        parse_meminfo("MemTotal:  948304 kB\nMemFree:  500000 kB\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [(sample("uptime"), 1592.8), ("350735.47 234388.90\n", 350735.47)],
    ids=["build-vm", "raspberry-pi"],
)
def test_parse_uptime_gives_seconds(text, expected):
    assert parse_uptime(text) == expected


def test_parse_uptime_of_garbage_raises():
    with pytest.raises(ValueError, match="could not convert"):
        parse_uptime("soon 12\n")


@pytest.mark.parametrize(
    ("statm", "page_size", "expected"),
    [
        (sample("statm"), 4096, 24.0),  # 6144 resident pages
        (sample("statm"), 16384, 96.0),  # Raspberry Pi 5 kernels use 16 KiB pages
        ("100 37 10 1 0 50 0\n", 4096, 0.1),
    ],
    ids=["4k-pages", "16k-pages", "rounded"],
)
def test_rss_mb_from_statm(statm, page_size, expected):
    assert rss_mb(statm, page_size) == expected


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        ([sample("thermal-zone-temp")], 48.3),
        (["41000\n", sample("thermal-zone-temp"), "39875\n"], 48.3),
        (["garbage\n", "", "48.3\n", sample("thermal-zone-temp"), "N/A"], 48.3),
        (["-5250\n"], -5.2),
        (["not a number\n", ""], None),
        ([], None),
    ],
    ids=["one-zone", "hottest-of-three", "garbage-ignored", "below-zero", "only-garbage",
         "no-zones"],
)
def test_hottest_zone_c(readings, expected):
    assert hottest_zone_c(readings) == expected


@pytest.mark.parametrize(
    ("state", "status", "expected"),
    [
        (0, 0, True),
        (0, 0x0001 | 0x2000, True),  # TIME_OK with STA_PLL and STA_NANO
        (1, 0x0001, True),  # TIME_INS: a leap second is coming, still synced
        (TIME_ERROR, 0, False),
        (0, STA_UNSYNC, False),
        (0, STA_UNSYNC | 0x0001, False),
        (TIME_ERROR, STA_UNSYNC, False),
    ],
    ids=["ok", "ok-with-pll", "leap-second-pending", "time-error", "sta-unsync",
         "sta-unsync-with-pll", "both"],
)
def test_clock_synced(state, status, expected):
    assert clock_synced(state, status) is expected


def test_read_clock_synced_on_this_machine_is_a_bool_or_none():
    assert read_clock_synced() in (True, False, None)


# ---- the reader -----------------------------------------------------------


@pytest.fixture
def machine_tree(tmp_path: Path) -> tuple[Path, Path]:
    """A /proc and a /sys built from the golden samples, as on a Raspberry Pi."""
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    (proc / str(os.getpid())).mkdir(parents=True)
    shutil.copy(CASES / "stat-raspberry-pi", proc / "stat")
    shutil.copy(CASES / "meminfo-build-vm", proc / "meminfo")
    shutil.copy(CASES / "uptime", proc / "uptime")
    shutil.copy(CASES / "loadavg", proc / "loadavg")
    shutil.copy(CASES / "statm", proc / str(os.getpid()) / "statm")
    thermal = sys / "class" / "thermal"
    for zone, text in [("thermal_zone0", sample("thermal-zone-temp")), ("thermal_zone1", "41250\n"),
                       ("thermal_zone2", "unreadable\n")]:
        (thermal / zone).mkdir(parents=True)
        (thermal / zone / "temp").write_text(text)
    (thermal / "cooling_device0").mkdir()
    (thermal / "cooling_device0" / "cur_state").write_text("99000\n")
    return proc, sys


def test_machine_reader_reads_every_field_from_the_given_roots(machine_tree, tmp_path):
    proc, sys = machine_tree
    reader = MachineReader(tmp_path, proc=proc, sys=sys)

    first = reader.read()

    disk = shutil.disk_usage(tmp_path)
    assert first.system_uptime_s == 1592.8
    assert first.cpu_percent is None  # nothing to compare with yet
    assert first.load_1m == 0.64
    assert first.mem_total_mb == 24105.6
    assert first.mem_available_mb == 23458.7
    assert first.disk_total_mb == round(disk.total / 2**20, 1)
    assert 0 <= first.disk_free_mb <= first.disk_total_mb
    assert first.cpu_temp_c == 48.3
    assert first.agent_rss_mb == round(6144 * PAGE_SIZE / 2**20, 1)


def test_machine_reader_measures_cpu_between_two_reads(machine_tree, tmp_path):
    proc, sys = machine_tree
    reader = MachineReader(tmp_path, proc=proc, sys=sys)
    assert reader.read().cpu_percent is None

    # 150 busy jiffies (user +100, system +50) and 350 idle ones later: 30 %.
    (proc / "stat").write_text(sample("stat-raspberry-pi").replace(
        "cpu  183743 512 61390 12843557 ", "cpu  183843 512 61440 12843907 "))
    assert reader.read().cpu_percent == 30.0
    assert reader.read().cpu_percent is None  # no time passed since the last read


def test_machine_reader_keeps_the_last_cpu_sample_across_an_unreadable_stat(machine_tree, tmp_path):
    proc, sys = machine_tree
    reader = MachineReader(tmp_path, proc=proc, sys=sys)
    reader.read()
    (proc / "stat").unlink()
    assert reader.read().cpu_percent is None
    (proc / "stat").write_text(sample("stat-raspberry-pi").replace(
        "cpu  183743 512 61390 12843557 ", "cpu  184743 512 61390 12844557 "))
    assert reader.read().cpu_percent == 50.0


def test_machine_reader_of_an_empty_tree_gives_no_values_and_does_not_raise(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    reader = MachineReader(empty / "no-such-disk", proc=empty, sys=empty)

    first, second = reader.read(), reader.read()

    nothing = Machine(**{name: None for name in Machine.__dataclass_fields__})
    assert first == nothing
    assert second == nothing


def test_machine_reader_of_garbage_files_gives_no_values(tmp_path):
    proc = tmp_path / "proc"
    (proc / str(os.getpid())).mkdir(parents=True)
    for name in ("stat", "meminfo", "uptime", "loadavg", f"{os.getpid()}/statm"):
        (proc / name).write_text("garbage\n")
    reader = MachineReader(tmp_path / "no-such-disk", proc=proc, sys=tmp_path / "sys")

    reader.read()
    machine = reader.read()

    assert all(value is None for value in vars(machine).values()), machine


def test_machine_reader_of_this_machine(tmp_path):
    reader = MachineReader(tmp_path)
    reader.read()
    machine = reader.read()

    for name in ("system_uptime_s", "load_1m", "mem_total_mb", "mem_available_mb",
                 "disk_total_mb", "disk_free_mb", "agent_rss_mb"):
        value = getattr(machine, name)
        assert isinstance(value, float) and value >= 0, (name, value)
    assert machine.mem_available_mb <= machine.mem_total_mb
    assert machine.agent_rss_mb > 0
    assert machine.cpu_percent is None or 0 <= machine.cpu_percent <= 100
    assert machine.cpu_temp_c is None or isinstance(machine.cpu_temp_c, float)
