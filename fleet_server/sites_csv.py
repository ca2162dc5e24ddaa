"""Reading a sites file (CSV) into checked `SiteRow`s, without any I/O.

The format (docs/registry.md has examples):

- UTF-8, with or without the byte-order mark Excel writes ("CSV UTF-8");
  names are stored in Unicode NFC, so that text typed on any system compares
  equal. Fields are separated by commas, or by semicolons or tabs when the
  header line uses those (Excel in a Vietnamese locale writes semicolons).
- The first line names the columns, in any order, case-insensitively:

  ============  ========  ==================================================
  site_id       required  lowercase a-z, 0-9 and '-' (1-64), unique in file
  site_name     required  up to 200 characters
  kind          required  reception | commune | agency
  region_id     optional  the branch/district; empty: no region
  region_name   optional  required when region_id is given; one name per id
  address       optional  up to 300 characters; empty clears it
  counters      optional  a count ("3": counters 1, 2, 3) or a list of ids
                          separated by ';', ',' or spaces ("1;2;vip"; "3;" is
                          the single counter 3). When the column is present
                          the row lists all of the site's counters; without
                          the column, counters are left as they are.
  ============  ========  ==================================================

- Values are trimmed, and a run of spaces or line breaks inside one (Excel's
  Alt+Enter) becomes one space. Blank lines are skipped. Every problem is
  reported as a `RowError` naming the line (of the file, counting the header as
  line 1) and the column.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from fleet_server.registry import ADDRESS_MAX, NAME_MAX, SITE_KINDS, SiteRow, is_id

COLUMNS = ("region_id", "region_name", "site_id", "site_name", "kind", "address", "counters")
"""Every known column, in the order the sample file and the docs use."""
REQUIRED = ("site_id", "site_name", "kind")
MAX_COUNTERS = 200
PROGRESS_EVERY = 1000
_LIST_SEPARATORS = re.compile(r"[;,\s]+")


@dataclass(frozen=True)
class RowError:
    """A problem with one line of the file, and the column it is in (if one)."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass
class SitesFile:
    """The rows of a sites file that passed every check, and every problem found."""

    rows: list[SiteRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    manages_counters: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def slug(text: str) -> str:
    """An id made from a Vietnamese name: ``"Phường Ba Đình"`` -> ``"phuong-ba-dinh"``."""
    plain = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:64].strip("-")


def read_sites(data: bytes, progress: Callable[[int, int], None] | None = None) -> SitesFile:
    """Check a whole sites file and return its rows and all of its problems.

    Nothing is raised for bad content: the caller writes nothing unless
    ``result.ok``. ``progress(line, lines)`` is called every 1,000 lines.
    """
    result = SitesFile()
    text = _decode(data, result.errors)
    if text is None:
        return result
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        result.errors.append(RowError(1, None, "the first line must name the columns: "
                                      + ", ".join(COLUMNS)))
        return result
    total = text.count("\n") + (not text.endswith("\n"))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    header = [name.strip().lower() for name in next(reader)]
    if not _check_header(header, result.errors):
        return result
    result.manages_counters = "counters" in header
    regions: dict[str, tuple[str | None, int]] = {}
    seen_sites: dict[str, int] = {}
    line, next_report = reader.line_num, PROGRESS_EVERY
    while True:
        start = line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append(RowError(start, None, f"cannot be read as CSV: {exc}"))
            break
        line = reader.line_num
        if progress is not None and start >= next_report:
            progress(start, total)
            next_report += PROGRESS_EVERY
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            result.errors.append(RowError(start, None, f"has {len(record)} fields but the header "
                                          f"names {len(header)} columns"))
            continue
        cells = dict(zip(header, record)) | {name: "" for name in header[len(record):]}
        row = _check_row(start, cells, result.manages_counters, result.errors)
        if row is not None and _check_across_rows(row, seen_sites, regions, result.errors):
            result.rows.append(row)
    if progress is not None:
        progress(total, total)
    return result


def _decode(data: bytes, errors: list[RowError]) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        errors.append(RowError(line, None, f"is not UTF-8 (byte 0x{data[exc.start]:02x}): save the "
                               "file as 'CSV UTF-8' (Excel) or convert it, e.g. with "
                               "`iconv -f CP1258 -t UTF-8`"))
        return None


def _delimiter(header_line: str) -> str:
    return max((",", ";", "\t"), key=header_line.count)


