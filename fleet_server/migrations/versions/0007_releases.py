"""Software releases, rollouts in waves, and each node's desired update.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("version", sa.String(128), primary_key=True),
        sa.Column("architecture", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("download_key", sa.String(32), nullable=False),
        sa.Column("added_at", When, nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("waves", sa.JSON, nullable=False),
        sa.Column("sites", sa.JSON, nullable=True),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("thresholds", sa.JSON, nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("wave_opened_at", When, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("finished_at", When, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("gates", sa.JSON, nullable=True),
        sa.ForeignKeyConstraint(["version"], ["releases.version"],
                                name="fk_rollouts_version_releases"),
    )
    op.create_table(
        "rollout_targets",
        sa.Column("rollout_id", BigId, primary_key=True),
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("from_version", sa.String(128), nullable=True),
        sa.Column("joined_at", When, nullable=False),
        sa.Column("sent_at", When, nullable=True),
        sa.Column("ready_before", sa.Float, nullable=True),
        sa.Column("taps_before", sa.Float, nullable=True),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"],
                                name="fk_rollout_targets_rollout_id_rollouts"),
    )
    op.create_table(
        "node_updates",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(128), nullable=True),
        sa.Column("rollback", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("rollout_id", BigId, nullable=True),
        sa.Column("issued_at", When, nullable=False),
        sa.Column("published_at", When, nullable=True),
        sa.Column("reported_version", sa.String(128), nullable=True),
        sa.Column("reported_state", sa.String(16), nullable=True),
        sa.Column("reported_reason", sa.Text, nullable=True),
        sa.Column("reported_evidence", sa.JSON, nullable=True),
        sa.Column("reported_at", When, nullable=True),
        sa.Column("done_at", When, nullable=True),
    )
    op.create_index("ix_node_updates_unpublished", "node_updates", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_node_updates_unpublished", "node_updates")
    op.drop_table("node_updates")
    op.drop_table("rollout_targets")
    op.drop_table("rollouts")
    op.drop_table("releases")
