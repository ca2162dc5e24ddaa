"""Alert rules: from facts about nodes and sites to the alerts that should be open.

Pure code: facts and the time come in, `Finding`s and a `Plan` (which alerts
to open, which to close) come out; `fleet_server.alert_store` reads the facts
and applies the plan. An alert is identified by its kind and subject (a node
id, ``node/peripheral``, ``node/alarm-code`` or a site id): while one is
open no second opens, and it closes when its rule no longer finds the cause.
Closed alerts stay as history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Iterable
from zoneinfo import ZoneInfo

from fleet_server.presence import OFFLINE, RETIRED, Presence
from fleet_server.satisfaction import wilson_interval
from fleet_server.settings import AlertSettings
from rpfleet.protocol.messages import Health


class Kind(StrEnum):
    NODE_OFFLINE = "node-offline"
    PERIPHERAL_MISSING = "peripheral-missing"
    PERIPHERAL_FAILED = "peripheral-failed"
    OUTBOX_BACKLOG = "outbox-backlog"
    DISK_LOW = "disk-low"
    CLOCK_UNSYNCED = "clock-unsynced"
    NODE_ALARM = "node-alarm"
    SATISFACTION_LOW = "satisfaction-low"


KINDS = frozenset(k.value for k in Kind)
"""The kinds these rules own: only these are ever closed by `reconcile`."""

Key = tuple[str, str]
"""(kind, subject): what identifies an alert while it is open."""


@dataclass(frozen=True)
class Finding:
    """A cause that is present now: the alert (kind, subject) should be open."""

    kind: str
    subject: str
    severity: str
    detail: str
    node_id: str | None = None
    site_id: str | None = None

    @property
    def key(self) -> Key:
        return (self.kind, self.subject)


@dataclass(frozen=True)
class NodeFacts:
    id: str
    site_id: str | None
    presence: Presence
    health: Health | None = None


@dataclass(frozen=True)
class SiteDay:
    """Ratings at one site on one day; misuse-flagged taps are not counted."""

    site_id: str
    day: date
    satisfied: int
    total: int


@dataclass(frozen=True)
class Plan:
    open: list[Finding] = field(default_factory=list)
    close: list[Key] = field(default_factory=list)


# ---- nodes --------------------------------------------------------------


def node_findings(
    node: NodeFacts,
    now: datetime,
    rules: AlertSettings,
    *,
    previous_pending: int | None = None,
    open_keys: frozenset[Key] = frozenset(),
) -> list[Finding]:
    """Every cause present at ``node`` at ``now``.

    ``previous_pending``: the outbox depth of the health before the current one
    (None: unknown); ``open_keys``: alerts open now, for rules that close more
    reluctantly than they open.
    """
    if node.presence.state == RETIRED:
        return []
    found = []
    offline = _offline(node, now, rules)
    if offline:
        found.append(offline)
    if node.health is not None:
        h = node.health
        found += _peripherals(node, h)
        found += _alarms(node, h)
        for rule in (_disk_low, _clock_unsynced):
            finding = rule(node, h, rules)
            if finding:
                found.append(finding)
        backlog = _outbox_backlog(node, h, rules, previous_pending, open_keys)
        if backlog:
            found.append(backlog)
    return found


def _finding(node: NodeFacts, kind: Kind, severity: str, detail: str, part: str | None = None) -> Finding:
    subject = f"{node.id}/{part}" if part else node.id
    return Finding(kind.value, subject, severity, detail, node.id, node.site_id)


def _offline(node: NodeFacts, now: datetime, rules: AlertSettings) -> Finding | None:
    p = node.presence
    if p.state != OFFLINE or p.state_at is None:
        return None
    if now - p.state_at < timedelta(seconds=rules.offline_after):
        return None
    heard = f", last heard {p.last_seen:%Y-%m-%d %H:%M:%S}Z" if p.last_seen else ""
    return _finding(node, Kind.NODE_OFFLINE, "critical",
                    f"offline since {p.state_at:%Y-%m-%d %H:%M:%S}Z{heard}")


def _peripherals(node: NodeFacts, h: Health) -> list[Finding]:
    found = []
    for p in h.peripherals:
        kind = {"missing": Kind.PERIPHERAL_MISSING, "failed": Kind.PERIPHERAL_FAILED}.get(p.state)
        if kind is None:
            continue
        detail = f"{p.kind} {p.id} is {p.state}" + (f": {p.detail}" if p.detail else "")
        severity = "critical" if kind is Kind.PERIPHERAL_FAILED else "warning"
        found.append(_finding(node, kind, severity, detail, p.id))
    return found


def _alarms(node: NodeFacts, h: Health) -> list[Finding]:
    return [
        _finding(node, Kind.NODE_ALARM, "warning", f"the agent reports {code}", code)
        for code in h.alarms
    ]


def _disk_low(node: NodeFacts, h: Health, rules: AlertSettings) -> Finding | None:
    if h.disk_free_mb is None:
        return None
    low_mb = h.disk_free_mb < rules.disk_free_min_mb
    percent = 100 * h.disk_free_mb / h.disk_total_mb if h.disk_total_mb else None
    low_percent = percent is not None and percent < rules.disk_free_min_percent
    if not (low_mb or low_percent):
        return None
    share = f" ({percent:.1f} %)" if percent is not None else ""
    return _finding(node, Kind.DISK_LOW, "warning", f"{h.disk_free_mb:.0f} MB free{share}")


def _clock_unsynced(node: NodeFacts, h: Health, rules: AlertSettings) -> Finding | None:
    # Stateless on purpose (any worker, after any restart, decides the same): a
    # clock is unsynchronised at boot until NTP answers, so the grace runs from
    # boot; a kernel marks a synced clock unsynced only after hours without NTP.
    if h.clock_synced is not False:
        return None
    up = h.system_uptime_s if h.system_uptime_s is not None else h.uptime_s
    if up < rules.clock_grace:
        return None
    return _finding(node, Kind.CLOCK_UNSYNCED, "warning",
                    f"clock not synchronised {up / 60:.0f} min after boot: event times may be wrong")


def _outbox_backlog(
    node: NodeFacts, h: Health, rules: AlertSettings, previous: int | None, open_keys: frozenset[Key]
) -> Finding | None:
    # Opens on a backlog that is high and growing (not one draining after an
    # outage) or on an event stuck too long; once open it stays open while the
    # backlog is high, so a slowly growing backlog does not flap.
    pending = h.outbox_pending
    high = pending > rules.outbox_pending_max
    growing = previous is not None and pending > previous
    already = (Kind.OUTBOX_BACKLOG.value, node.id) in open_keys
    age = h.outbox_oldest_age_s or 0.0
    stuck = age > rules.outbox_oldest_age_max
    if not (stuck or (high and (growing or already))):
        return None
    trend = f" (was {previous})" if previous is not None else ""
    return _finding(node, Kind.OUTBOX_BACKLOG, "warning",
                    f"{pending} events not acked{trend}, oldest {age / 60:.0f} min old")


class OutboxTrend:
    """Remembers each node's last two outbox depths, to tell growing from draining.

    Kept in memory by whoever evaluates: after a restart the first round knows
    no trend, which delays an alert by one health interval and never raises one.
    """

    def __init__(self) -> None:
        self._samples: dict[str, tuple[datetime, int, int | None]] = {}

    def previous(self, node: str, health: Health) -> int | None:
        """The depth reported before ``health`` (None: not known yet)."""
        at, pending, before = self._samples.get(node, (None, None, None))
        if at == health.at:
            return before
        self._samples[node] = (health.at, health.outbox_pending, pending)
        return pending


# ---- sites --------------------------------------------------------------


def day_bounds(now: datetime, timezone: str) -> tuple[date, datetime, datetime]:
    """The city's calendar day holding ``now``, and its start and end as aware datetimes."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(0), zone)
    return day, start, datetime.combine(day + timedelta(days=1), time(0), zone)


