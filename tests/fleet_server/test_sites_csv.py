"""Reading a sites file: every problem named by line and column, Excel's habits tolerated."""

from __future__ import annotations

import unicodedata

import pytest

from fleet_server.sites_csv import read_sites, slug

HEADER = "region_id,region_name,site_id,site_name,kind,address,counters\n"
BA_DINH = 'cn-ba-dinh,Chi nhánh Ba Đình,phuong-ba-dinh,Phường Ba Đình,commune,"Trụ sở UBND, Hà Nội",3\n'


def messages(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [str(e) for e in read_sites(data).errors]


def test_a_good_row_becomes_a_site_row():
    sites = read_sites((HEADER + BA_DINH).encode())
    assert sites.ok and sites.manages_counters
    (row,) = sites.rows
    assert (row.line, row.region_id, row.region_name, row.site_id, row.site_name, row.kind) == (
        2, "cn-ba-dinh", "Chi nhánh Ba Đình", "phuong-ba-dinh", "Phường Ba Đình", "commune")
    assert row.address == "Trụ sở UBND, Hà Nội"
    assert row.counters == ("1", "2", "3")


def test_the_byte_order_mark_excel_writes_is_ignored():
    sites = read_sites(b"\xef\xbb\xbf" + (HEADER + BA_DINH).encode())
    assert sites.ok
    assert sites.rows[0].region_id == "cn-ba-dinh"


@pytest.mark.parametrize("delimiter", [";", "\t"], ids=["semicolons", "tabs"])
def test_semicolon_or_tab_separated_files_are_read_by_their_header(delimiter):
    text = delimiter.join(["site_id", "site_name", "kind", "counters"]) + "\n" + \
        delimiter.join(["phuong-ba-dinh", "Phường Ba Đình", "commune", "1,2,vip"]) + "\n"
    sites = read_sites(text.encode())
    assert sites.ok, sites.errors
    assert sites.rows[0].counters == ("1", "2", "vip")


def test_decomposed_vietnamese_is_stored_composed():
    decomposed = unicodedata.normalize("NFD", "Phường Ba Đình")
    assert decomposed != "Phường Ba Đình"
    sites = read_sites(f"site_id,site_name,kind\nphuong-ba-dinh,{decomposed},commune\n".encode())
    assert sites.rows[0].site_name == "Phường Ba Đình"


@pytest.mark.parametrize(
    "cell, counters",
    [("3", ("1", "2", "3")), ("0", ()), ("1;2;vip", ("1", "2", "vip")), ("3;", ("3",)),
     ("a b  c", ("a", "b", "c"))],
    ids=["count", "none", "list", "single-listed", "spaces"],
)
def test_counters_are_a_count_or_a_list(cell, counters):
    sites = read_sites(f'site_id,site_name,kind,counters\nx,X,agency,"{cell}"\n'.encode())
    assert sites.ok, sites.errors
    assert sites.rows[0].counters == counters


def test_without_a_counters_column_counters_are_not_managed():
    sites = read_sites(b"site_id,site_name,kind\nx,X,agency\n")
    assert not sites.manages_counters
    assert sites.rows[0].counters is None


@pytest.mark.parametrize(
    "row, expected",
    [
        ("r,R,x,X,kiosk,,1", "line 2, column kind: 'kiosk' is not one of reception, commune, agency"),
        ("r,R,x,X,,,1", "line 2, column kind: is empty (one of reception, commune, agency)"),
        ("r,R,Phường Ba Đình,X,commune,,1",
         "line 2, column site_id: 'Phường Ba Đình' is not an id: use lowercase a-z, 0-9 and '-' "
         "inside, at most 64 characters (perhaps 'phuong-ba-dinh')"),
        ("r,R,-x,X,commune,,1", "line 2, column site_id: '-x' is not an id"),
        ("r,R,,X,commune,,1", "line 2, column site_id: is empty"),
        ("r,R,x,,commune,,1", "line 2, column site_name: is empty"),
        ("R R,R,x,X,commune,,1", "line 2, column region_id: 'R R' is not an id"),
        ("r,,x,X,commune,,1", "line 2, column region_name: is empty"),
        (",R,x,X,commune,,1", "line 2, column region_id: is empty but region_name is 'R'"),
        ("r,R,x,X,commune,,", "line 2, column counters: is empty"),
        ("r,R,x,X,commune,,201", "line 2, column counters: '201' is more than 200 counters"),
        ("r,R,x,X,commune,,1;Vip", "line 2, column counters: 'Vip' is not a counter id"),
        ("r,R,x,X,commune,,1;2;1", "line 2, column counters: '1' is listed twice in '1;2;1'"),
        ("r,R,x," + "X" * 201 + ",commune,,1", "line 2, column site_name: 'XXXX"),
        ("r,R,x,X\aY,commune,,1", "line 2, column site_name: 'X\\x07Y' contains a control character"),
        ("r,R,x,X,commune,,1,extra", "line 2: has 8 fields but the header names 7 columns"),
    ],
    ids=["unknown-kind", "empty-kind", "id-with-hint", "id-leading-dash", "empty-site-id",
         "empty-name", "bad-region-id", "region-without-name", "name-without-region",
         "empty-counters", "too-many-counters", "bad-counter-id", "counter-twice", "long-name",
         "control-character", "extra-field"],
)
def test_a_bad_row_is_named_by_line_and_column(row, expected):
    found = messages(HEADER + row + "\n")
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


def test_every_problem_is_reported_not_just_the_first_and_line_numbers_count_the_file():
    text = HEADER + BA_DINH + "\n" + "r,R,x,X,kiosk,,1\n" + "r,R,Y,X,commune,,0\n"
    found = messages(text)
    assert [f.split(":")[0] for f in found] == ["line 4, column kind", "line 5, column site_id"]


def test_a_line_break_inside_a_cell_becomes_a_space_and_keeps_later_line_numbers_right():
    text = HEADER + 'r,R,a,A,commune,"Số 1,\nphố  Huế",1\n' + "r,R,b,B,kiosk,,1\n"
    sites = read_sites(text.encode())
    assert sites.rows[0].address == "Số 1, phố Huế"
    assert [str(e) for e in sites.errors] == [
        "line 4, column kind: 'kiosk' is not one of reception, commune, agency"
    ]


def test_a_site_listed_twice_is_refused_at_its_second_line():
    assert messages(HEADER + BA_DINH + BA_DINH) == [
        "line 3, column site_id: 'phuong-ba-dinh' is already on line 2"
    ]


def test_a_region_given_two_names_is_refused():
    other = BA_DINH.replace("phuong-ba-dinh", "phuong-ngoc-ha").replace("Chi nhánh Ba Đình", "CN Ba Đình")
    assert messages(HEADER + BA_DINH + other) == [
        "line 3, column region_name: 'CN Ba Đình' differs from 'Chi nhánh Ba Đình' given for "
        "region 'cn-ba-dinh' on line 2"
    ]


@pytest.mark.parametrize(
    "header, expected",
    [
        ("site_id,site_name,kind,notes", ["line 1, column notes: is not a known column"]),
        ("site_id,site_name", ["line 1, column kind: is missing"]),
        ("site_id,site_name,kind,kind", ["line 1, column kind: is named twice"]),
        ("site_id,site_name,kind,region_name", ["line 1, column region_id: is missing"]),
        ("", ["line 1: the first line must name the columns"]),
    ],
    ids=["unknown-column", "missing-column", "column-twice", "region-name-alone", "empty"],
)
def test_a_bad_header_is_reported_and_no_row_is_read(header, expected):
    found = read_sites((header + "\n" + "x,X,commune,1\n").encode())
    assert not found.rows
    assert [str(e)[: len(x)] for e, x in zip(found.errors, expected)] == expected
    assert len(found.errors) == len(expected)


def test_column_names_are_case_and_space_insensitive():
    assert read_sites(b" Site_ID , SITE_NAME ,Kind\nx,X,agency\n").ok


def test_a_file_that_is_not_utf8_names_its_line_and_how_to_fix_it():
    windows_vietnamese = unicodedata.normalize("NFD", "r,R,x,Hòa Xá,commune,,1\n").encode("cp1258")
    data = (HEADER + BA_DINH).encode() + windows_vietnamese
    (error,) = messages(data)
    assert error.startswith("line 3: is not UTF-8") and "CSV UTF-8" in error


def test_blank_lines_are_skipped():
    sites = read_sites((HEADER + "\n" + BA_DINH + ",,,,,,\n").encode())
    assert sites.ok and [r.line for r in sites.rows] == [3]


def test_progress_is_reported_for_big_files():
    rows = "".join(f"r,R,s-{n},Site {n},agency,,1\n" for n in range(2500))
    seen: list[tuple[int, int]] = []
    sites = read_sites((HEADER + rows).encode(), progress=lambda done, total: seen.append((done, total)))
    assert len(sites.rows) == 2500
    assert seen == [(1000, 2501), (2000, 2501), (2501, 2501)]


@pytest.mark.parametrize(
    "name, expected",
    [("Phường Ba Đình", "phuong-ba-dinh"), ("Văn Miếu – Quốc Tử Giám", "van-mieu-quoc-tu-giam"),
     ("Xã Ứng Hòa", "xa-ung-hoa"), ("  ", "")],
    ids=["ward", "dash", "capital-u-horn", "blank"],
)
def test_slug_makes_an_ascii_id_from_a_vietnamese_name(name, expected):
    assert slug(name) == expected