def _check_header(header: list[str], errors: list[RowError]) -> bool:
    before = len(errors)
    for index, name in enumerate(header):
        if name not in COLUMNS:
            errors.append(RowError(1, name or f"#{index + 1}", "is not a known column (known: "
                                   + ", ".join(COLUMNS) + ")"))
        elif header.index(name) != index:
            errors.append(RowError(1, name, "is named twice"))
    for name in REQUIRED:
        if name not in header:
            errors.append(RowError(1, name, "is missing: the first line must name the columns"))
    if "region_name" in header and "region_id" not in header:
        errors.append(RowError(1, "region_id", "is missing: region_name needs region_id"))
    return len(errors) == before


def _clean(value: str) -> str:
    """NFC, trimmed, and any run of spaces or line breaks inside made one space."""
    return unicodedata.normalize("NFC", " ".join(value.split()))


def _check_row(line: int, cells: dict[str, str], with_counters: bool,
               errors: list[RowError]) -> SiteRow | None:
    before = len(errors)

    def bad(column: str, message: str) -> None:
        errors.append(RowError(line, column, message))

    def ident(column: str, required: bool) -> str | None:
        value = _clean(cells.get(column, ""))
        if not value:
            if required:
                bad(column, "is empty")
            return None
        if not is_id(value):
            hint = f" (perhaps {slug(value)!r})" if slug(value) and is_id(slug(value)) else ""
            bad(column, f"{value!r} is not an id: use lowercase a-z, 0-9 and '-' inside, "
                        f"at most 64 characters{hint}")
        return value

    def text(column: str, required: bool, limit: int) -> str | None:
        value = _clean(cells.get(column, ""))
        if not value:
            if required:
                bad(column, "is empty")
            return None
        if len(value) > limit:
            bad(column, f"{value[:40]!r}... is {len(value)} characters long (at most {limit})")
        elif any(unicodedata.category(ch) == "Cc" for ch in value):
            bad(column, f"{value!r} contains a control character")
        return value

    site_id = ident("site_id", required=True)
    site_name = text("site_name", required=True, limit=NAME_MAX)
    kind = _clean(cells.get("kind", ""))
    if not kind:
        bad("kind", f"is empty (one of {', '.join(SITE_KINDS)})")
    elif kind not in SITE_KINDS:
        bad("kind", f"{kind!r} is not one of {', '.join(SITE_KINDS)}")
    region_id = ident("region_id", required=False)
    region_name = text("region_name", required=bool(region_id), limit=NAME_MAX)
    if region_name and not region_id:
        bad("region_id", f"is empty but region_name is {region_name!r}")
    address = text("address", required=False, limit=ADDRESS_MAX)
    site_counters = _counters(_clean(cells.get("counters", "")), bad) if with_counters else None
    if len(errors) != before:
        return None
    return SiteRow(line, site_id, site_name, kind, region_id, region_name, address, site_counters)


def _counters(value: str, bad: Callable[[str, str], None]) -> tuple[str, ...] | None:
    if not value:
        bad("counters", "is empty: give a count (3) or a list of counter ids (1;2;vip)")
        return None
    if value.isdigit():
        if int(value) > MAX_COUNTERS:
            bad("counters", f"{value!r} is more than {MAX_COUNTERS} counters")
            return None
        return tuple(str(n) for n in range(1, int(value) + 1))
    ids = [part for part in _LIST_SEPARATORS.split(value) if part]
    wrong = [part for part in ids if not is_id(part)]
    if wrong:
        bad("counters", f"{wrong[0]!r} is not a counter id (lowercase a-z, 0-9 and '-'), "
                        f"in {value!r}")
        return None
    if len(set(ids)) != len(ids):
        twice = next(part for part in ids if ids.count(part) > 1)
        bad("counters", f"{twice!r} is listed twice in {value!r}")
        return None
    if len(ids) > MAX_COUNTERS:
        bad("counters", f"lists {len(ids)} counters (at most {MAX_COUNTERS})")
        return None
    return tuple(ids)


def _check_across_rows(row: SiteRow, seen_sites: dict[str, int],
                       regions: dict[str, tuple[str | None, int]], errors: list[RowError]) -> bool:
    if row.site_id in seen_sites:
        errors.append(RowError(row.line, "site_id", f"{row.site_id!r} is already on line "
                               f"{seen_sites[row.site_id]}"))
        return False
    seen_sites[row.site_id] = row.line
    if row.region_id:
        name, first = regions.setdefault(row.region_id, (row.region_name, row.line))
        if name != row.region_name:
            errors.append(RowError(row.line, "region_name", f"{row.region_name!r} differs from "
                                   f"{name!r} given for region {row.region_id!r} on line {first}"))
            return False
    return True
