"""The registry: regions (branches/districts), sites, counters, and where nodes are.

A sites file (see `fleet_server.sites_csv`) becomes a list of `SiteRow`. Importing
it is three steps, so that the decision is pure and testable without a database:

- `load_registry(conn)` reads what is registered now (a `Registry`);
- `plan_import(rows, registry)` decides, without I/O, what to create, update or
  remove (an `ImportPlan`, with counts and a description of every change);
- `apply_plan(conn, plan)` writes it, inside the caller's transaction.

`import_sites` does all three. Running an import a second time plans nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet_server.schema import counters, nodes, regions, sites

SITE_KINDS = ("reception", "commune", "agency")
"""Reception point of a branch, commune/ward service point, online-service agency."""

ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
"""Ids of regions, sites and counters: lowercase a-z, 0-9 and '-' inside, 1 to 64 characters."""

_ID = re.compile(ID_PATTERN)
NAME_MAX = 200
ADDRESS_MAX = 300
WRITE_CHUNK = 1000

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a long step runs."""


def is_id(value: str) -> bool:
    """True when ``value`` may be a region, site or counter id."""
    return bool(_ID.match(value))


def counter_name(counter_id: str) -> str:
    """The display name of a counter made by an import: "Quầy 3"."""
    return f"Quầy {counter_id}"


@dataclass(frozen=True)
class SiteRow:
    """One site as a sites file describes it (already checked).

    ``counters`` is None when the file does not manage counters (no counters
    column); otherwise it is the complete list of the site's counter ids.
    """

    line: int
    site_id: str
    site_name: str
    kind: str
    region_id: str | None = None
    region_name: str | None = None
    address: str | None = None
    counters: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Site:
    name: str
    kind: str
    region_id: str | None
    address: str | None


@dataclass(frozen=True)
class Registry:
    """What is registered: region names, sites, and each site's counters (id -> name)."""

    regions: dict[str, str] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    counters: dict[str, dict[str, str | None]] = field(default_factory=dict)


