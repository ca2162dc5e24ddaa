"""Scoped API tokens (role, sites), announcements, and the services queue calls start.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Tokens made before this revision were all read tokens: they become operator tokens.
    with op.batch_alter_table("api_tokens") as api_tokens:
        api_tokens.add_column(
            sa.Column("role", sa.String(16), nullable=False, server_default="operator")
        )
    op.create_table(
        "api_token_sites",
        sa.Column("token_id", BigId,
                  sa.ForeignKey("api_tokens.id", name="fk_api_token_sites_token_id_api_tokens"),
                  primary_key=True),
        sa.Column("site_id", sa.String(64),
                  sa.ForeignKey("sites.id", name="fk_api_token_sites_site_id_sites"),
                  primary_key=True),
    )
    op.create_table(
        "announcements",
        sa.Column("pk", BigId, primary_key=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("counter", sa.String(64), nullable=False),
        sa.Column("ticket", sa.String(32), nullable=True),
        sa.Column("amount_vnd", sa.BigInteger, nullable=True),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("token_name", sa.String(100), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("nodes", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_announcements_site_id_sites"),
        sa.UniqueConstraint("site_id", "id", name="uq_announcements_site_id"),
    )
    op.create_table(
        "services",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("counter", sa.String(64), nullable=False),
        sa.Column("ticket", sa.String(32), nullable=False),
        sa.Column("officer", sa.String(100), nullable=True),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("priority", sa.Boolean, nullable=False),
        sa.Column("called_at", When, nullable=False),
        sa.Column("ends_at", When, nullable=False),
        sa.Column("announcement_id", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_services_site_id_sites"),
    )
    op.create_index("ix_services_place", "services", ["site_id", "counter", "called_at"])


def downgrade() -> None:
    op.drop_index("ix_services_place", "services")
    op.drop_table("services")
    op.drop_table("announcements")
    op.drop_table("api_token_sites")
    with op.batch_alter_table("api_tokens") as api_tokens:
        api_tokens.drop_column("role")