def satisfaction_finding(site: SiteDay, rules: AlertSettings) -> Finding | None:
    """A site's day alerts when we are confident its share satisfied is below target.

    Confident means the upper end of the 95 % Wilson interval is below the
    target, and there are at least ``satisfaction_min_ratings`` ratings: with
    a handful of taps even the Wilson bound is too eager (one unhappy first tap
    of the day has an upper bound of 0.79).
    """
    if site.total < rules.satisfaction_min_ratings:
        return None
    low, high = wilson_interval(site.satisfied, site.total)
    if high >= rules.satisfaction_target:
        return None
    detail = (
        f"{site.day}: {site.satisfied} of {site.total} ratings satisfied "
        f"({site.satisfied / site.total:.0%}, 95 % interval {low:.2f}-{high:.2f}), "
        f"below the {rules.satisfaction_target:.0%} target"
    )
    return Finding(Kind.SATISFACTION_LOW.value, site.site_id, "warning", detail, None, site.site_id)


# ---- what to change -----------------------------------------------------


def reconcile(findings: Iterable[Finding], open_keys: Iterable[Key]) -> Plan:
    """Open what is found and not open; close what is open (of our kinds) and not found."""
    found: dict[Key, Finding] = {}
    for f in findings:
        found.setdefault(f.key, f)
    opened = set(open_keys)
    return Plan(
        open=[f for key, f in found.items() if key not in opened],
        close=sorted(key for key in opened if key[0] in KINDS and key not in found),
    )