@dataclass
class Tally:
    """How many rows of one table an import creates, updates, leaves alone or removes."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass(frozen=True)
class Change:
    """One planned write, for people: ``site phuong-ba-dinh: name 'A' -> 'B'``."""

    action: str  # "create" | "update" | "remove"
    what: str  # "region" | "site" | "counter"
    key: str  # region id, site id, or "site/counter"
    fields: tuple[tuple[str, Any, Any], ...] = ()  # (column, old, new) of an update

    def __str__(self) -> str:
        if self.action != "update":
            return f"{self.action} {self.what} {self.key}"
        diffs = ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new in self.fields)
        return f"update {self.what} {self.key}: {diffs}"


@dataclass
class ImportPlan:
    """What an import writes: rows ready for each table, every change described for
    people (`changes`), and counts per table (`tallies`)."""

    regions: list[dict[str, Any]] = field(default_factory=list)
    sites: list[dict[str, Any]] = field(default_factory=list)
    counters_upserted: list[dict[str, Any]] = field(default_factory=list)
    counters_removed: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    tallies: dict[str, Tally] = field(
        default_factory=lambda: {"regions": Tally(), "sites": Tally(), "counters": Tally()}
    )

    @property
    def writes(self) -> int:
        return len(self.changes)


def load_registry(conn: sa.Connection) -> Registry:
    """Everything registered now (small: one row per region, site and counter)."""
    found = Registry()
    for row in conn.execute(sa.select(regions.c.id, regions.c.name)):
        found.regions[row.id] = row.name
    for row in conn.execute(sa.select(sites)):
        found.sites[row.id] = Site(row.name, row.kind, row.region_id, row.address)
    for row in conn.execute(sa.select(counters)):
        found.counters.setdefault(row.site_id, {})[row.id] = row.name
    return found


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    return tuple((key, old[key], new[key]) for key in new if old[key] != new[key])


def plan_import(rows: Sequence[SiteRow], registry: Registry) -> ImportPlan:
    """Decide what writing ``rows`` over ``registry`` changes (pure).

    Regions and sites named in ``rows`` are created or updated; others are left
    alone. A row's counters, when given, are the site's complete list: missing
    ones are removed. Rows are assumed checked (unique sites, one name per region).
    """
    plan = ImportPlan()
    tally = plan.tallies

    wanted_regions = {row.region_id: row.region_name for row in rows if row.region_id}
    for region_id, name in wanted_regions.items():
        old = registry.regions.get(region_id)
        if old is None:
            plan.changes.append(Change("create", "region", region_id))
            tally["regions"].created += 1
        elif old != name:
            plan.changes.append(Change("update", "region", region_id, (("name", old, name),)))
            tally["regions"].updated += 1
        else:
            tally["regions"].unchanged += 1
            continue
        plan.regions.append({"id": region_id, "name": name})

    for row in rows:
        new = {"name": row.site_name, "kind": row.kind, "region_id": row.region_id,
               "address": row.address}
        old_site = registry.sites.get(row.site_id)
        if old_site is None:
            plan.changes.append(Change("create", "site", row.site_id))
            tally["sites"].created += 1
            plan.sites.append({"id": row.site_id, **new})
        elif diffs := _diff(asdict(old_site), new):
            plan.changes.append(Change("update", "site", row.site_id, diffs))
            tally["sites"].updated += 1
            plan.sites.append({"id": row.site_id, **new})
        else:
            tally["sites"].unchanged += 1
        if row.counters is not None:
            _plan_counters(plan, row, registry.counters.get(row.site_id, {}))
    return plan


def _plan_counters(plan: ImportPlan, row: SiteRow, old: dict[str, str | None]) -> None:
    tally = plan.tallies["counters"]
    for counter_id in row.counters or ():
        key = f"{row.site_id}/{counter_id}"
        name = counter_name(counter_id)
        if counter_id not in old:
            plan.changes.append(Change("create", "counter", key))
            tally.created += 1
        elif old[counter_id] != name:
            plan.changes.append(Change("update", "counter", key, (("name", old[counter_id], name),)))
            tally.updated += 1
        else:
            tally.unchanged += 1
            continue
        plan.counters_upserted.append({"site_id": row.site_id, "id": counter_id, "name": name})
    for counter_id in sorted(set(old) - set(row.counters or ())):
        plan.changes.append(Change("remove", "counter", f"{row.site_id}/{counter_id}"))
        tally.removed += 1
        plan.counters_removed.append({"site_id": row.site_id, "id": counter_id})


def apply_plan(conn: sa.Connection, plan: ImportPlan, progress: Progress | None = None) -> None:
    """Write ``plan`` in the caller's transaction (regions, then sites, then counters).

    Writes are upserts, so a registry changed by someone else since it was
    loaded ends as the plan says rather than failing on a duplicate key.
    ``progress(done, total)`` is called after each chunk of writes.
    """
    total, done = plan.writes, 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    for chunk in _chunks(plan.regions):
        _upsert(conn, regions, chunk, ["id"])
        step(len(chunk))
    for chunk in _chunks(plan.sites):
        _upsert(conn, sites, chunk, ["id"])
        step(len(chunk))
    if plan.counters_removed:
        conn.execute(
            counters.delete().where(
                counters.c.site_id == sa.bindparam("b_site"), counters.c.id == sa.bindparam("b_id")
            ),
            [{"b_site": c["site_id"], "b_id": c["id"]} for c in plan.counters_removed],
        )
        step(len(plan.counters_removed))
    for chunk in _chunks(plan.counters_upserted):
        _upsert(conn, counters, chunk, ["site_id", "id"])
        step(len(chunk))


def import_sites(
    conn: sa.Connection, rows: Sequence[SiteRow], *, dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportPlan:
    """Plan ``rows`` against what is registered and, unless ``dry_run``, write the plan.

    The caller owns the transaction (``engine.begin()``), so the import is all
    or nothing.
    """
    plan = plan_import(rows, load_registry(conn))
    if not dry_run:
        apply_plan(conn, plan, progress)
    return plan


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), WRITE_CHUNK):
        yield rows[start : start + WRITE_CHUNK]


def _upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
    stmt = dialect.insert(table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), rows)


def placement_problem(conn: sa.Connection, site_id: str, counter: str | None) -> str | None:
    """Why a node cannot be put at ``site_id`` and ``counter``, or None if it can.

    The site must be registered; a counter must be one of the site's, unless
    the site has no counters registered at all.
    """
    if conn.execute(sa.select(sites.c.id).where(sites.c.id == site_id)).first() is None:
        return f"no site {site_id!r} is registered (see `rpfleet server import-sites`)"
    known = sorted(conn.execute(sa.select(counters.c.id).where(counters.c.site_id == site_id))
                   .scalars(), key=lambda c: (len(c), c))
    if counter is not None and known and counter not in known:
        return f"site {site_id!r} has no counter {counter!r} (its counters: {', '.join(known)})"
    return None


def nodes_at_removed_counters(conn: sa.Connection, plan: ImportPlan) -> list[tuple[str, str, str]]:
    """(node, site, counter) of nodes placed at a counter that ``plan`` removes.

    Such nodes keep their placement (their taps still name the counter); the
    operator should place them again.
    """
    removed = {(c["site_id"], c["id"]) for c in plan.counters_removed}
    if not removed:
        return []
    query = sa.select(nodes.c.id, nodes.c.site_id, nodes.c.counter).where(
        nodes.c.site_id.in_({site for site, _ in removed})
    ).order_by(nodes.c.id)
    return [(n, site, c) for n, site, c in conn.execute(query) if (site, c) in removed]
