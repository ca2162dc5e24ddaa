"""Remote commands: jobs (one command to many nodes) and each node's outcome, the audit log.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("issuer", sa.String(128), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("expires_at", When, nullable=False),
        sa.Column("selector", sa.JSON, nullable=False),
        sa.Column("node_count", sa.Integer, nullable=False),
    )
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_expires_at", "jobs", ["expires_at"])
    op.create_table(
        "job_targets",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("sent_at", When, nullable=True),
        sa.Column("sends", sa.Integer, nullable=False, server_default="0"),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("finished_at", When, nullable=True),
        sa.Column("received_at", When, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_targets_job_id_jobs"),
    )
    op.create_index("ix_job_targets_node", "job_targets", ["node_id", "job_id"])
    op.create_index("ix_job_targets_outcome", "job_targets", ["outcome"])


def downgrade() -> None:
    op.drop_index("ix_job_targets_outcome", "job_targets")
    op.drop_index("ix_job_targets_node", "job_targets")
    op.drop_table("job_targets")
    op.drop_index("ix_jobs_expires_at", "jobs")
    op.drop_index("ix_jobs_created_at", "jobs")
    op.drop_table("jobs")
