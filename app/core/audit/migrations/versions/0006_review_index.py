"""A partial index of the reviews (action 'review', app/core/audit/review.py).

The access history and `mosaic audit flagged` look up the reviews of the flagged entries they list; reviews are
few among many entries, so they are read from this index rather than by scanning the journal.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# as app.core.audit.schema.REVIEW_SQL when this revision was written (a migration never changes)
REVIEW_SQL = "action = 'review'"


def upgrade() -> None:
    if "ix_journal_review" not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("journal")}:
        op.create_index("ix_journal_review", "journal", ["recorded_at"], sqlite_where=sa.text(REVIEW_SQL))


def downgrade() -> None:
    raise NotImplementedError("the audit journal is never downgraded")
