"""The outbox: one row per entry and upstream destination, kept until delivered (or refused for good).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entry_id", sa.Text, sa.ForeignKey("journal.entry_id"), nullable=False),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Text, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.UniqueConstraint("entry_id", "destination", name="uq_outbox_entry_destination"),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'refused')", name="ck_outbox_status"),
        sa.CheckConstraint("destination <> ''", name="ck_outbox_destination"),
    )
    op.create_index("ix_outbox_status_due", "outbox", ["status", "next_attempt_at"])
    op.execute("""CREATE TRIGGER outbox_no_delete BEFORE DELETE ON outbox
                  BEGIN SELECT RAISE(ABORT, 'outbox rows are kept: nothing sent upstream is dropped'); END""")


def downgrade() -> None:
    raise NotImplementedError("the audit journal is never downgraded")
