"""The keyed chain: which journal this is and where its keyed entries start (the key itself is never here).

A journal made by Mosaic 0.1 has plain sha256 hashes; when a newer Mosaic first records to it, it makes a
key in the OS keyring and writes one row here: entries before `keyed_from` stay checked as before, the rest
as HMACs under the key. The same facts are kept in the keyring (app.core.audit.keys), so this row cannot be
quietly removed or moved. Like the journal, the row can be neither changed nor deleted.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_key",
        sa.Column("journal_id", sa.Text, primary_key=True),
        sa.Column("keyed_from", sa.Integer, nullable=False),  # the seq of the first keyed entry
        sa.Column("key_id", sa.Text, nullable=False),  # a public name of the key (chain.key_id), not the key
        sa.Column("keyed_at", sa.Text, nullable=False),
    )
    op.execute("""CREATE TRIGGER chain_key_no_update BEFORE UPDATE ON chain_key
                  BEGIN SELECT RAISE(ABORT, 'the audit journal''s key record cannot be changed'); END""")
    op.execute("""CREATE TRIGGER chain_key_no_delete BEFORE DELETE ON chain_key
                  BEGIN SELECT RAISE(ABORT, 'the audit journal''s key record cannot be deleted'); END""")
    op.execute("""CREATE TRIGGER chain_key_only_one BEFORE INSERT ON chain_key
                  WHEN (SELECT count(*) FROM chain_key) > 0
                  BEGIN SELECT RAISE(ABORT, 'the audit journal is keyed once'); END""")


def downgrade() -> None:
    raise NotImplementedError("the audit journal is never downgraded")
