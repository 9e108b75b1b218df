"""The durable queue of patient digests: one SQLite file (WAL, synchronous=NORMAL) per user, `notify.sqlite`.

synchronous=NORMAL, not the journal's FULL: a write survives Mosaic crashing or being killed, and only
a power cut or OS crash in the seconds after it can lose it, while FULL's fsync, queued behind the
journal's own, cost about 12 ms on every record open (measured by tests/perf/bench_policy_notify). The
access itself is always in the journal, which stays FULL.

Kept apart from the audit journal on purpose: it holds patients' contact details for a few hours,
the journal is evidence kept for years. A digest row collects one patient's accesses for one local
day; it is sealed at its first send attempt (its content never changes after that, so a retry sends
the same message with the same `reference`), and once it is delivered, refused or suppressed its
phone number and email address are blanked. Rows are never deleted: the practice can reconcile the
digest id (the Notify `reference`) against Notify's own records.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from app.core import paths

FILE_NAME = "notify.sqlite"
SCHEMA_VERSION = 1

COLLECTING, SENDING, DELIVERED, SUPPRESSED, REFUSED = "collecting", "sending", "delivered", "suppressed", "refused"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS digest (
    digest_id TEXT PRIMARY KEY,
    nhs_number TEXT NOT NULL,
    day TEXT NOT NULL,
    practice_name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '{COLLECTING}'
        CHECK (status IN ('{COLLECTING}', '{SENDING}', '{DELIVERED}', '{SUPPRESSED}', '{REFUSED}')),
    due_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    phone TEXT,
    email TEXT,
    do_not_notify INTEGER NOT NULL DEFAULT 0,
    restricted INTEGER NOT NULL DEFAULT 0,
    channel TEXT,
    notify_id TEXT,
    outcome_detail TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_digest_collecting ON digest (nhs_number, day) WHERE status = '{COLLECTING}';
CREATE INDEX IF NOT EXISTS ix_digest_due ON digest (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS access (
    id INTEGER PRIMARY KEY,
    digest_id TEXT NOT NULL REFERENCES digest (digest_id),
    entry_id TEXT NOT NULL UNIQUE,
    accessed_at TEXT NOT NULL,
    who TEXT NOT NULL,
    organisation TEXT NOT NULL,
    purpose TEXT
);
CREATE TRIGGER IF NOT EXISTS digest_no_delete BEFORE DELETE ON digest
    BEGIN SELECT RAISE(ABORT, 'digest rows are kept for reconciliation'); END;
"""


def default_path() -> Path:
    return paths.user_data_dir() / FILE_NAME


@dataclass(frozen=True)
class AccessRow:
    accessed_at: datetime
    who: str
    organisation: str
    purpose: str | None


