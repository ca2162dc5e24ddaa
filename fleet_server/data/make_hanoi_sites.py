"""Write the sample sites file shaped like Hanoi (hanoi-sites.csv beside this script).

12 branches (regions), 30 reception points, 126 commune/ward service points
(51 wards, 75 communes, named after Hanoi's communes and wards since 2025) and
476 online-service agencies in post offices and shops. Shops, streets and
villages are invented. The output is deterministic (no randomness), so that
running this again rewrites the same bytes; a test checks the shipped file.

    python -m fleet_server.data.make_hanoi_sites [OUT.csv]
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from fleet_server.sites_csv import COLUMNS, slug

# (region id, branch name, [(unit kind, name), ...]); "p" is a ward (phường), "x" a commune (xã).
BRANCHES: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("cn-hoan-kiem", "Hoàn Kiếm", [("p", "Hoàn Kiếm"), ("p", "Cửa Nam"), ("p", "Hai Bà Trưng"),
                                   ("p", "Vĩnh Tuy"), ("p", "Bạch Mai"), ("p", "Hồng Hà")]),
    ("cn-ba-dinh", "Ba Đình", [("p", "Ba Đình"), ("p", "Ngọc Hà"), ("p", "Giảng Võ"),
                               ("p", "Tây Hồ"), ("p", "Phú Thượng")]),
    ("cn-dong-da", "Đống Đa", [("p", "Đống Đa"), ("p", "Kim Liên"), ("p", "Văn Miếu – Quốc Tử Giám"),
                               ("p", "Láng"), ("p", "Ô Chợ Dừa"), ("p", "Thanh Xuân"),
                               ("p", "Khương Đình"), ("p", "Phương Liệt")]),
    ("cn-hoang-mai", "Hoàng Mai", [("p", "Hoàng Mai"), ("p", "Lĩnh Nam"), ("p", "Vĩnh Hưng"),
                                   ("p", "Tương Mai"), ("p", "Định Công"), ("p", "Hoàng Liệt"),
                                   ("p", "Yên Sở"), ("p", "Thanh Liệt"), ("x", "Thanh Trì"),
                                   ("x", "Đại Thanh"), ("x", "Nam Phù"), ("x", "Ngọc Hồi")]),
    ("cn-cau-giay", "Cầu Giấy", [("p", "Cầu Giấy"), ("p", "Nghĩa Đô"), ("p", "Yên Hòa"),
                                 ("p", "Xuân Đỉnh"), ("p", "Đông Ngạc"), ("p", "Tây Tựu"),
                                 ("p", "Phú Diễn"), ("p", "Thượng Cát"), ("p", "Từ Liêm"),
                                 ("p", "Xuân Phương"), ("p", "Tây Mỗ"), ("p", "Đại Mỗ")]),
    ("cn-long-bien", "Long Biên", [("p", "Long Biên"), ("p", "Bồ Đề"), ("p", "Việt Hưng"),
                                   ("p", "Phúc Lợi"), ("x", "Gia Lâm"), ("x", "Thuận An"),
                                   ("x", "Bát Tràng"), ("x", "Phù Đổng")]),
    ("cn-ha-dong", "Hà Đông", [("p", "Hà Đông"), ("p", "Dương Nội"), ("p", "Yên Nghĩa"),
                               ("p", "Phú Lương"), ("p", "Kiến Hưng"), ("x", "Thanh Oai"),
                               ("x", "Bình Minh"), ("x", "Tam Hưng"), ("x", "Dân Hòa"),
                               ("x", "Hoài Đức"), ("x", "Dương Hòa"), ("x", "Sơn Đồng"),
                               ("x", "An Khánh")]),
    ("cn-dong-anh", "Đông Anh", [("x", "Đông Anh"), ("x", "Phúc Thịnh"), ("x", "Thư Lâm"),
                                 ("x", "Thiên Lộc"), ("x", "Vĩnh Thanh"), ("x", "Mê Linh"),
                                 ("x", "Yên Lãng"), ("x", "Tiến Thắng"), ("x", "Quang Minh")]),
    ("cn-soc-son", "Sóc Sơn", [("x", "Sóc Sơn"), ("x", "Đa Phúc"), ("x", "Nội Bài"),
                               ("x", "Trung Giã"), ("x", "Kim Anh")]),
    ("cn-son-tay", "Sơn Tây", [("p", "Sơn Tây"), ("p", "Tùng Thiện"), ("x", "Minh Châu"),
                               ("x", "Quảng Oai"), ("x", "Vật Lại"), ("x", "Cổ Đô"),
                               ("x", "Bất Bạt"), ("x", "Suối Hai"), ("x", "Ba Vì"),
                               ("x", "Yên Bài"), ("x", "Đoài Phương"), ("x", "Phúc Thọ"),
                               ("x", "Phúc Lộc"), ("x", "Hát Môn"), ("x", "Đan Phượng"),
                               ("x", "Ô Diên"), ("x", "Liên Minh")]),
    ("cn-chuong-my", "Chương Mỹ", [("p", "Chương Mỹ"), ("x", "Phú Nghĩa"), ("x", "Xuân Mai"),
                                   ("x", "Trần Phú"), ("x", "Hòa Phú"), ("x", "Quảng Bị"),
                                   ("x", "Thạch Thất"), ("x", "Hạ Bằng"), ("x", "Tây Phương"),
                                   ("x", "Hòa Lạc"), ("x", "Yên Xuân"), ("x", "Quốc Oai"),
                                   ("x", "Hưng Đạo"), ("x", "Kiều Phú"), ("x", "Phú Cát")]),
    ("cn-thuong-tin", "Thường Tín", [("x", "Thường Tín"), ("x", "Thượng Phúc"),
                                     ("x", "Chương Dương"), ("x", "Hồng Vân"), ("x", "Phú Xuyên"),
                                     ("x", "Phượng Dực"), ("x", "Chuyên Mỹ"), ("x", "Đại Xuyên"),
                                     ("x", "Vân Đình"), ("x", "Ứng Thiên"), ("x", "Hòa Xá"),
                                     ("x", "Ứng Hòa"), ("x", "Mỹ Đức"), ("x", "Hồng Sơn"),
                                     ("x", "Phúc Sơn"), ("x", "Hương Sơn")]),
]

STREETS = [
    "Phố Huế", "Hàng Bài", "Kim Mã", "Đội Cấn", "Nguyễn Trãi", "Láng Hạ", "Xã Đàn",
    "Trần Duy Hưng", "Giải Phóng", "Minh Khai", "Nguyễn Văn Cừ", "Quang Trung",
    "Lạc Long Quân", "Hoàng Quốc Việt", "Trường Chinh", "Tôn Đức Thắng", "Lê Duẩn",
    "Ngọc Khánh", "Thụy Khuê", "Nguyễn Chí Thanh", "Phạm Văn Đồng", "Cầu Giấy", "Xuân Thủy",
    "Nguyễn Văn Linh", "Ngô Gia Tự", "Tam Trinh", "Lĩnh Nam", "Kim Giang", "Vũ Trọng Phụng",
    "Tô Hiệu", "Lê Trọng Tấn", "Hồ Tùng Mậu", "Mễ Trì", "Đê La Thành",
]
VILLAGES = [
    "thôn Đoài", "thôn Đông", "thôn Trung", "thôn Thượng", "thôn Hạ", "thôn Bắc", "thôn Nam",
    "xóm Chợ", "xóm Mới", "thôn Cao Xá", "thôn Phú Mỹ", "thôn Lương Xá", "thôn An Thái",
    "thôn Phương Nhị", "thôn Đình Tràng", "thôn Yên Vĩnh", "thôn Hậu Dưỡng",
]
OWNERS = [
    "Minh Anh", "Hồng Nhung", "Thu Hà", "Quang Huy", "Ngọc Lan", "Đức Thắng", "Bích Ngọc",
    "Thanh Tùng", "Phương Thảo", "Hải Yến", "Tuấn Anh", "Mai Hương", "Văn Khoa", "Kim Oanh",
    "Gia Bảo", "Thảo Nguyên", "Hoàng Long", "Diệu Linh", "Trọng Nghĩa", "Lệ Thủy", "Bảo Châu",
]
SHOPS = ["Cửa hàng", "Nhà sách", "Cửa hàng tiện ích", "Điểm giao dịch"]

RECEPTION_POINTS = [3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2]
"""Reception points per branch, in the order of BRANCHES (30 in all)."""
RECEPTION_COUNTERS = (8, 6, 5)
AGENCIES_TOTAL = 476


def _unit(kind: str, name: str) -> str:
    return f"{'phường' if kind == 'p' else 'xã'} {name}"


def _urban_address(seed: int, unit: str) -> str:
    return f"{1 + seed * 37 % 199} {STREETS[seed * 13 % len(STREETS)]}, {unit}, Hà Nội"


def _rural_address(seed: int, unit: str) -> str:
    return f"{VILLAGES[seed * 5 % len(VILLAGES)]}, {unit}, Hà Nội"


def _reception_rows() -> list[dict[str, str]]:
    rows = []
    for (region_id, branch, units), points in zip(BRANCHES, RECEPTION_POINTS, strict=True):
        region_name = f"Chi nhánh {branch}"
        for number in range(1, points + 1):
            kind, name = units[(number - 1) * 2 % len(units)]
            seed = len(rows) + 11
            address = (_urban_address if kind == "p" else _rural_address)(seed, _unit(kind, name))
            rows.append({
                "region_id": region_id, "region_name": region_name,
                "site_id": f"tn-{slug(branch)}-{number}",
                "site_name": f"Điểm tiếp nhận số {number} – {region_name}",
                "kind": "reception", "address": address,
                "counters": str(RECEPTION_COUNTERS[number - 1]),
            })
    return rows


def _units() -> list[tuple[str, str, str, str]]:
    """(region id, region name, "p" or "x", name) of the 126 communes and wards."""
    return [(region_id, f"Chi nhánh {branch}", kind, name)
            for region_id, branch, units in BRANCHES for kind, name in units]


def _commune_rows() -> list[dict[str, str]]:
    rows = []
    for region_id, region_name, kind, name in _units():
        unit = _unit(kind, name)
        rows.append({
            "region_id": region_id, "region_name": region_name,
            "site_id": slug(unit), "site_name": unit[0].upper() + unit[1:], "kind": "commune",
            "address": f"Trụ sở UBND {unit}, Hà Nội", "counters": str(3 + len(rows) % 4),
        })
    return rows


def _agency_rows() -> list[dict[str, str]]:
    """A post office and two or three shops per commune or ward: 476 in all."""
    units = _units()
    with_four = AGENCIES_TOTAL - 3 * len(units)
    rows = []
    for index, (region_id, region_name, kind, place) in enumerate(units):
        unit = _unit(kind, place)
        for number in range(1, (4 if index < with_four else 3) + 1):
            seed = index * 5 + number
            owner = OWNERS[seed * 3 % len(OWNERS)]
            if kind == "p":
                address = _urban_address(seed, unit)
                name = (f"Bưu cục {place}" if number == 1 else
                        f"{SHOPS[seed % len(SHOPS)]} {owner} – {address.split(',', 1)[0]}")
            else:
                address = _rural_address(seed, unit)
                name = (f"Bưu điện văn hoá xã {place}" if number == 1 else
                        f"Đại lý {owner} – {unit}")
            rows.append({
                "region_id": region_id, "region_name": region_name,
                "site_id": f"dl-{slug(unit)}-{number}", "site_name": name,
                "kind": "agency", "address": address, "counters": "1",
            })
    return rows


def site_rows() -> list[dict[str, str]]:
    """Every row of the sample, region by region: reception, commune, then agency sites."""
    every = _reception_rows() + _commune_rows() + _agency_rows()
    order = {region_id: n for n, (region_id, _, _) in enumerate(BRANCHES)}
    kinds = {"reception": 0, "commune": 1, "agency": 2}
    every.sort(key=lambda row: (order[row["region_id"]], kinds[row["kind"]]))  # stable
    _check(every)
    return every


def _check(rows: list[dict[str, str]]) -> None:
    by_kind = {kind: sum(row["kind"] == kind for row in rows) for kind in ("reception", "commune", "agency")}
    assert by_kind == {"reception": 30, "commune": 126, "agency": 476}, by_kind
    assert len({row["region_id"] for row in rows}) == 12
    assert len({row["site_id"] for row in rows}) == len(rows), "site ids repeat"
    assert len({row["site_name"] for row in rows}) == len(rows), "site names repeat"
    wards = sum(row["site_name"].startswith("Phường") for row in rows if row["kind"] == "commune")
    assert wards == 51, wards


def render() -> str:
    """The sample file's text (UTF-8, no BOM, "\\n" line ends)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(site_rows())
    return out.getvalue()


def main(argv: list[str]) -> int:
    from fleet_server.data import HANOI_SITES

    target = Path(argv[0]) if argv else HANOI_SITES
    target.write_text(render(), encoding="utf-8", newline="")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
