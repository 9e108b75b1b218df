"""The name an outbox row's destination had when the entry was committed.

From this revision a practice's outbox rows name its server (`practice:<id>@<server identity>`, see
app/core/audit/destinations.py) and keep the practice's display name here, so `mosaic audit status` can say
"N entries wait for Riverside Surgery (http://… A81001), which is no longer configured on this computer".
Rows queued by an older Mosaic (`practice:<id>`, no server) keep a NULL label and are never delivered
automatically: which server they were meant for was not recorded.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # only when absent: a file whose version row was set back (a rewritten journal) still reaches the checks
    # that refuse it, rather than failing here on a column it already has
    if "label" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbox")}:
        op.add_column("outbox", sa.Column("label", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("the audit journal is never downgraded")
