"""A partial index of the accesses flagged for review (break-glass, self/family, denied).

`mosaic audit flagged` and Access history's "Flagged for review only" read it instead of scanning every
entry's details: 830 ms to a few ms on a 1,000,000-entry journal (tests/perf/bench_journal).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# as app.core.audit.schema.FLAGGED_SQL when this revision was written (a migration never changes)
FLAGGED_SQL = """action = 'break-glass' OR outcome = 'denied' OR details LIKE '%"flagged":true%'"""


def upgrade() -> None:
    where = sa.text(FLAGGED_SQL.replace(":", "\\:"))  # text() would read ':true' as a bind parameter
    op.create_index("ix_journal_flagged", "journal", ["recorded_at", "seq"], sqlite_where=where)


def downgrade() -> None:
    raise NotImplementedError("the audit journal is never downgraded")
