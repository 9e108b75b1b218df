"""Journal schema migrations: from nothing, and from the previous revision with entries already in it."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app.core.audit import chain, migrations
from app.core.audit.journal import Journal, JournalError
from app.core.audit.model import Action, AuditUser, JournalEntry
from app.core.audit.schema import metadata

T0 = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)


def entry(minutes: int) -> JournalEntry:
    return JournalEntry(action=Action.READ, user=AuditUser("alice", "Alice"), practice_id="A81001",
                        patient_nhs_number="9434765919", recorded_at=T0 + timedelta(minutes=minutes))


def version(path: Path) -> str:
    con = sqlite3.connect(path)
    (value,) = con.execute("SELECT version_num FROM alembic_version").fetchone()
    con.close()
    return value


def test_head_constant_matches_the_revisions() -> None:
    script = ScriptDirectory.from_config(migrations.config())
    assert script.get_heads() == [migrations.HEAD]
    assert [r.revision for r in script.walk_revisions()] == ["0006", "0005", "0004", "0003", "0002", "0001"]
    assert list(migrations.REVISIONS) == [r.revision for r in reversed(list(script.walk_revisions()))]


def test_from_an_empty_database_to_head_matching_the_code(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal.open(path).close()
    assert version(path) == migrations.HEAD
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        inspector = inspect(conn)
        assert {ix["name"] for ix in inspector.get_indexes("journal")} == {
            "ix_journal_user_time", "ix_journal_patient_time", "ix_journal_practice_time", "ix_journal_recorded_at",
            "ix_journal_flagged", "ix_journal_review"}
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys("outbox")] == ["journal"]
    engine.dispose()


def test_from_the_previous_revision_keeping_entries_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        migrations.upgrade(conn, "0001")
    engine.dispose()
    assert version(path) == "0001"
    old_rows, prev = [], chain.GENESIS  # what a 0001-era Mosaic wrote
    for seq in range(1, 4):
        row = chain.to_row(entry(seq), seq, prev)
        old_rows.append(row)
        prev = row["hash"]
    con = sqlite3.connect(path)
    con.executemany(f"INSERT INTO journal ({', '.join(old_rows[0])}) VALUES ({', '.join('?' * len(old_rows[0]))})",
                    [tuple(r.values()) for r in old_rows])
    con.commit()
    assert con.execute("SELECT name FROM sqlite_master WHERE name = 'outbox'").fetchone() is None
    con.close()

    with Journal.open(path) as journal:
        assert version(path) == migrations.HEAD
        assert [journal.get(r["entry_id"]).hash for r in old_rows] == [r["hash"] for r in old_rows]
        assert journal.verify().ok and journal.verify().checked == 3
        new = journal.append(entry(9), destinations=["central"])
        assert (new.seq, new.prev_hash) == (4, old_rows[-1]["hash"])
        assert [i.entry.entry_id for i in journal.due(datetime.now(UTC))] == [new.entry_id]
        assert journal.verify().checked == 4


def test_two_processes_opening_a_new_journal_at_once_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            with Journal.open(path) as journal:
                journal.append(entry(0))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Journal.open(path) as journal:
        assert journal.verify().checked == 4


def test_a_journal_from_a_newer_mosaic_is_refused_plainly(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal.open(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '0099'")
    con.commit()
    con.close()
    for read_only in (False, True):  # recording, and reading (mosaic audit list, verify, export)
        with pytest.raises(JournalError) as error:
            Journal.open(path, read_only=read_only)
        assert error.value.kind == "newer-schema" and error.value.path == path
        assert str(error.value).startswith(f"Could not open the audit journal {path}: a newer version of Mosaic "
                                           "wrote it (journal schema 0099;")
        assert "Update Mosaic on this computer" in str(error.value)
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("0099",)  # never downgraded
    con.close()
