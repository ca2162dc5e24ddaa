"""The server's tables (SQLAlchemy Core), as the newest migration leaves them.

Migrations under `fleet_server/migrations/versions/` build exactly this; a
test compares a migrated database with these definitions.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
"""An auto-incrementing key: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite."""

When = sa.DateTime(timezone=True)

# ---- registry -----------------------------------------------------------

regions = sa.Table(
    "regions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
)

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id"), nullable=True),
    sa.Column("address", sa.String(300), nullable=True),
)

counters = sa.Table(
    "counters",
    metadata,
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=True),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=True),
    sa.Column("counter", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False, server_default="unknown"),
    sa.Column("state_at", When, nullable=True),
    sa.Column("last_seen", When, nullable=True),
    sa.Column("agent_version", sa.String(64), nullable=True),
    sa.Column("last_health", sa.JSON, nullable=True),
    sa.Column("last_health_at", When, nullable=True),
)

peripherals = sa.Table(
    "peripherals",
    metadata,
    sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id"), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("updated_at", When, nullable=False),
)

# ---- what nodes send ----------------------------------------------------

events = sa.Table(
    "events",
    metadata,
    sa.Column("pk", BigId, primary_key=True),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("at", When, nullable=False),
    sa.Column("received_at", When, nullable=False),
    sa.Column("clock_synced", sa.Boolean, nullable=True),
    sa.Column("counter", sa.String(64), nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=True),
    sa.Column("scale", sa.SmallInteger, nullable=True),
    sa.Column("suspect", sa.Boolean, nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.UniqueConstraint("node_id", "event_id", name="uq_events_node_event"),
    sa.Index("ix_events_kind_at", "kind", "at"),
)

ingest_errors = sa.Table(
    "ingest_errors",
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(32), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("last_at", When, nullable=False),
    sa.Column("last_detail", sa.Text, nullable=True),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("at", When, nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)

# ---- operations ---------------------------------------------------------

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    # What the alert is about: a node id, "node/peripheral", or a site id.
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("opened_at", When, nullable=False),
    sa.Column("closed_at", When, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("node_id", sa.String(64), nullable=True),
    sa.Column("site_id", sa.String(64), nullable=True),
    sa.Index("ix_alerts_open", "kind", "subject", "closed_at"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", When, nullable=False),
    sa.Column("revoked_at", When, nullable=True),
    # "operator" (read access to the API), or an integration's: "queue", "payment".
    sa.Column("role", sa.String(16), nullable=False, server_default="operator"),
)

api_token_sites = sa.Table(
    "api_token_sites",
    metadata,
    # The sites an integration token serves; operator tokens have none.
    sa.Column("token_id", BigId, sa.ForeignKey("api_tokens.id"), primary_key=True),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), primary_key=True),
)

# ---- announcements and the services they start ---------------------------

announcements = sa.Table(
    "announcements",
    metadata,
    sa.Column("pk", BigId, primary_key=True),
    sa.Column("id", sa.String(128), nullable=False),  # the wire id; the client's if it gave one
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("counter", sa.String(64), nullable=False),
    sa.Column("ticket", sa.String(32), nullable=True),
    sa.Column("amount_vnd", sa.BigInteger, nullable=True),
    sa.Column("request", sa.JSON, nullable=False),  # as asked: a retry must ask the same
    sa.Column("token_name", sa.String(100), nullable=False),
    sa.Column("created_at", When, nullable=False),
    sa.Column("expires_at", When, nullable=False),
    sa.Column("nodes", sa.JSON, nullable=False),  # [{"node", "state", "reason"}] it went to
    sa.UniqueConstraint("site_id", "id", name="uq_announcements_site_id"),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("counter", sa.String(64), nullable=False),
    sa.Column("ticket", sa.String(32), nullable=False),
    sa.Column("officer", sa.String(100), nullable=True),
    sa.Column("service", sa.String(64), nullable=True),  # the wording key of the call
    sa.Column("priority", sa.Boolean, nullable=False),
    sa.Column("called_at", When, nullable=False),
    # The next call at the counter or the timeout, whichever comes first.
    sa.Column("ends_at", When, nullable=False),
    sa.Column("announcement_id", sa.String(128), nullable=False),
    sa.Index("ix_services_place", "site_id", "counter", "called_at"),
)

# ---- identity: enrollment, certificates, handover ------------------------

enrollment_codes = sa.Table(
    "enrollment_codes",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("counter", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", When, nullable=False),
    sa.Column("expires_at", When, nullable=False),
    sa.Column("used_at", When, nullable=True),
    sa.Column("used_from", sa.String(100), nullable=True),
)

node_certificates = sa.Table(
    "node_certificates",
    metadata,
    sa.Column("serial", sa.String(40), primary_key=True),  # hex: up to 159 bits
    sa.Column("node_id", sa.String(64), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("issued_at", When, nullable=False),
    sa.Column("not_after", When, nullable=False),
    sa.Column("how", sa.String(16), nullable=False),  # "enrolled" or "renewed"
    sa.Column("revoked_at", When, nullable=True),
    sa.Column("revoke_reason", sa.String(200), nullable=True),
)

enrollment_failures = sa.Table(
    "enrollment_failures",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("at", When, nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_enrollment_failures_at", "at"),
)

handovers = sa.Table(
    "handovers",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("handover_id", sa.String(32), nullable=False, unique=True),
    sa.Column("node_id", sa.String(64), nullable=False, index=True),
    sa.Column("site_id", sa.String(64), nullable=True),
    sa.Column("technician", sa.String(100), nullable=True),
    sa.Column("started_at", When, nullable=False),
    sa.Column("finished_at", When, nullable=False),
    sa.Column("received_at", When, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("results", sa.JSON, nullable=False),
)

# ---- configuration as desired state --------------------------------------

config_layers = sa.Table(
    "config_layers",
    metadata,
    sa.Column("scope", sa.String(8), primary_key=True),  # fleet, region, site, node
    sa.Column("target", sa.String(64), primary_key=True),  # "-" for the fleet
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("updated_at", When, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
)

node_configs = sa.Table(
    "node_configs",
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("desired", sa.JSON, nullable=False),  # the merged layers, as sent
    sa.Column("version", sa.String(80), nullable=False),  # "sha256:" + hex of its canonical JSON
    sa.Column("issued_at", When, nullable=False),
    sa.Column("reported_version", sa.String(128), nullable=True),  # as the node sent it
    sa.Column("reported_state", sa.String(16), nullable=True),  # "applied" or "rejected"
    sa.Column("reported_reason", sa.Text, nullable=True),
    sa.Column("reported_at", When, nullable=True),
)

config_changes = sa.Table(
    "config_changes",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("at", When, nullable=False),
    sa.Column("token_name", sa.String(100), nullable=False),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),  # "set" or "delete"
    sa.Column("body", sa.JSON, nullable=True),
    sa.Column("nodes", sa.JSON, nullable=False),  # the nodes whose desired config changed
    sa.Index("ix_config_changes_at", "at"),
)

# ---- remote commands: jobs and their audit log ---------------------------

jobs = sa.Table(
    "jobs",
    metadata,
    # One command to one or many nodes; its id is the command id on the wire (32 hex).
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("issuer", sa.String(128), nullable=False),  # the API token's name, or "cli:user@host"
    sa.Column("created_at", When, nullable=False),
    sa.Column("expires_at", When, nullable=False),
    sa.Column("selector", sa.JSON, nullable=False),  # as asked: nodes, site, region or all
    sa.Column("node_count", sa.Integer, nullable=False),
    sa.Index("ix_jobs_created_at", "created_at"),
    sa.Index("ix_jobs_expires_at", "expires_at"),  # the dispatcher looks at unexpired jobs only
)

job_targets = sa.Table(
    "job_targets",
    metadata,
    sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("sent_at", When, nullable=True),  # last published on down/cmd
    sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
    # What came back (NULL: nothing yet): ok, failed, expired or refused.
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("finished_at", When, nullable=True),  # by the node's clock
    sa.Column("received_at", When, nullable=True),
    sa.Index("ix_job_targets_node", "node_id", "job_id"),
    sa.Index("ix_job_targets_outcome", "outcome"),
)

# ---- software releases and their rollouts (fleet_server.rollouts) --------

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("version", sa.String(128), primary_key=True),
    sa.Column("architecture", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),  # as UpdateDesired carries it
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("path", sa.Text, nullable=False),  # where the server keeps the artifact
    sa.Column("download_key", sa.String(32), nullable=False),  # the unguessable part of its URL
    sa.Column("added_at", When, nullable=False),
    sa.Column("added_by", sa.String(128), nullable=False),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("version", sa.String(128), sa.ForeignKey("releases.version"), nullable=False),
    # running, paused, halted, aborted or completed
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("waves", sa.JSON, nullable=False),  # cumulative fractions, the last 1.0
    sa.Column("sites", sa.JSON, nullable=True),  # null: every site
    sa.Column("policy", sa.JSON, nullable=False),  # soak, failure threshold, gate tolerances
    sa.Column("thresholds", sa.JSON, nullable=False),  # the hash bucket each wave ends at
    sa.Column("wave", sa.Integer, nullable=False),  # the wave open now (0-based)
    sa.Column("wave_opened_at", When, nullable=False),
    sa.Column("created_at", When, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("updated_at", When, nullable=False),
    sa.Column("finished_at", When, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),  # why it halted, or who aborted it
    sa.Column("gates", sa.JSON, nullable=True),  # the last evaluation of the open wave
)

rollout_targets = sa.Table(
    "rollout_targets",
    metadata,
    sa.Column("rollout_id", BigId, sa.ForeignKey("rollouts.id"), primary_key=True),
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("from_version", sa.String(128), nullable=True),  # what it ran when it joined
    sa.Column("joined_at", When, nullable=False),
    sa.Column("sent_at", When, nullable=True),  # when its wave gave it the new version
    sa.Column("ready_before", sa.Float, nullable=True),  # share of peripherals ok then
    sa.Column("taps_before", sa.Float, nullable=True),  # taps per open hour before then
)

node_updates = sa.Table(
    "node_updates",
    metadata,
    # The software each node should run (retained on its down/update) and what it reported.
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(128), nullable=True),  # null: no desired update (cleared)
    sa.Column("rollback", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("rollout_id", BigId, nullable=True),
    sa.Column("issued_at", When, nullable=False),
    sa.Column("published_at", When, nullable=True),  # null: not yet published as it is now
    sa.Column("reported_version", sa.String(128), nullable=True),
    sa.Column("reported_state", sa.String(16), nullable=True),
    sa.Column("reported_reason", sa.Text, nullable=True),
    sa.Column("reported_evidence", sa.JSON, nullable=True),
    sa.Column("reported_at", When, nullable=True),  # by the node's clock when it says
    sa.Column("done_at", When, nullable=True),  # the first "done" for reported_version
    sa.Index("ix_node_updates_unpublished", "published_at"),
)
