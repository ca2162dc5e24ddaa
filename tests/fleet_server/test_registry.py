"""Importing sites into the registry: idempotent, updates applied, all or nothing; on
SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from fleet_server import registry, store
from fleet_server.registry import Registry, Site, SiteRow, plan_import
from fleet_server.schema import counters, regions, sites
from fleet_server.sites_csv import read_sites

HEADER = "region_id,region_name,site_id,site_name,kind,address,counters\n"
FILE = HEADER + (
    "cn-ba-dinh,Chi nhánh Ba Đình,phuong-ba-dinh,Phường Ba Đình,commune,Trụ sở UBND,3\n"
    "cn-ba-dinh,Chi nhánh Ba Đình,dl-phuong-ba-dinh-1,Bưu cục Ba Đình,agency,,1\n"
    "cn-dong-da,Chi nhánh Đống Đa,tn-dong-da-3,Điểm tiếp nhận số 3 – Chi nhánh Đống Đa,reception,,1;2;vip\n"
)


def rows_of(text: str) -> list[SiteRow]:
    checked = read_sites(text.encode())
    assert checked.ok, checked.errors
    return checked.rows


def tallies(plan: registry.ImportPlan) -> dict[str, tuple[int, int, int, int]]:
    return {table: dataclasses.astuple(t) for table, t in plan.tallies.items()}


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))]
            for table in (regions, sites, counters)
        }


@pytest.fixture
def engine(db_url):
    engine = store.connect(db_url)
    yield engine
    engine.dispose()


def import_text(engine: sa.Engine, text: str, **kwargs) -> registry.ImportPlan:
    with engine.begin() as conn:
        return registry.import_sites(conn, rows_of(text), **kwargs)


def test_an_import_creates_regions_sites_and_counters(engine):
    plan = import_text(engine, FILE)
    assert tallies(plan) == {"regions": (2, 0, 0, 0), "sites": (3, 0, 0, 0), "counters": (7, 0, 0, 0)}
    stored = snapshot(engine)
    assert stored["regions"] == [("cn-ba-dinh", "Chi nhánh Ba Đình"), ("cn-dong-da", "Chi nhánh Đống Đa")]
    assert ("phuong-ba-dinh", "Phường Ba Đình", "commune", "cn-ba-dinh", "Trụ sở UBND") in stored["sites"]
    assert ("dl-phuong-ba-dinh-1", "Bưu cục Ba Đình", "agency", "cn-ba-dinh", None) in stored["sites"]
    assert sorted(c[1] for c in stored["counters"] if c[0] == "tn-dong-da-3") == ["1", "2", "vip"]
    assert ("phuong-ba-dinh", "3", "Quầy 3") in stored["counters"]


def test_importing_the_same_file_again_changes_nothing(engine):
    import_text(engine, FILE)
    before = snapshot(engine)
    again = import_text(engine, FILE)
    assert again.changes == []
    assert tallies(again) == {"regions": (0, 0, 2, 0), "sites": (0, 0, 3, 0), "counters": (0, 0, 7, 0)}
    assert snapshot(engine) == before


def test_changed_names_kinds_regions_and_counters_are_updated(engine):
    import_text(engine, FILE)
    changed = FILE.replace("Chi nhánh Đống Đa", "Chi nhánh số 3").replace(
        "phuong-ba-dinh,Phường Ba Đình,commune,Trụ sở UBND,3",
        "phuong-ba-dinh,Phường Ba Đình (mới),commune,,2;4",
    ).replace("cn-ba-dinh,Chi nhánh Ba Đình,dl-phuong-ba-dinh-1,Bưu cục Ba Đình,agency",
              "cn-dong-da,Chi nhánh số 3,dl-phuong-ba-dinh-1,Bưu cục Ba Đình,reception")
    plan = import_text(engine, changed)
    assert tallies(plan) == {"regions": (0, 1, 1, 0), "sites": (0, 3, 0, 0), "counters": (1, 0, 5, 2)}
    assert "update site phuong-ba-dinh: name 'Phường Ba Đình' -> 'Phường Ba Đình (mới)', " \
           "address 'Trụ sở UBND' -> None" in [str(c) for c in plan.changes]
    stored = snapshot(engine)
    assert ("cn-dong-da", "Chi nhánh số 3") in stored["regions"]
    assert ("dl-phuong-ba-dinh-1", "Bưu cục Ba Đình", "reception", "cn-dong-da", None) in stored["sites"]
    assert ("tn-dong-da-3", "Điểm tiếp nhận số 3 – Chi nhánh số 3", "reception", "cn-dong-da", None) \
        in stored["sites"]
    assert sorted(c[1] for c in stored["counters"] if c[0] == "phuong-ba-dinh") == ["2", "4"]


def test_sites_missing_from_a_file_are_left_alone(engine):
    import_text(engine, FILE)
    plan = import_text(engine, HEADER + FILE.splitlines(keepends=True)[1])
    assert plan.changes == []
    assert len(snapshot(engine)["sites"]) == 3


def test_without_a_counters_column_the_counters_stay(engine):
    import_text(engine, FILE)
    no_counters = "region_id,region_name,site_id,site_name,kind\n" \
                  "cn-dong-da,Chi nhánh Đống Đa,tn-dong-da-3,Điểm tiếp nhận số 3,reception\n"
    plan = import_text(engine, no_counters)
    assert [str(c) for c in plan.changes] == [
        "update site tn-dong-da-3: name 'Điểm tiếp nhận số 3 – Chi nhánh Đống Đa' -> 'Điểm tiếp nhận số 3'"
    ]
    assert len(snapshot(engine)["counters"]) == 7


def test_nodes_at_a_removed_counter_are_named(engine):
    import_text(engine, FILE)
    with engine.begin() as conn:
        store.assign_node(conn, "bd-q3", "phuong-ba-dinh", "3")
        store.assign_node(conn, "bd-q1", "phuong-ba-dinh", "1")
        store.assign_node(conn, "tn-q3", "tn-dong-da-3", "3")  # another site's counter 3 stays
    fewer = FILE.replace("Trụ sở UBND,3", "Trụ sở UBND,2").replace("1;2;vip", "1;2;3")
    with engine.begin() as conn:
        plan = registry.import_sites(conn, rows_of(fewer))
        assert registry.nodes_at_removed_counters(conn, plan) == [("bd-q3", "phuong-ba-dinh", "3")]


def test_a_dry_run_plans_but_writes_nothing(engine):
    with engine.connect() as conn:
        plan = registry.import_sites(conn, rows_of(FILE), dry_run=True)
        conn.commit()  # even a commit stores nothing: the dry run never wrote
    assert plan.writes == 2 + 3 + 7
    assert snapshot(engine) == {"regions": [], "sites": [], "counters": []}


def test_an_import_failing_part_way_leaves_nothing_behind(engine, monkeypatch):
    monkeypatch.setattr(registry, "WRITE_CHUNK", 1)

    def fail_after_some(done: int, total: int) -> None:
        if done == 4:
            raise RuntimeError("the disk is gone")

    with pytest.raises(RuntimeError, match="the disk is gone"):
        import_text(engine, FILE, progress=fail_after_some)
    assert snapshot(engine) == {"regions": [], "sites": [], "counters": []}


def test_progress_counts_every_write_up_to_the_total(engine, monkeypatch):
    monkeypatch.setattr(registry, "WRITE_CHUNK", 2)
    seen: list[tuple[int, int]] = []
    import_text(engine, FILE, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (12, 12)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.parametrize(
    "site, counter, problem",
    [("phuong-ba-dinh", "2", None), ("phuong-ba-dinh", None, None),
     ("phuong-ba-dinh", "9", "site 'phuong-ba-dinh' has no counter '9' (its counters: 1, 2, 3)"),
     ("nowhere", "1", "no site 'nowhere' is registered"),
     ("site-without-counters", "any", None)],
    ids=["known-counter", "no-counter", "unknown-counter", "unknown-site", "site-without-counters"],
)
def test_a_node_is_placed_only_at_a_registered_site_and_counter(engine, site, counter, problem):
    import_text(engine, FILE + ",,site-without-counters,Một điểm,agency,,0\n")
    with engine.connect() as conn:
        found = registry.placement_problem(conn, site, counter)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


# ---- the plan alone, without a database ---------------------------------


def test_the_plan_is_decided_without_a_database():
    now = Registry(
        regions={"r": "Region"},
        sites={"a": Site("A", "agency", "r", None)},
        counters={"a": {"1": "Quầy 1", "2": "Quầy 2 (cũ)"}},
    )
    rows = [SiteRow(2, "a", "A", "agency", "r", "Region", None, ("2", "3")),
            SiteRow(3, "b", "B", "commune", None, None, "Số 1", None)]
    plan = plan_import(rows, now)
    assert [str(c) for c in plan.changes] == [
        "update counter a/2: name 'Quầy 2 (cũ)' -> 'Quầy 2'",
        "create counter a/3",
        "remove counter a/1",
        "create site b",
    ]
    assert plan.regions == []
    assert plan.sites == [{"id": "b", "name": "B", "kind": "commune", "region_id": None, "address": "Số 1"}]
    assert plan.counters_removed == [{"site_id": "a", "id": "1"}]
