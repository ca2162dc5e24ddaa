"""`rpfleet server report` as a user runs it: a process, on each backend."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import date

import pytest
from PIL import Image

from fleet_server.commands.report import display_width
from tests.fleet_server.reports.conftest import local, taps


def rpfleet(*args: str) -> subprocess.CompletedProcess:
    # A C locale on purpose: Vietnamese must come out as UTF-8 whatever the terminal says.
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": ""}
    return subprocess.run([sys.executable, "-m", "rpfleet", "server", *args], capture_output=True,
                          timeout=120, env=env)


@pytest.fixture
def march(add_taps) -> None:
    add_taps(taps("cn-1", local(date(2025, 3, 3)), satisfied=45, unsatisfied=5)
             + taps("cn-2", local(date(2025, 3, 4)), satisfied=8, unsatisfied=2)
             + taps("cn-2", local(date(2025, 3, 4), 11), satisfied=0, unsatisfied=4, suspect=True)
             + taps("hb-1", local(date(2025, 3, 4)), satisfied=3, unsatisfied=0))


def test_report_prints_a_table_and_writes_csv_and_chart(engine, db_url, march, tmp_path):
    csv_path, png_path = tmp_path / "cửa-nam.csv", tmp_path / "cửa-nam.png"
    done = rpfleet("report", "--db", db_url, "--site", "cua-nam", "--from", "2025-03-01",
                   "--to", "2025-03-07", "--group", "counter", "--csv", str(csv_path),
                   "--plot", str(png_path))
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode("utf-8")
    assert out.startswith("Satisfaction: Phường Cửa Nam, 2025-03-01 to 2025-03-07")
    body = [line for line in out.splitlines() if line.startswith(("2025-", "all "))]
    assert [line.split()[0] for line in body] == ["2025-03-03", "2025-03-04", "all", "all", "all"]
    assert len({display_width(line) for line in body}) == 1, out
    assert "Phường Cửa Nam / Quầy 1 – Hộ tịch" in body[0]
    assert body[-1].split()[1:6] == ["all", "60", "53", "88.3", "%"]
    assert "4 misuse-flagged taps are counted apart" in out

    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["period"], r["group_id"], r["ratings"], r["satisfied"], r["misuse_flagged"])
            for r in rows] == [
        ("2025-03-03", "cua-nam/1", "50", "45", "0"), ("2025-03-04", "cua-nam/2", "10", "8", "4"),
        ("all", "cua-nam/1", "50", "45", "0"), ("all", "cua-nam/2", "10", "8", "4"),
        ("all", "", "60", "53", "4")]

    with Image.open(png_path) as image:
        assert image.format == "PNG" and image.size == (1320, 672)
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 100


def test_defaults_are_by_day_over_the_whole_selection(engine, db_url, march):
    done = rpfleet("report", "--db", db_url, "--from", "2025-03-03", "--to", "2025-03-05")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode("utf-8").splitlines()
    assert lines[0].startswith("Satisfaction: all sites, 2025-03-03 to 2025-03-05 (Hanoi time), by day")
    assert [line.split()[:3] for line in lines[2:6]] == [
        ["2025-03-03", "50", "45"], ["2025-03-04", "13", "11"], ["2025-03-05", "0", "0"],
        ["all", "63", "56"]]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--site", "nowhere"], "--site 'nowhere': no site with this id in the registry"),
        (["--region", "hcm"], "--region 'hcm': no region with this id in the registry"),
        (["--from", "2025-02-30"], "argument --from: not a date (YYYY-MM-DD): '2025-02-30'"),
        (["--to", "03/04/2025"], "argument --to: not a date (YYYY-MM-DD): '03/04/2025'"),
        (["--from", "2025-03-09", "--to", "2025-03-01"],
         "--from '2025-03-09': is after the last day asked for (2025-03-01)"),
        (["--by", "year"], "argument --by: invalid choice: 'year'"),
        (["--plot", "chart.pdf"], "--plot 'chart.pdf': the chart is a PNG"),
    ],
    ids=["unknown-site", "unknown-region", "impossible-date", "not-iso", "backwards", "bad-by",
         "not-png"],
)
def test_bad_arguments_are_named_with_their_value(engine, db_url, args, message):
    done = rpfleet("report", "--db", db_url, "--from", "2025-03-01", "--to", "2025-03-07", *args)
    assert done.returncode == 2
    assert message in done.stderr.decode("utf-8")
    assert done.stdout == b""
