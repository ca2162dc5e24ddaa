"""Node identity: enrollment codes, issued certificates, failed enrollments, handovers.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enrollment_codes",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("counter", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("used_at", When, nullable=True),
        sa.Column("used_from", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_enrollment_codes_site_id_sites"),
        sa.UniqueConstraint("secret_hash", name="uq_enrollment_codes_secret_hash"),
    )
    op.create_table(
        "node_certificates",
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("issued_at", When, nullable=False),
        sa.Column("not_after", When, nullable=False),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("revoked_at", When, nullable=True),
        sa.Column("revoke_reason", sa.String(200), nullable=True),
    )
    op.create_index("ix_node_certificates_node_id", "node_certificates", ["node_id"])
    op.create_table(
        "enrollment_failures",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", When, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_enrollment_failures_at", "enrollment_failures", ["at"])
    op.create_table(
        "handovers",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("handover_id", sa.String(32), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("technician", sa.String(100), nullable=True),
        sa.Column("started_at", When, nullable=False),
        sa.Column("finished_at", When, nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
        sa.UniqueConstraint("handover_id", name="uq_handovers_handover_id"),
    )
    op.create_index("ix_handovers_node_id", "handovers", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_handovers_node_id", "handovers")
    op.drop_table("handovers")
    op.drop_index("ix_enrollment_failures_at", "enrollment_failures")
    op.drop_table("enrollment_failures")
    op.drop_index("ix_node_certificates_node_id", "node_certificates")
    op.drop_table("node_certificates")
    op.drop_table("enrollment_codes")
