"""Configuration as desired state: layers, each node's desired and reported config, the change log.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "config_layers",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "node_configs",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("desired", sa.JSON, nullable=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("issued_at", When, nullable=False),
        sa.Column("reported_version", sa.String(128), nullable=True),
        sa.Column("reported_state", sa.String(16), nullable=True),
        sa.Column("reported_reason", sa.Text, nullable=True),
        sa.Column("reported_at", When, nullable=True),
    )
    op.create_table(
        "config_changes",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", When, nullable=False),
        sa.Column("token_name", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("body", sa.JSON, nullable=True),
        sa.Column("nodes", sa.JSON, nullable=False),
    )
    op.create_index("ix_config_changes_at", "config_changes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_config_changes_at", "config_changes")
    op.drop_table("config_changes")
    op.drop_table("node_configs")
    op.drop_table("config_layers")
