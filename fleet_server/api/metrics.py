"""The numbers behind ``/metrics``, in Prometheus' text exposition format.

Two kinds of numbers, and why it matters with several server workers:

- *this process* — what this worker's ingest did since it started
  (``rpfleet_ingest_*``, from `Ingest.stats`): counters that restart at zero
  with the process, as Prometheus expects; sum them over workers.
- *the fleet* — read from the store at scrape time, so every worker reports the
  same values (``rpfleet_nodes``, ``rpfleet_outbox_pending_events``,
  ``rpfleet_invalid_payloads_total``, ``rpfleet_alerts_open``): take one
  worker's, or ``max`` over workers, never the sum.

Reading at scrape time keeps one source of truth (the store) and nothing to
keep in step; each scrape costs a handful of aggregate queries over the nodes,
alerts and ingest_errors tables, which stay small (one row per node, per open
alert, per node and reason), not over events.

The exposition is written by `prometheus_client` (a small pure-Python package)
rather than by hand: it escapes label values and HELP text and formats
floats the way Prometheus parses them, which is easy to get subtly wrong. No
global registry and no process-wide collectors are used: every scrape builds
its families from a fresh reading.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Iterable

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from fleet_server.api.queries import OUTBOX_PENDING
from fleet_server.ingest import Stats
from fleet_server.schema import alerts, ingest_errors, nodes

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The text format every Prometheus version reads."""

ALWAYS_SHOWN_STATES = ("online", "offline", "unknown")
"""Node states exported even at zero, so that alert rules never meet an absent series."""


@dataclass(frozen=True)
class FleetReading:
    """The fleet-wide numbers, read from the store at one moment."""

    nodes_by_state: dict[str, int] = field(default_factory=dict)
    outbox_pending: int = 0
    invalid_payloads: dict[str, int] = field(default_factory=dict)
    open_alerts: dict[str, int] = field(default_factory=dict)


def read_fleet(conn: sa.Connection) -> FleetReading:
    """Read the fleet-wide numbers (a few aggregate queries, no writes).

    The outbox backlog sums ``outbox_pending`` from each node's last health
    report, over every node that is not retired: an offline node's backlog is
    still waiting to arrive.
    """
    states = conn.execute(sa.select(nodes.c.state, sa.func.count()).group_by(nodes.c.state))
    backlog = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(OUTBOX_PENDING), 0))
        .where(nodes.c.state != "retired")
    ).scalar_one()
    invalid = conn.execute(
        sa.select(ingest_errors.c.reason, sa.func.sum(ingest_errors.c.count)).group_by(
            ingest_errors.c.reason
        )
    )
    open_alerts = conn.execute(
        sa.select(alerts.c.kind, sa.func.count())
        .where(alerts.c.closed_at.is_(None))
        .group_by(alerts.c.kind)
    )
    return FleetReading(
        nodes_by_state={state: int(n) for state, n in states},
        outbox_pending=int(backlog),
        invalid_payloads={reason: int(n) for reason, n in invalid},
        open_alerts={kind: int(n) for kind, n in open_alerts},
    )


def families(stats: Stats | None, fleet: FleetReading) -> list[Metric]:
    """The metric families for one scrape; ``stats`` is None where no ingest runs."""
    out: list[Metric] = []
    if stats is not None:
        received = CounterMetricFamily(
            "rpfleet_ingest_messages_received",
            "MQTT messages this server process received on up/ topics.",
        )
        received.add_metric([], stats.received)
        events = CounterMetricFamily(
            "rpfleet_ingest_events",
            "Events in batches this process stored: new, or duplicate deliveries of stored ones.",
            labels=["result"],
        )
        events.add_metric(["new"], stats.events_new)
        events.add_metric(["duplicate"], stats.events_duplicate)
        rejected = CounterMetricFamily(
            "rpfleet_ingest_rejected", "Messages this process refused as invalid (any reason)."
        )
        rejected.add_metric([], stats.rejected)
        commits = CounterMetricFamily(
            "rpfleet_ingest_commits", "Group commits this process made to the store."
        )
        commits.add_metric([], stats.commits)
        out += [received, events, rejected, commits]

    invalid = CounterMetricFamily(
        "rpfleet_invalid_payloads",
        "Invalid payloads refused by any server worker, by reason (fleet-wide, from the store).",
        labels=["reason"],
    )
    for reason, count in sorted(fleet.invalid_payloads.items()):
        invalid.add_metric([reason], count)
    by_state = GaugeMetricFamily(
        "rpfleet_nodes", "Nodes by presence state (fleet-wide).", labels=["state"]
    )
    for state in sorted(set(ALWAYS_SHOWN_STATES) | set(fleet.nodes_by_state)):
        by_state.add_metric([state], fleet.nodes_by_state.get(state, 0))
    backlog = GaugeMetricFamily(
        "rpfleet_outbox_pending_events",
        "Events waiting in node outboxes for an ack, summed over the last health of every"
        " node that is not retired (fleet-wide).",
    )
    backlog.add_metric([], fleet.outbox_pending)
    open_alerts = GaugeMetricFamily(
        "rpfleet_alerts_open", "Open alerts by kind (fleet-wide).", labels=["kind"]
    )
    for kind, count in sorted(fleet.open_alerts.items()):
        open_alerts.add_metric([kind], count)
    return out + [invalid, by_state, backlog, open_alerts]


@dataclass(frozen=True)
class _Scrape:
    """Hands prepared families to `generate_latest`, which only needs ``collect()``."""

    prepared: list[Metric]

    def collect(self) -> Iterable[Metric]:
        return self.prepared


def exposition(metric_families: list[Metric]) -> bytes:
    """The families in Prometheus' text format (CONTENT_TYPE)."""
    return generate_latest(_Scrape(metric_families))  # type: ignore[arg-type]


def scrape(engine: sa.Engine, ingest_stats: Callable[[], Stats] | None) -> bytes:
    """One scrape: this process's ingest counters, then the fleet, rendered.

    The counters are copied first: ingest counts a group only after its commit,
    so the store read afterwards holds at least everything they count (read
    the other way round, a scrape could count messages whose rows it missed).
    """
    counted = dataclasses.replace(ingest_stats()) if ingest_stats else None
    with engine.connect() as conn:
        fleet = read_fleet(conn)
    return exposition(families(counted, fleet))
