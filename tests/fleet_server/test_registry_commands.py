"""`rpfleet server import-sites`, `nodes`, `assign-node` and `summary --by region`, run as
an operator would (a subprocess), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from fleet_server import registry, store
from fleet_server.data import HANOI_SITES
from fleet_server.schema import counters, nodes, sites
from fleet_server.sites_csv import read_sites


def rpfleet(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "rpfleet", "server", *args], input=stdin,
                            capture_output=True, timeout=120)
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


def counts(db_url: str) -> tuple[int, int, int]:
    engine = store.connect(db_url)
    with engine.connect() as conn:
        found = tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                      for t in (sites, counters, nodes))
    engine.dispose()
    return found


def tally(output: str, table: str) -> list[int]:
    """The created/updated/unchanged/removed figures of one table in the summary."""
    line = next(line for line in output.splitlines() if line.startswith(table))
    return [int(n) for n in re.findall(r"\d+", line)]


def test_the_sample_imports_once_and_a_second_run_changes_nothing(db_url):
    first = rpfleet("import-sites", "--db", db_url, str(HANOI_SITES))
    assert first.returncode == 0, first.stderr
    assert "632 sites in 12 regions" in first.stdout
    assert tally(first.stdout, "regions") == [12, 0, 0]
    assert tally(first.stdout, "sites") == [632, 0, 0]
    stored = counts(db_url)
    assert stored[0] == 632

    second = rpfleet("import-sites", "--db", db_url, str(HANOI_SITES))
    assert second.returncode == 0, second.stderr
    assert tally(second.stdout, "sites") == [0, 0, 632]
    assert tally(second.stdout, "counters") == [0, 0, stored[1], 0]
    assert counts(db_url) == stored


def test_a_file_with_a_bad_row_writes_nothing_and_names_the_row(db_url, tmp_path):
    good = HANOI_SITES.read_text(encoding="utf-8")
    lines = good.splitlines(keepends=True)
    lines[1] = lines[1].replace("Điểm tiếp nhận số 1", "Điểm tiếp nhận MỚI")  # a change, on line 2...
    lines[13] = re.sub(r",(reception|commune|agency),", ",kiosk,", lines[13])  # ...a bad kind on line 14
    bad = tmp_path / "sites.csv"
    bad.write_text("".join(lines), encoding="utf-8")

    result = rpfleet("import-sites", "--db", db_url, str(bad))
    assert result.returncode == 1
    assert "line 14, column kind: 'kiosk' is not one of reception, commune, agency" in result.stderr
    assert "nothing was written" in result.stderr
    assert counts(db_url) == (0, 0, 0)


def test_a_file_saved_by_excel_with_a_bom_and_semicolons_imports(db_url, tmp_path):
    excel = tmp_path / "excel.csv"
    excel.write_bytes("\ufeffregion_id;region_name;site_id;site_name;kind;address;counters\r\n"
                      "cn-ba-dinh;Chi nhánh Ba Đình;phuong-ba-dinh;Phường Ba Đình;commune;"
                      "\"Trụ sở UBND; Hà Nội\";3\r\n".encode("utf-8"))
    result = rpfleet("import-sites", "--db", db_url, str(excel))
    assert result.returncode == 0, result.stderr
    assert tally(result.stdout, "sites") == [1, 0, 0]
    engine = store.connect(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sites.c.name, sites.c.address)).one() == (
            "Phường Ba Đình", "Trụ sở UBND; Hà Nội")
    engine.dispose()


def test_a_dry_run_shows_the_changes_and_writes_nothing(db_url):
    result = rpfleet("import-sites", "--db", db_url, "--dry-run", "-", stdin=HANOI_SITES.read_bytes())
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing was written" in result.stdout
    assert "create region cn-hoan-kiem" in result.stdout
    assert counts(db_url) == (0, 0, 0)


def test_a_big_file_shows_progress(db_url, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("site_id,site_name,kind\n" + "".join(
        f"dl-{n},Đại lý số {n},agency\n" for n in range(2500)), encoding="utf-8")
    result = rpfleet("import-sites", "--db", db_url, str(big))
    assert result.returncode == 0, result.stderr
    assert "checked line: 1000 of 2501" in result.stderr
    assert "written: 2500 of 2500" in result.stderr
    assert counts(db_url)[0] == 2500


def test_the_help_documents_the_columns():
    result = rpfleet("import-sites", "--help")
    for column in ("region_id", "region_name", "site_id", "site_name", "kind", "address", "counters"):
        assert re.search(rf"^\s+{column}\s", result.stdout, re.MULTILINE), column


def import_sample(db_url: str, *placed: tuple[str, str, str]) -> None:
    """The sample registry, with nodes (node, site, counter) placed, without a subprocess."""
    engine = store.connect(db_url)
    with engine.begin() as conn:
        registry.import_sites(conn, read_sites(HANOI_SITES.read_bytes()).rows)
        for node, site, counter in placed:
            store.assign_node(conn, node, site, counter)
    engine.dispose()


def test_assign_node_refuses_a_counter_the_site_does_not_have(db_url):
    import_sample(db_url)
    refused = rpfleet("assign-node", "bd-q9", "--site", "phuong-ba-dinh", "--counter", "9", "--db", db_url)
    assert refused.returncode == 2
    assert "site 'phuong-ba-dinh' has no counter '9' (its counters: 1, 2, 3, 4, 5)" in refused.stderr
    assert counts(db_url)[2] == 0


def test_nodes_lists_where_each_node_is_and_its_peripherals(db_url):
    import_sample(db_url, ("bd-q1", "phuong-ba-dinh", "1"), ("hk-q1", "tn-hoan-kiem-1", "2"))
    engine = store.connect(db_url)
    with engine.begin() as conn:
        store.update_node(conn, "bd-q1", state="online",
                          last_seen=datetime.now(timezone.utc) - timedelta(seconds=90))
        store.sync_peripherals(conn, "bd-q1", [
            {"id": "pad-1", "kind": "rating-pad", "state": "ok"},
            {"id": "scanner-1", "kind": "scanner", "state": "missing", "detail": "unplugged"},
        ], datetime.now(timezone.utc))
    engine.dispose()

    listing = rpfleet("nodes", "--db", db_url, "--site", "phuong-ba-dinh")
    assert listing.returncode == 0, listing.stderr
    header, line = listing.stdout.splitlines()
    assert header.split() == ["node", "site", "counter", "state", "last", "seen", "peripherals"]
    assert line.split() == ["bd-q1", "phuong-ba-dinh", "1", "online", "1m", "ago",
                            "pad-1", "ok,", "scanner-1", "missing"]
    everyone = rpfleet("nodes", "--db", db_url, "--region", "cn-hoan-kiem")
    assert [line.split()[0] for line in everyone.stdout.splitlines()[1:]] == ["hk-q1"]
    unknown = rpfleet("nodes", "--db", db_url, "--site", "nowhere")
    assert unknown.returncode == 2 and "no site 'nowhere' is registered" in unknown.stderr


def test_summary_by_region_names_the_branches(db_url):
    import_sample(db_url, ("bd-q1", "phuong-ba-dinh", "1"))
    result = rpfleet("summary", "--by", "region", "--db", db_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[0] == "region"
    assert lines[1].startswith("Chi nhánh Ba Đình") and "0/1" in lines[1]
    assert lines[-1].startswith("all regions")