@dataclass(frozen=True)
class Digest:
    digest_id: str
    nhs_number: str
    day: date
    practice_name: str
    status: str
    attempts: int
    phone: str | None
    email: str | None
    do_not_notify: bool
    restricted: bool
    accesses: tuple[AccessRow, ...]


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("times in the notify queue must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="microseconds")  # UTC, fixed width: compares as text


class NotifyQueue:
    """The queue file. Each call opens its own connection, so threads and processes may share it."""

    def __init__(self, path: Path, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        paths.private_file(path)  # user-only (phone numbers), before SQLite makes it or its -wal/-shm
        con = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{path} was written by a newer Mosaic (schema {version}); update Mosaic.")
            con.executescript("BEGIN IMMEDIATE;" + _SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        finally:
            con.close()

    @classmethod
    def open(cls, path: Path | None = None) -> NotifyQueue:
        return cls(path or default_path())

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # see the module note
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    # --- collecting ------------------------------------------------------------------------------------

    def add_access(self, *, entry_id: str, nhs_number: str, day: date, practice_name: str, due_at: datetime,
                   now: datetime, accessed_at: datetime, who: str, organisation: str, purpose: str | None,
                   phone: str | None, email: str | None, do_not_notify: bool, restricted: bool) -> str | None:
        """Add one access to the patient's collecting digest for `day` (made if need be); its digest id.

        None when this entry was queued before (a repeat call is harmless). A do-not-notify or restricted
        access marks the whole digest (sticky for the day) and its contact details are never written.
        """
        with self._tx() as con:
            if con.execute("SELECT 1 FROM access WHERE entry_id = ?", (entry_id,)).fetchone():
                return None
            row = con.execute("SELECT digest_id FROM digest WHERE nhs_number = ? AND day = ? AND status = ?",
                              (nhs_number, day.isoformat(), COLLECTING)).fetchone()
            if row is None:
                digest_id = str(uuid.uuid4())
                con.execute("INSERT INTO digest (digest_id, nhs_number, day, practice_name, due_at, next_attempt_at,"
                            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (digest_id, nhs_number, day.isoformat(), practice_name, _iso(due_at), _iso(due_at),
                             _iso(now)))
            else:
                digest_id = row[0]
            con.execute("UPDATE digest SET do_not_notify = MAX(do_not_notify, ?), restricted = MAX(restricted, ?),"
                        " practice_name = ?, phone = COALESCE(?, phone), email = COALESCE(?, email)"
                        " WHERE digest_id = ?",
                        (int(do_not_notify), int(restricted), practice_name, phone, email, digest_id))
            # a marked digest keeps no contact details at all
            con.execute("UPDATE digest SET phone = NULL, email = NULL WHERE digest_id = ?"
                        " AND (do_not_notify = 1 OR restricted = 1)", (digest_id,))
            con.execute("INSERT INTO access (digest_id, entry_id, accessed_at, who, organisation, purpose)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (digest_id, entry_id, _iso(accessed_at), who, organisation, purpose))
            return digest_id

    # --- sending ---------------------------------------------------------------------------------------

    def due(self, now: datetime, limit: int = 100) -> list[Digest]:
        """Digests whose time has come (sealed: no more accesses join them once returned here)."""
        with self._tx() as con:
            rows = con.execute("SELECT digest_id FROM digest WHERE status IN (?, ?) AND next_attempt_at <= ?"
                               " ORDER BY next_attempt_at, digest_id LIMIT ?",
                               (COLLECTING, SENDING, _iso(now), limit)).fetchall()
            ids = [r[0] for r in rows]
            con.executemany("UPDATE digest SET status = ? WHERE digest_id = ? AND status = ?",
                            [(SENDING, i, COLLECTING) for i in ids])
            return [self._digest(con, i) for i in ids]

    def next_due(self) -> datetime | None:
        with self._tx() as con:
            (value,) = con.execute("SELECT MIN(next_attempt_at) FROM digest WHERE status IN (?, ?)",
                                   (COLLECTING, SENDING)).fetchone()
        return datetime.fromisoformat(value) if value else None

    def get(self, digest_id: str) -> Digest:
        with self._tx() as con:
            return self._digest(con, digest_id)

    def _digest(self, con: sqlite3.Connection, digest_id: str) -> Digest:
        row = con.execute("SELECT digest_id, nhs_number, day, practice_name, status, attempts, phone, email,"
                          " do_not_notify, restricted FROM digest WHERE digest_id = ?", (digest_id,)).fetchone()
        if row is None:
            raise KeyError(digest_id)
        accesses = tuple(AccessRow(datetime.fromisoformat(a), w, o, p) for a, w, o, p in con.execute(
            "SELECT accessed_at, who, organisation, purpose FROM access WHERE digest_id = ?"
            " ORDER BY accessed_at, id", (digest_id,)))
        return Digest(row[0], row[1], date.fromisoformat(row[2]), row[3], row[4], row[5], row[6], row[7],
                      bool(row[8]), bool(row[9]), accesses)

    def finish(self, digest_id: str, status: str, now: datetime, *, detail: str | None = None,
               channel: str | None = None, notify_id: str | None = None) -> None:
        """Delivered, suppressed or refused: for good. The contact details go with it."""
        assert status in (DELIVERED, SUPPRESSED, REFUSED)
        with self._tx() as con:
            con.execute("UPDATE digest SET status = ?, outcome_detail = ?, channel = COALESCE(?, channel),"
                        " notify_id = ?, finished_at = ?, phone = NULL, email = NULL,"
                        " attempts = attempts + (CASE WHEN ? = 'suppressed' THEN 0 ELSE 1 END)"
                        " WHERE digest_id = ?",
                        (status, detail, channel, notify_id, _iso(now), status, digest_id))

    def retry(self, digest_id: str, error: str, when: datetime, channel: str | None = None) -> None:
        with self._tx() as con:
            con.execute("UPDATE digest SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
                        " channel = COALESCE(?, channel) WHERE digest_id = ?",
                        (error[:300], _iso(when), channel, digest_id))

    def counts(self) -> dict[str, int]:
        with self._tx() as con:
            return dict(con.execute("SELECT status, COUNT(*) FROM digest GROUP BY status").fetchall())
