"""What the console's screens show, worked out from API bodies: no I/O, no Textual.

The screens call these with the JSON the server returned and a clock, so what
a screen shows is decided here and tested without a terminal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

NO_VALUE = "—"
BAR_CELLS = " ▏▎▍▌▋▊▉█"
TRACK = "·"
"""What an empty bar cell shows, so that 0 % and no bar look different."""


def parse_time(value: str | None) -> datetime | None:
    """An API timestamp (ISO 8601, ``Z`` or offset) as an aware UTC datetime; None stays None."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def age(value: str | None, now: datetime) -> str:
    """How long ago ``value`` was, short: ``"45 s"``, ``"12 min"``, ``"3 h"``, ``"5 d"``."""
    when = parse_time(value)
    if when is None:
        return NO_VALUE
    return duration(max(0.0, (now - when).total_seconds()))


def duration(seconds: float) -> str:
    """``seconds`` in its largest whole unit: ``"45 s"``, ``"12 min"``, ``"3 h"``, ``"5 d"``."""
    seconds = int(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def bar(fraction: float | None, width: int) -> str:
    """``fraction`` (0..1) as a bar of ``width`` cells in eighths; blanks for None."""
    if fraction is None:
        return " " * width
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (BAR_CELLS[part] if part else "")
    return text.ljust(width, TRACK)


def percent(fraction: float | None) -> str:
    return NO_VALUE if fraction is None else f"{fraction:.0%}"


# ---- overview --------------------------------------------------------------


@dataclass(frozen=True)
class OverviewRow:
    """One line of the overview: a region (its sites added up) or one site."""

    key: str
    """``region:<id>`` or ``site:<id>``: stable, so a refresh updates rows in place."""
    label: str
    online: int
    total: int
    alerts: int
    ratings: int
    share: float | None
    """Share of satisfied ratings today; None without ratings."""

    @property
    def is_region(self) -> bool:
        return self.key.startswith("region:")

    @property
    def ident(self) -> str:
        return self.key.split(":", 1)[1]

    @property
    def offline(self) -> int:
        return self.total - self.online


def site_tallies(report: dict[str, Any] | None) -> dict[str, tuple[int, float | None]]:
    """Site id -> (ratings, share) from a `/reports?group=site` body."""
    found = {}
    for entry in (report or {}).get("groups", []):
        group, tally = entry["group"], entry["tally"]
        if group.get("kind") == "site":
            found[group["id"]] = (tally["ratings"], tally["share"])
    return found


def overview_rows(sites: list[dict[str, Any]], alerts: list[dict[str, Any]],
                  report: dict[str, Any] | None,
                  region_names: dict[str, str]) -> list[OverviewRow]:
    """Regions by name, each followed by its sites by name.

    Online / total and alerts add up the region's sites; so does the share of
    satisfied ratings (weighted by ratings). Sites at no region come last.
    """
    open_per_site = Counter(a["site_id"] for a in alerts if a.get("site_id"))
    tallies = site_tallies(report)
    by_region: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for site in sites:
        by_region[site.get("region_id") or ""].append(site)

    def region_label(region: str) -> str:
        return region_names.get(region, region) if region else "(no region)"

    rows: list[OverviewRow] = []
    for region in sorted(by_region, key=lambda r: (r == "", region_label(r))):
        members = sorted(by_region[region], key=lambda s: (s["name"], s["id"]))
        site_rows = []
        for site in members:
            ratings, share = tallies.get(site["id"], (0, None))
            site_rows.append(OverviewRow(
                f"site:{site['id']}", site["name"], site["nodes_online"], site["nodes_total"],
                open_per_site[site["id"]], ratings, share,
            ))
        ratings = sum(r.ratings for r in site_rows)
        satisfied = sum(r.share * r.ratings for r in site_rows if r.share is not None)
        rows.append(OverviewRow(
            f"region:{region}", region_label(region),
            sum(r.online for r in site_rows), sum(r.total for r in site_rows),
            sum(r.alerts for r in site_rows), ratings,
            satisfied / ratings if ratings else None,
        ))
        rows.extend(site_rows)
    return rows


def fleet_counts(nodes: list[dict[str, Any]]) -> Counter[str]:
    """Nodes per presence state (online, offline, unknown, retired)."""
    return Counter(n["state"] for n in nodes)


# ---- node table ------------------------------------------------------------

FILTER_FIELDS = ("region", "site", "state", "kind", "version", "alert", "drift")


@dataclass(frozen=True)
class NodeFilter:
    """What the node table's filter box says, e.g. ``site:hk-01 state:offline pad``.

    ``field:value`` terms match a field (``region``, ``site``, ``state``,
    ``kind``, ``version`` by prefix; ``alert:yes``/``alert:no``, or an alert kind;
    ``drift:yes``/``drift:no``: not on / on its latest desired config);
    other words must each appear in the node's id, site, counter or version.
    All terms must match; case does not matter.
    """

    terms: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "NodeFilter":
        """Raises ValueError naming an unknown ``field:``."""
        terms, words = [], []
        for part in text.lower().split():
            name, colon, value = part.partition(":")
            if not colon:
                words.append(part)
            elif name not in FILTER_FIELDS:
                raise ValueError(f"filter: unknown field {name!r} (use {', '.join(FILTER_FIELDS)})")
            elif value:
                terms.append((name, value))
        return cls(tuple(terms), tuple(words))

    def matches(self, node: dict[str, Any], alert_kinds: Iterable[str] = (),
                drifting: bool = False) -> bool:
        """Whether ``node`` (an API node summary, with ``region_id`` added from its
        site) passes, with its open ``alert_kinds`` and whether it is ``drifting``
        from its desired config."""
        kinds = [k.lower() for k in alert_kinds]
        for name, value in self.terms:
            if name == "alert":
                passed = {"yes": bool(kinds), "no": not kinds}.get(
                    value, any(k.startswith(value) for k in kinds))
            elif name == "drift":
                passed = drifting == value.startswith("y")
            else:
                field = {"site": "site_id", "version": "agent_version",
                         "region": "region_id"}.get(name, name)
                passed = str(node.get(field) or "").lower().startswith(value)
            if not passed:
                return False
        text = " ".join(str(node.get(f) or "") for f in
                        ("id", "site_id", "counter", "agent_version", "kind")).lower()
        return all(word in text for word in self.words)


def alerts_by_node(alerts: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Node id -> the kinds of its open alerts."""
    found: dict[str, list[str]] = defaultdict(list)
    for alert in alerts:
        if alert.get("node_id"):
            found[alert["node_id"]].append(alert["kind"])
    return dict(found)


# ---- jobs ------------------------------------------------------------------

OUTCOMES = ("done", "failed", "pending", "expired")


@dataclass(frozen=True)
class Progress:
    done: int = 0
    failed: int = 0
    pending: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed + self.pending + self.expired

    @property
    def finished(self) -> float | None:
        """The share of nodes that answered or expired; None for an empty job."""
        return (self.total - self.pending) / self.total if self.total else None

    def text(self) -> str:
        parts = [f"{self.done} done"]
        parts += [f"{n} {name}" for name, n in (("failed", self.failed),
                                                ("pending", self.pending),
                                                ("expired", self.expired)) if n]
        return ", ".join(parts)


def job_progress(job: dict[str, Any]) -> Progress:
    """The job's progress, from its ``progress`` object (GET /jobs) or else from its
    per-node outcomes."""
    counts = job.get("progress")
    if isinstance(counts, dict):
        return Progress(**{k: int(counts.get(k) or 0) for k in OUTCOMES})
    tally = Counter(outcome_state(n) for n in job.get("nodes") or [])
    return Progress(**{k: tally.get(k, 0) for k in OUTCOMES})


def outcome_state(outcome: dict[str, Any]) -> str:
    """done, failed, pending or expired, from a job's node outcome or a node's command."""
    state = str(outcome.get("state") or "pending").lower()
    return state if state in OUTCOMES else "pending"


def short_id(job_id: str) -> str:
    """A job id (32 hex) short enough for a table; the full id is in the job's screen."""
    return job_id[:8]


def job_target(job: dict[str, Any]) -> str:
    """Who a job was for (its ``selector``), in a few words."""
    selector = job.get("selector") or {}
    if selector.get("all"):
        return "whole fleet"
    for key in ("site", "region"):
        if selector.get(key):
            return f"{key} {selector[key]}"
    nodes = selector.get("nodes") or []
    if len(nodes) == 1:
        return str(nodes[0])
    return f"{len(nodes)} nodes" if nodes else NO_VALUE


def log_lines(command: dict[str, Any]) -> list[str]:
    """The journal lines a fetch-logs command brought back (its ``output``, asked with
    ``output=true``); empty when it has none."""
    output = command.get("output")
    if not isinstance(output, dict):
        return []
    return [str(line) for line in output.get("lines") or []]


# ---- node detail -------------------------------------------------------------


def health_facts(health: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) pairs from a node's last up/health payload; what it did not report
    is left out."""
    if not health:
        return []
    facts: list[tuple[str, str]] = []

    def put(label: str, key: str, show: Any) -> None:
        if health.get(key) is not None:
            facts.append((label, show(health[key])))

    put("agent up", "uptime_s", duration)
    put("system up", "system_uptime_s", duration)
    put("outbox", "outbox_pending", lambda n: f"{n} events waiting")
    put("oldest", "outbox_oldest_age_s", duration)
    put("cpu", "cpu_percent", lambda v: f"{v:.0f} %")
    put("load", "load_1m", lambda v: f"{v:.2f}")
    put("cpu temp", "cpu_temp_c", lambda v: f"{v:.0f} °C")
    if health.get("mem_available_mb") is not None and health.get("mem_total_mb"):
        facts.append(("memory", f"{health['mem_available_mb']:.0f} of "
                                f"{health['mem_total_mb']:.0f} MB free"))
    if health.get("disk_free_mb") is not None and health.get("disk_total_mb"):
        facts.append(("disk", f"{health['disk_free_mb']:.0f} of "
                              f"{health['disk_total_mb']:.0f} MB free"))
    put("clock", "clock_synced", lambda v: "synchronised" if v else "NOT synchronised")
    if health.get("alarms"):
        facts.append(("alarms", ", ".join(health["alarms"])))
    return facts


def config_facts(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of a node's desired vs reported config (GET /nodes/{id}/config)."""
    def short(version: Any) -> str:
        return NO_VALUE if not version else str(version).removeprefix("sha256:")[:12]

    reported = config.get("reported") if isinstance(config.get("reported"), dict) else {}
    desired = short(config.get("version") or config.get("desired_version"))
    got = short(config.get("reported_version") or reported.get("version"))
    state = config.get("reported_state") or reported.get("state") or NO_VALUE
    reason = config.get("reported_reason") or reported.get("reason")
    in_sync = config.get("in_sync")
    facts = [("desired", desired), ("reported", f"{got} ({state})"),
             ("in sync", NO_VALUE if in_sync is None else "yes" if in_sync else "NO")]
    if config.get("layers"):
        facts.insert(1, ("layers", ", ".join(config["layers"])))
    if reason:
        facts.append(("reason", str(reason)))
    return facts


def event_text(detail: dict[str, Any]) -> str:
    """One short line for an event's detail (as the node sent it), by its kind; other
    kinds show their plain fields. A scan shows what kind of code it was, not the code."""
    kind = detail.get("kind")
    if kind == "rating-tap":
        text = f"{detail.get('rating')}/{detail.get('scale')}"
        return text + (f" suspect: {detail['suspect']}" if detail.get("suspect") else "")
    if kind == "scan":
        what = detail.get("code_kind") or detail.get("symbology") or "code"
        return f"{what}{' (redacted)' if detail.get('redacted') else ''}"
    if kind in ("peripheral-attached", "peripheral-detached"):
        return f"{detail.get('peripheral_kind')} {detail.get('peripheral')}"
    if kind == "alarm":
        text = f"{detail.get('severity')} {detail.get('code')}: {detail.get('message')}"
        return text + (" (cleared)" if detail.get("cleared") else "")
    if kind == "announcement":
        parts = (detail.get("announce_kind"), detail.get("ticket"), detail.get("outcome"))
        return " ".join(str(p) for p in parts if p)
    if kind == "ticket":
        parts = (detail.get("number"), detail.get("outcome"), detail.get("reason"))
        return " ".join(str(p) for p in parts if p)
    if kind == "browser-repair":
        return f"{detail.get('step')} ({detail.get('trouble')})"
    return " ".join(f"{k}={v}" for k, v in detail.items()
                    if k != "kind" and isinstance(v, (str, int, float, bool)))


# ---- rollouts ----------------------------------------------------------------

STANDINGS = ("proven", "soaking", "updating", "waiting", "absent", "failed", "stuck", "regressed")
"""Where a node sent a rollout's version stands, in the order the console lists them."""
BAD_STANDINGS = frozenset({"failed", "stuck", "regressed"})
FINISHED_ROLLOUTS = frozenset({"aborted", "completed"})


def standing_counts(counts: dict[str, Any] | None) -> list[tuple[str, int]]:
    """(standing, nodes) pairs with nodes, in `STANDINGS` order (others after, by name)."""
    counts = {k: int(v or 0) for k, v in (counts or {}).items() if v}
    known = [(name, counts.pop(name)) for name in STANDINGS if name in counts]
    return known + sorted(counts.items())


def counts_text(counts: dict[str, Any] | None) -> str:
    """``"3 proven, 1 failed"``; ``"none sent yet"`` for no counts."""
    pairs = standing_counts(counts)
    return ", ".join(f"{n} {name}" for name, n in pairs) if pairs else "none sent yet"


@dataclass(frozen=True)
class RolloutProgress:
    """A rollout's nodes added up over its waves."""

    nodes: int
    proven: int
    bad: int
    sent: int


DRAWN_STANDINGS = ("proven", "soaking", "updating", "failed", "stuck", "regressed")
"""What a wave's bar draws, left to right; waiting and absent nodes are the track."""


def wave_bar(counts: dict[str, Any] | None, nodes: int, width: int) -> list[tuple[str, str]]:
    """A wave's bar of ``width`` cells: (cells, standing) segments of its nodes that got
    somewhere (`DRAWN_STANDINGS`), in whole cells by cumulative rounding, then the
    track (standing ``""``). Each standing with nodes gets at least one cell (when
    ``width`` has room for them all), so one failed node among many still shows."""
    counts = counts or {}
    drawn = [(s, int(counts.get(s) or 0)) for s in DRAWN_STANDINGS
             if int(counts.get(s) or 0) and nodes]
    segments: list[tuple[str, str]] = []
    used = reached = 0
    for index, (standing, n) in enumerate(drawn):
        reached += n
        room = width - (len(drawn) - index - 1)  # a cell for each standing after this one
        end = min(room, max(used + 1, round(reached / nodes * width)))
        if end > used:
            segments.append(("█" * (end - used), standing))
            used = end
    if used < width:
        segments.append((TRACK * (width - used), ""))
    return segments


def rollout_progress(rollout: dict[str, Any]) -> RolloutProgress:
    """Nodes, proven, failed (failed + stuck + regressed) and sent, over every wave."""
    nodes = proven = bad = sent = 0
    for wave in rollout.get("waves") or []:
        counts = {k: int(v or 0) for k, v in (wave.get("counts") or {}).items()}
        nodes += int(wave.get("nodes") or 0)
        proven += counts.get("proven", 0)
        bad += sum(n for k, n in counts.items() if k in BAD_STANDINGS)
        sent += sum(counts.values())
    return RolloutProgress(nodes, proven, bad, sent)


def total_counts(rollout: dict[str, Any]) -> dict[str, int]:
    """The counts of every wave added up."""
    total: Counter[str] = Counter()
    for wave in rollout.get("waves") or []:
        total.update({k: int(v or 0) for k, v in (wave.get("counts") or {}).items()})
    return dict(total)


def rollout_wave(rollout: dict[str, Any]) -> str:
    """``"wave 2 of 4"``, or ``"all 4 waves"`` once completed."""
    count = len(rollout.get("waves") or [])
    if rollout.get("state") == "completed":
        return f"all {count} waves"
    return f"wave {rollout.get('wave')} of {count}"


def rollout_sites(rollout: dict[str, Any]) -> str:
    sites = rollout.get("sites")
    return "every site" if not sites else ", ".join(sites)


def policy_text(policy: dict[str, Any] | None) -> str:
    """The rollout's soak time and failure limit: ``"soak 30 min · max failures 5%"``."""
    policy = policy or {}
    parts = []
    if policy.get("soak_s") is not None:
        parts.append(f"soak {duration(float(policy['soak_s']))}")
    limit = policy.get("failures") or {}
    if limit.get("count") is not None:
        parts.append(f"max failures {limit['count']}")
    elif limit.get("share") is not None:
        parts.append(f"max failures {float(limit['share']) * 100:g}%")
    if policy.get("excused"):
        parts.append(f"{len(policy['excused'])} excused")
    return " · ".join(parts) or NO_VALUE


def gate_facts(gates: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) pairs of the open wave's last evaluation (the rollout's ``gates``):
    what it decided and why, and the tap gate; empty before the first evaluation."""
    if not gates:
        return []
    facts = [("action", str(gates.get("action") or NO_VALUE)),
             ("why", str(gates.get("reason") or NO_VALUE))]
    if gates.get("counts"):
        facts.append(("open wave", counts_text(gates["counts"])))
    taps = gates.get("taps")
    if isinstance(taps, dict):
        expected = taps.get("expected")
        facts.append(("tap gate", f"{taps.get('state')}: {taps.get('seen')} taps seen, "
                                  f"{NO_VALUE if expected is None else f'{expected:g}'} expected"))
        if taps.get("detail"):
            facts.append(("", str(taps["detail"])))
    else:
        facts.append(("tap gate", "not judged"))
    return facts


def gate_failures(gates: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(node, status, reason) of the failed nodes the last evaluation named, by node."""
    found = [(str(f.get("node")), str(f.get("status") or ""), str(f.get("reason") or ""))
             for f in (gates or {}).get("failures") or []]
    return sorted(found)


def steering_hint(rollout: dict[str, Any]) -> str | None:
    """The server commands that steer a rollout in its state (the console only shows
    rollouts); None once it is finished."""
    state, ident = rollout.get("state"), rollout.get("id")
    verbs = {"running": ("pause", "abort"), "paused": ("resume", "abort"),
             "halted": ("resume", "abort")}.get(str(state))
    if not verbs:
        return None
    return " · ".join(f"rpfleet server rollout {verb} {ident}" for verb in verbs)
