"""The append-only journal, its indexes, and the triggers that refuse changes.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64

TRIGGERS = (
    """CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
       BEGIN SELECT RAISE(ABORT, 'audit journal entries cannot be changed'); END""",
    """CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
       BEGIN SELECT RAISE(ABORT, 'audit journal entries cannot be deleted'); END""",
    f"""CREATE TRIGGER journal_append_only BEFORE INSERT ON journal
       WHEN NEW.seq <= COALESCE((SELECT max(seq) FROM journal), 0)
         OR NEW.prev_hash IS NOT COALESCE((SELECT hash FROM journal ORDER BY seq DESC LIMIT 1), '{GENESIS}')
       BEGIN SELECT RAISE(ABORT, 'an audit journal entry must follow the newest entry'); END""",
)


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.Text, nullable=False, unique=True),
        sa.Column("recorded_at", sa.Text, nullable=False),
        sa.Column("user_login", sa.Text, nullable=False),
        sa.Column("user_display_name", sa.Text, nullable=False),
        sa.Column("user_role", sa.Text),
        sa.Column("user_ids", sa.Text, nullable=False),
        sa.Column("workstation", sa.Text, nullable=False),
        sa.Column("practice_id", sa.Text),
        sa.Column("practice_ods", sa.Text),
        sa.Column("patient_local_id", sa.Text),
        sa.Column("patient_nhs_number", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("sections", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("outcome_detail", sa.Text),
        sa.Column("app_version", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_journal_user_time", "journal", ["user_login", "recorded_at"])
    op.create_index("ix_journal_patient_time", "journal", ["patient_nhs_number", "recorded_at"])
    op.create_index("ix_journal_practice_time", "journal", ["practice_id", "recorded_at"])
    op.create_index("ix_journal_recorded_at", "journal", ["recorded_at"])
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    raise NotImplementedError("the audit journal is never downgraded")
