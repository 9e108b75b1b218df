"""The journal's tables, as the code queries them. The migrations create them; a test checks both agree.

Times are stored as UTC ISO 8601 text with microseconds (fixed width, so text order is time order);
the JSON columns hold the canonical JSON text that the hash covers (see chain.py).
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TextClause,
    UniqueConstraint,
    text,
)

metadata = MetaData()

#: break-glass, denied, or `"flagged":true` in the canonical (sorted, compact) details JSON: self/family.
#: Callers re-check each entry with model.is_flagged (a nested "flagged" key would match the LIKE too).
FLAGGED_SQL = """action = 'break-glass' OR outcome = 'denied' OR details LIKE '%"flagged":true%'"""
#: what a review is, as the partial index ix_journal_review's WHERE (migration 0006) and the queries that use it say it
REVIEW_SQL = "action = 'review'"


def _escaped(sql: str) -> str:
    """`sql` for text(), which would read ':true' as a bind parameter."""
    return sql.replace(":", "\\:")


journal = Table(
    "journal",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", Text, nullable=False, unique=True),
    Column("recorded_at", Text, nullable=False),
    Column("user_login", Text, nullable=False),
    Column("user_display_name", Text, nullable=False),
    Column("user_role", Text),
    Column("user_ids", Text, nullable=False),
    Column("workstation", Text, nullable=False),
    Column("practice_id", Text),
    Column("practice_ods", Text),
    Column("patient_local_id", Text),
    Column("patient_nhs_number", Text),
    Column("action", Text, nullable=False),
    Column("sections", Text, nullable=False),
    Column("purpose", Text),
    Column("outcome", Text, nullable=False),
    Column("outcome_detail", Text),
    Column("app_version", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Index("ix_journal_user_time", "user_login", "recorded_at"),
    Index("ix_journal_patient_time", "patient_nhs_number", "recorded_at"),
    Index("ix_journal_practice_time", "practice_id", "recorded_at"),
    Index("ix_journal_recorded_at", "recorded_at"),
    Index("ix_journal_flagged", "recorded_at", "seq", sqlite_where=text(_escaped(FLAGGED_SQL))),  # review list
    Index("ix_journal_review", "recorded_at", sqlite_where=text(REVIEW_SQL)),  # reviews of flagged entries (0006)
    sqlite_autoincrement=True,  # keeps a high-water mark of seq, so deleting the newest rows shows
)

#: One row, written when the journal is first keyed (migration 0004): the key itself is in the OS keyring.
chain_key = Table(
    "chain_key",
    metadata,
    Column("journal_id", Text, primary_key=True),
    Column("keyed_from", Integer, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("keyed_at", Text, nullable=False),
)

PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entry_id", Text, ForeignKey("journal.entry_id"), nullable=False),
    Column("destination", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=PENDING),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Text, nullable=False),
    Column("last_error", Text),
    Column("delivered_at", Text),
    Column("created_at", Text, nullable=False),
    #: the destination's display name when the entry was committed (migration 0005; NULL before it)
    Column("label", Text),
    UniqueConstraint("entry_id", "destination", name="uq_outbox_entry_destination"),
    CheckConstraint("status IN ('pending', 'delivered', 'refused')", name="ck_outbox_status"),
    CheckConstraint("destination <> ''", name="ck_outbox_destination"),
    Index("ix_outbox_status_due", "status", "next_attempt_at"),
)


def flagged_clause(_table: Table) -> TextClause:
    """SQL for "flagged for review" over the journal or the central store's table (one table per query).
    Literal text, the same as the partial index's WHERE, so that SQLite answers it from that index."""
    return text(f"({_escaped(FLAGGED_SQL)})")

