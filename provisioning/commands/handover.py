"""`handover SITE`: a site's handover record: its nodes, what they drive, how the
newest self-test went, who enrolled them and when."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet_server.handover_store import HandoverRow, NodeRecord, SiteRecord


def add(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "handover", help="a site's handover record: nodes, peripherals, self-test results, enrollment",
        description="Prints what a site was handed over with: each node at the site (or with an "
        "enrollment code for it), its peripherals as its last health reported them, the results of "
        "its newest self-test (rpfleet agent self-test), and who enrolled it and when. "
        "Times are in the city's time zone (RPFLEET_SERVER_ALERTS__CITY_TIMEZONE).",
    )
    cmd.add_argument("site", metavar="SITE", help="the site id, as registered")
    cmd.add_argument("--db", help="the fleet server's database URL (default RPFLEET_SERVER_DB_URL)")
    cmd.set_defaults(handler=_handover)


def _handover(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from fleet_server.cli import settings_from
    from fleet_server.commands.common import open_store
    from fleet_server.handover_store import site_record

    settings = settings_from(args)
    if settings is None:
        return 1
    engine = open_store(settings)
    if engine is None:
        return 1
    try:
        with engine.connect() as conn:
            found = site_record(conn, args.site)
    finally:
        engine.dispose()
    if found is None:
        print(f"rpfleet provision: no site {args.site!r}; register it first "
              "(rpfleet server add-site, or import-sites)", file=sys.stderr)
        return 2
    print(render(found, ZoneInfo(settings.alerts.city_timezone)), end="")
    return 0


def render(site: SiteRecord, zone: dt.tzinfo) -> str:
    """The record as text; times in ``zone``."""

    def when(at: dt.datetime | None) -> str:
        return "-" if at is None else f"{at.astimezone(zone):%Y-%m-%d %H:%M}"

    def time_of(at: dt.datetime) -> str:
        return f"{at.astimezone(zone):%H:%M}"

    out = [f"Biên bản bàn giao / handover record: {site.site_id} — {site.name} ({site.kind})"]
    if site.address:
        out.append(f"  {site.address}")
    out.append(f"  {len(site.nodes)} node(s); times in {zone}")
    for node in site.nodes:
        out.append("")
        out.extend(_node(node, when, time_of))
    if not site.nodes:
        out.append("\nno nodes yet: make enrollment codes with rpfleet provision node add --site "
                   f"{site.site_id} --counter N")
    else:
        passed = sum(1 for n in site.nodes if n.handover is not None and n.handover.passed)
        missing = sum(1 for n in site.nodes if n.handover is None)
        out.append(f"\n{passed}/{len(site.nodes)} node(s) passed their self-test"
                   + (f"; {missing} without one yet" if missing else ""))
    return "\n".join(out) + "\n"


def _node(node: NodeRecord, when, time_of) -> list[str]:
    where = f"quầy / counter {node.counter}" if node.counter else "no counter"
    presence = "never connected" if node.state is None or node.last_seen is None else (
        f"{node.state}, last seen {when(node.last_seen)}"
    )
    lines = [f"node {node.node_id} — {where} — {presence}", f"  enrolled: {_enrolled(node, when)}"]
    last = node.handover
    if last is None:
        lines.append("  self-test: none yet (run `rpfleet agent self-test` at the node)")
    else:
        lines.append(f"  self-test: {_handover_line(last, node.handovers, when, time_of)}")
    lines.extend(_peripherals(node))
    return lines


def _enrolled(node: NodeRecord, when) -> str:
    e = node.enrollment
    if e.code_by is None:
        part = "no enrollment code on record"
    elif e.code_used_at is None:
        part = f"code made by {e.code_by} at {when(e.code_made_at)}, not used yet"
    else:
        source = f" from {e.code_used_from}" if e.code_used_from else ""
        part = f"{when(e.code_used_at)}{source} with a code made by {e.code_by} at {when(e.code_made_at)}"
    if e.certificate_issued_at is None:
        return part + "; no certificate"
    cert = f"certificate {e.certificate_how or 'issued'} {when(e.certificate_issued_at)}"
    if e.certificate_revoked_at is not None:
        cert += f", REVOKED {when(e.certificate_revoked_at)}"
    return f"{part}; {cert}"


def _handover_line(last: HandoverRow, count: int, when, time_of) -> str:
    total = len(last.results)
    passed = sum(1 for r in last.results if r.get("passed"))
    verdict = "PASSED" if last.passed else "FAILED"
    started, finished = when(last.started_at), when(last.finished_at)
    if started[:10] == finished[:10]:
        finished = time_of(last.finished_at)
    by = f" by {last.technician}" if last.technician else " (technician not named)"
    earlier = f" ({count - 1} earlier)" if count > 1 else ""
    return f"{started}–{finished}{by}: {verdict} {passed}/{total}{earlier}"


def _peripherals(node: NodeRecord) -> list[str]:
    """One line per peripheral: the self-test's verdict, its state now, what was seen."""
    results = {r["peripheral"]: r for r in (node.handover.results if node.handover else [])}
    states = {p.id: p for p in node.peripherals}
    ids = [p.id for p in node.peripherals] + [i for i in results if i not in states]
    if not ids:
        return ["  peripherals: none reported"]
    rows = []
    for pid in ids:
        result, state = results.get(pid), states.get(pid)
        mark = "·" if result is None else "✓" if result.get("passed") else "✗"
        kind = state.kind if state is not None else result["kind"]  # type: ignore[index]
        now = state.state if state is not None else "-"
        seen = result["seen"] if result is not None else "not in the self-test"
        rows.append((mark, pid, kind, now, seen, result.get("note") if result else None))
    wid = max(len("PERIPHERAL"), *(len(r[1]) for r in rows))
    wkind = max(len("KIND"), *(len(r[2]) for r in rows))
    lines = [f"  {'':1} {'PERIPHERAL':<{wid}}  {'KIND':<{wkind}}  {'NOW':<8}  SEEN AT THE SELF-TEST"]
    for mark, pid, kind, now, seen, note in rows:
        lines.append(f"  {mark} {pid:<{wid}}  {kind:<{wkind}}  {now:<8}  {seen}")
        if note:
            lines.append(f"    {'':<{wid}}  {'':<{wkind}}  {'':<8}  note: {note}")
    return lines
