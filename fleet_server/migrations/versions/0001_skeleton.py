"""The walking skeleton: sites, nodes, events, ingest errors, dead letters.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id", name="fk_nodes_site_id_sites"),
                  nullable=True),
        sa.Column("counter", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False, server_default="unknown"),
        sa.Column("state_at", When, nullable=True),
        sa.Column("last_seen", When, nullable=True),
        sa.Column("agent_version", sa.String(64), nullable=True),
        sa.Column("last_health", sa.JSON, nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("pk", BigId, primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("rating", sa.SmallInteger, nullable=True),
        sa.Column("scale", sa.SmallInteger, nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.UniqueConstraint("node_id", "event_id", name="uq_events_node_event"),
    )
    op.create_table(
        "ingest_errors",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("last_at", When, nullable=False),
        sa.Column("last_detail", sa.Text, nullable=True),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", When, nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in ("dead_letters", "ingest_errors", "events", "nodes", "sites"):
        op.drop_table(table)
