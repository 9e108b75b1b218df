"""Alembic migrations for the journal, run from code on open (no alembic.ini needed).

The caller passes a connection already inside a transaction (BEGIN IMMEDIATE), so two processes
opening the same journal at once migrate one after the other, and a failed migration leaves nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

#: The newest revision; opening a journal already at it skips Alembic altogether (a faster start).
HEAD = "0006"
#: Every revision this Mosaic knows, oldest first: a journal at any other was written by a newer Mosaic (kept
#: equal to the scripts in versions/ by tests/core/test_audit_migrations.py)
REVISIONS = ("0001", "0002", "0003", "0004", "0005", HEAD)
#: Older revisions a read-only open still reads (verify, list, export, status): their journal table is the
#: same; before 0005 the outbox has no `label` column (Journal.outbox_status reads none there); before 0006
#: reviews are found without their index.
READABLE = frozenset({"0003", "0004", "0005", HEAD})
#: The first revision whose outbox rows have a `label`.
OUTBOX_LABEL = "0005"
VERSION_TABLE = "alembic_version"
FOLDER = Path(__file__).resolve().parent


def config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # imported only when a migration runs: a faster start otherwise

    cfg = Config()
    cfg.set_main_option("script_location", str(FOLDER).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the journal at `connection` (inside its transaction) up to `revision`."""
    from alembic import command

    command.upgrade(config(connection), revision)
