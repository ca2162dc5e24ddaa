"""The sample registry shaped like Hanoi, shipped with the package."""

from __future__ import annotations

import collections
import tomllib
from pathlib import Path

import pytest

from fleet_server.data import HANOI_SITES, make_hanoi_sites
from fleet_server.sites_csv import read_sites
from rpfleet.demo.fleet import SITES as DEMO_SITES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample():
    checked = read_sites(HANOI_SITES.read_bytes())
    assert checked.ok, checked.errors[:5]
    return checked.rows


def test_hanoi_has_12_branches_30_reception_points_126_commune_points_and_476_agencies(sample):
    assert len({row.region_id for row in sample}) == 12
    assert collections.Counter(row.kind for row in sample) == {
        "reception": 30, "commune": 126, "agency": 476,
    }


def test_every_site_is_in_a_branch_and_has_a_counter(sample):
    assert all(row.region_id and row.region_name.startswith("Chi nhánh ") for row in sample)
    assert all(row.counters for row in sample)


def test_names_are_vietnamese_and_unique(sample):
    names = [row.site_name for row in sample]
    assert len(set(names)) == len(names)
    assert {"Phường Ba Đình", "Xã Sóc Sơn", "Bưu điện văn hoá xã Bát Tràng",
            "Điểm tiếp nhận số 3 – Chi nhánh Đống Đa"} <= set(names)
    assert sum(name.startswith("Phường ") for name in names) == 51
    assert sum(name.startswith("Xã ") for name in names) == 75


def test_the_shipped_file_is_what_the_generator_writes():
    assert HANOI_SITES.read_text(encoding="utf-8") == make_hanoi_sites.render()


def test_the_generator_writes_where_it_is_told(tmp_path):
    target = tmp_path / "sites.csv"
    assert make_hanoi_sites.main([str(target)]) == 0
    assert target.read_bytes() == HANOI_SITES.read_bytes()


def test_the_sample_ships_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "*.csv" in config["tool"]["setuptools"]["package-data"]["*"]
    assert (HANOI_SITES.parent / "__init__.py").is_file()  # a package, so its data files ship


@pytest.mark.parametrize("site", DEMO_SITES, ids=[s.id for s in DEMO_SITES])
def test_the_demo_places_its_nodes_at_sites_and_counters_of_the_sample(sample, site):
    by_id = {row.site_id: row for row in sample}
    assert site.id in by_id
    assert set(site.counters) <= set(by_id[site.id].counters)
