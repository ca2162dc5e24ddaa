"""Registry (regions, counters, peripherals), event columns for reports, alerts, API tokens.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    with op.batch_alter_table("sites") as sites:
        sites.add_column(sa.Column("region_id", sa.String(64), nullable=True))
        sites.add_column(sa.Column("address", sa.String(300), nullable=True))
        sites.create_foreign_key("fk_sites_region_id_regions", "regions", ["region_id"], ["id"])
    op.create_table(
        "counters",
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id", name="fk_counters_site_id_sites"),
                  primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
    )
    with op.batch_alter_table("nodes") as nodes:
        nodes.add_column(sa.Column("last_health_at", When, nullable=True))
    op.create_table(
        "peripherals",
        sa.Column("node_id", sa.String(64),
                  sa.ForeignKey("nodes.id", name="fk_peripherals_node_id_nodes"), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("updated_at", When, nullable=False),
    )
    with op.batch_alter_table("events") as events:
        events.add_column(sa.Column("clock_synced", sa.Boolean, nullable=True))
        events.add_column(sa.Column("counter", sa.String(64), nullable=True))
        events.add_column(sa.Column("suspect", sa.Boolean, nullable=True))
        events.create_index("ix_events_kind_at", ["kind", "at"])
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("opened_at", When, nullable=False),
        sa.Column("closed_at", When, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("node_id", sa.String(64), nullable=True),
        sa.Column("site_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_alerts_open", "alerts", ["kind", "subject", "closed_at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("revoked_at", When, nullable=True),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_alerts_open", "alerts")
    op.drop_table("alerts")
    with op.batch_alter_table("events") as events:
        events.drop_index("ix_events_kind_at")
        for column in ("suspect", "counter", "clock_synced"):
            events.drop_column(column)
    op.drop_table("peripherals")
    with op.batch_alter_table("nodes") as nodes:
        nodes.drop_column("last_health_at")
    op.drop_table("counters")
    with op.batch_alter_table("sites") as sites:
        sites.drop_constraint("fk_sites_region_id_regions", type_="foreignkey")
        sites.drop_column("address")
        sites.drop_column("region_id")
    op.drop_table("regions")
