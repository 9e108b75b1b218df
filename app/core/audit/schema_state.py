"""Which schema a journal file is at, read without opening it as a journal (no keyring, no migration, no lock).

For `mosaic doctor`: a journal an upgrade will migrate, one a newer Mosaic wrote (this one refuses it), or one
that is not a journal at all.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.core.audit import migrations

State = Literal["absent", "current", "older", "newer", "unreadable"]


@dataclass(frozen=True)
class JournalSchema:
    path: Path
    state: State
    version: str | None = None
    problem: str = ""  # unreadable: what SQLite said


def journal_schema(path: Path) -> JournalSchema:
    """The schema state of the journal at `path`, read-only (SQLite's mode=ro: nothing is created or changed)."""
    if not path.exists():
        return JournalSchema(path, "absent")
    try:
        con = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=2.0)
        try:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = None
            if migrations.VERSION_TABLE in tables:
                row = con.execute(f"SELECT version_num FROM {migrations.VERSION_TABLE}").fetchone()
                version = str(row[0]) if row else None
        finally:
            con.close()
    except sqlite3.Error as exc:
        return JournalSchema(path, "unreadable", problem=str(exc))
    if version is None:  # an empty file (made before SQLite wrote to it) is a journal not yet begun
        return JournalSchema(path, "absent") if not tables else \
            JournalSchema(path, "unreadable", problem="it holds tables but no Mosaic schema version")
    if version == migrations.HEAD:
        return JournalSchema(path, "current", version)
    if version in migrations.REVISIONS:
        return JournalSchema(path, "older", version)
    return JournalSchema(path, "newer", version)
