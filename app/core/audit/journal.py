"""The local audit journal: append-only, hash-chained, durable, with the outbox of upstream deliveries.

One SQLite file (WAL, synchronous=FULL) per user. Every write is one BEGIN IMMEDIATE transaction, so
the window and the CLI (two processes) take turns on the chain head and an entry never lands without
its outbox rows. Each call takes its own pooled connection, so the core's loop thread and a GUI worker
may share one Journal. Nothing here logs entry contents: entry ids, seqs and file names only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from app.core import paths
from app.core.audit import chain, migrations
from app.core.audit.model import JournalEntry, is_flagged
from app.core.audit.schema import DELIVERED, PENDING, REFUSED, flagged_clause, journal, outbox

log = logging.getLogger(__name__)

FILE_NAME = "journal.sqlite"
BATCH = 5000  # rows per fetch or insert batch: bounds memory for verify and bulk appends


def default_path() -> Path:
    return paths.user_data_dir() / FILE_NAME


class JournalError(Exception):
    """The journal could not do what was asked. The message is for the user: what, which file, what next.

    `kind` is one of: disk-full, read-only, locked, io-error, corrupt, cannot-open, newer-schema,
    old-schema, invalid-entry, not-found, closed, other.
    """

    def __init__(self, message: str, *, path: Path, kind: str = "other") -> None:
        super().__init__(message)
        self.path = path
        self.kind = kind


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    first_bad_entry_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    destination: str
    attempts: int
    entry: JournalEntry
    last_error: str | None = None


@dataclass(frozen=True)
class DestinationStatus:
    destination: str
    waiting: int
    refused: int
    oldest_waiting: datetime | None
    last_error: str | None


# --- errors in plain English --------------------------------------------------------------------------

#: (substrings of the driver's message, kind, what happened, what to do)
_CAUSES: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (("database or disk is full", "disk is full", "no space left"), "disk-full",
     "the disk is full", "Free some disk space (or ask IT to), then try again."),
    (("readonly", "read-only", "permission denied"), "read-only",
     "the journal file or its folder is read-only", "Ask IT to give your account write access to {folder}."),
    (("database is locked", "database table is locked", "database is busy"), "locked",
     "another Mosaic window or command kept the journal busy for more than {timeout:g} s",
     "Wait a moment and try again; if it keeps happening, close other Mosaic windows and commands."),
    (("disk i/o error", "input/output error"), "io-error",
     "the disk reported a read or write error",
     "Check that the disk or network drive is available, then try again; if it keeps happening, tell IT."),
    (("file is not a database", "malformed", "corrupt"), "corrupt",
     "the file is damaged or is not a Mosaic audit journal",
     "Do not delete it: it is audit evidence. Tell IT; access cannot be recorded until it is repaired or moved aside."),
    (("unable to open database file", "no such file", "is a directory"), "cannot-open",
     "the file cannot be opened", "Check that {folder} exists and that your account can write to it."),
)


def explain(exc: BaseException, path: Path, doing: str, busy_timeout: float = 0.0) -> JournalError:
    """A JournalError for a driver or OS error. Uses the driver's own message, never SQL parameters."""
    text = str(getattr(exc, "orig", None) or exc)
    low = text.lower()
    folder = path.parent
    for needles, kind, what, todo in _CAUSES:
        if any(needle in low for needle in needles):
            if kind == "cannot-open" and folder.is_dir() and not os.access(folder, os.W_OK):
                return explain(PermissionError("read-only"), path, doing, busy_timeout)
            what, todo = what.format(timeout=busy_timeout), todo.format(folder=folder)
            return JournalError(f"Could not {doing}: {what} ({path}). {todo}", path=path, kind=kind)
    return JournalError(f"Could not {doing} ({path}): {text}", path=path, kind="other")


# --- the engine ---------------------------------------------------------------------------------------

def _ensure_wal(cursor: sqlite3.Cursor, busy_timeout: float) -> None:
    """Put the file in WAL mode (persistent, so only its creator normally has to).

    Switching needs the file to itself, and SQLite may answer "locked" at once rather than wait when
    another process is creating or migrating the same new journal; so check first and retry briefly.
    """
    deadline = time.monotonic() + busy_timeout
    delay = 0.01
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _engine(path: Path, read_only: bool, busy_timeout: float, pragmas: Mapping[str, int | str]) -> Engine:
    """A pooled engine whose connections are in WAL, synchronous=FULL, with foreign keys enforced.

    The driver is left in autocommit and every transaction is begun explicitly (SQLAlchemy's recipe for
    pysqlite), so writes can say BEGIN IMMEDIATE and DDL is transactional.
    """
    def connect() -> sqlite3.Connection:
        target, uri = (path.resolve().as_uri() + "?mode=ro", True) if read_only else (str(path), False)
        return sqlite3.connect(target, uri=uri, timeout=busy_timeout, isolation_level=None, check_same_thread=False)

    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=QueuePool, pool_size=4,
                           max_overflow=8, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not read_only:
            _ensure_wal(cursor, busy_timeout)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        for name, value in pragmas.items():
            cursor.execute(f"PRAGMA {name}={value}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("mosaic_write") else "BEGIN")

    return engine


# --- the journal --------------------------------------------------------------------------------------

@dataclass
class _Queued:
    """An entry waiting in `Journal.append`'s group commit, and how its commit went."""

    fields: dict[str, Any]
    destinations: tuple[str, ...]
    row: dict[str, Any] | None = None
    error: BaseException | None = None


class Journal:
    """The local audit journal. Open with `Journal.open()`; safe to share between threads."""

    def __init__(self, path: Path, engine: Engine, *, read_only: bool, busy_timeout: float) -> None:
        self.path = path
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._engine: Engine | None = engine
        self._writer = engine.execution_options(mosaic_write=True)
        self._write_lock = threading.Lock()  # threads of one process queue here, not in SQLite's busy loop
        self._queue: list[_Queued] = []  # entries waiting for the next group commit (see append)
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()  # held by the thread committing a group

    @classmethod
    def open(cls, path: Path | None = None, *, read_only: bool = False, busy_timeout: float = 5.0,
             pragmas: Mapping[str, int | str] | None = None) -> Journal:
        """Open (creating the folder and file, and migrating the schema to the newest revision).

        `read_only` opens an existing journal for reading and verifying only (e.g. a copy handed to an
        auditor); it must already be at the newest schema. `pragmas` are extra SQLite pragmas set on
        every connection (tests use max_page_count to simulate a full disk).
        """
        path = Path(path) if path is not None else default_path()
        doing = "open the audit journal"
        if read_only and not path.is_file():
            raise JournalError(f"Could not {doing}: there is no journal file at {path}.", path=path, kind="cannot-open")
        if not read_only:
            try:
                paths.private_file(path)  # user-only, before SQLite makes it (or its -wal/-shm) world-readable
            except OSError as exc:
                raise explain(exc, path, doing) from exc
        journal_ = cls(path, _engine(path, read_only, busy_timeout, pragmas or {}), read_only=read_only,
                       busy_timeout=busy_timeout)
        try:
            journal_._prepare()
        except BaseException:
            journal_.close()
            raise
        log.info("audit journal open: %s%s", path, " (read-only)" if read_only else "")
        return journal_

    def _prepare(self) -> None:
        doing = "open the audit journal"
        with self._transaction(doing) as conn:
            version = self._schema_version(conn)
        if version == migrations.HEAD:
            return
        if self.read_only:
            raise JournalError(f"Could not {doing}: it was written by a different version of Mosaic (schema "
                               f"{version or 'none'}, this version reads {migrations.HEAD}) ({self.path}). "
                               "Open it once without read-only to upgrade it.", path=self.path, kind="old-schema")
        try:
            with self._transaction(doing, write=True) as conn:
                migrations.upgrade(conn)
        except JournalError:
            raise
        except Exception as exc:  # Alembic: "Can't locate revision" when a newer Mosaic wrote the file
            if "can't locate revision" in str(exc).lower():
                raise JournalError(f"Could not {doing}: a newer version of Mosaic wrote it ({self.path}). "
                                   "Update Mosaic on this computer.", path=self.path, kind="newer-schema") from exc
            raise explain(exc, self.path, doing, self.busy_timeout) from exc
        log.info("audit journal schema upgraded from %s to %s", version or "nothing", migrations.HEAD)

    @staticmethod
    def _schema_version(conn: Connection) -> str | None:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (migrations.VERSION_TABLE,)).first()
        if exists is None:
            return None
        return conn.exec_driver_sql(f"SELECT version_num FROM {migrations.VERSION_TABLE}").scalar()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}{', read-only' if self.read_only else ''})"

    @contextlib.contextmanager
    def _transaction(self, doing: str, write: bool = False) -> Iterator[Connection]:
        """One transaction on a pooled connection; driver and OS errors come out as JournalError."""
        if self._engine is None:
            raise JournalError(f"Could not {doing}: the journal was closed ({self.path}).", path=self.path,
                               kind="closed")
        lock = self._write_lock if write else contextlib.nullcontext()
        engine = self._writer if write else self._engine
        try:
            with lock, engine.connect() as conn, conn.begin():
                yield conn
        except (DBAPIError, sqlite3.Error, OSError) as exc:
            error = explain(exc, self.path, doing, self.busy_timeout)
            log.warning("audit journal: could not %s (%s): %s", doing, error.kind, self.path)
            raise error from exc

    # --- writing -------------------------------------------------------------------------------------

    def append(self, entry: JournalEntry, destinations: Sequence[str] = ()) -> JournalEntry:
        """Record `entry` and one pending outbox row per destination, in one durable transaction.

        Returns the entry as stored (seq, prev_hash and hash set) only once the commit has returned.
        Raises JournalError, with nothing written, if anything fails.

        Group commit: threads appending at the same moment (a search across twenty practices journals
        twenty entries at once) queue their entries, and whichever thread commits next commits every entry
        queued so far in one transaction, so they share one fsync (~4 ms each, taken in turn, before). If
        that transaction fails, each of its entries is tried again alone, so one bad entry fails only its
        own caller.
        """
        (result,) = self.append_each([(entry, destinations)])
        if isinstance(result, BaseException):
            raise result
        return result

    def append_each(self, items: Sequence[tuple[JournalEntry, Sequence[str]]]) -> list[JournalEntry | BaseException]:
        """`append` for several entries at once (in this order, in as few transactions as the group commit
        allows): for each, the entry as stored or the error (a JournalError) that kept it out. An entry is
        returned only once its commit has returned."""
        mine: list[_Queued] = []
        for entry, destinations in items:
            try:
                mine.append(_Queued(self._fields(entry), tuple(destinations)))
            except JournalError as exc:
                mine.append(_Queued({}, (), error=exc))
        with self._queue_lock:
            self._queue.extend(q for q in mine if q.error is None)
        with self._commit_lock:
            if any(q.row is None and q.error is None for q in mine):
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        return [q.error if q.error is not None else chain.from_row(q.row or {}) for q in mine]

    def _commit(self, batch: list[_Queued]) -> None:
        """Commit `batch` in one transaction; if that fails, each entry alone. Sets each one's row or error."""
        try:
            rows = self._append_rows([(q.fields, q.destinations) for q in batch])
        except BaseException as exc:
            if len(batch) == 1 or not isinstance(exc, (JournalError, ValueError)):
                for q in batch:
                    q.error = exc
                return
            for q in batch:
                self._commit([q])
        else:
            for q, row in zip(batch, rows, strict=True):
                q.row = row

    def _append_rows(self, items: Sequence[tuple[dict[str, Any], tuple[str, ...]]]) -> list[dict[str, Any]]:
        now = chain.format_time(datetime.now(UTC))
        rows: list[dict[str, Any]] = []
        with self._transaction("record the audit entry", write=True) as conn:
            seq, prev_hash = self._head(conn)
            for fields, destinations in items:
                row = chain.seal(fields, seq, prev_hash)
                conn.execute(journal.insert(), row)
                if destinations:
                    conn.execute(outbox.insert(), [_outbox_row(row["entry_id"], d, now) for d in destinations])
                rows.append(row)
                seq, prev_hash = seq + 1, row["hash"]
        return rows

    def append_many(self, entries: Iterable[JournalEntry], destinations: Sequence[str] = ()) -> int:
        """Record many entries in ONE transaction (imports, benchmarks): all or nothing. Returns how many.

        The chain is computed exactly as by `append`; inserts go in batches, so memory stays bounded.
        """
        count = 0
        now = chain.format_time(datetime.now(UTC))
        with self._transaction("record the audit entries", write=True) as conn, _bigger_cache(conn):
            seq, prev_hash = self._head(conn)
            rows: list[dict[str, Any]] = []
            for entry in entries:
                row = chain.seal(self._fields(entry), seq, prev_hash)
                rows.append(row)
                seq, prev_hash = seq + 1, row["hash"]
                if len(rows) >= BATCH:
                    count += self._insert_batch(conn, rows, destinations, now)
                    rows = []
            count += self._insert_batch(conn, rows, destinations, now)
        return count

    def _fields(self, entry: JournalEntry) -> dict[str, Any]:
        try:
            return chain.row_fields(entry)
        except chain.InvalidEntry as exc:
            raise JournalError(f"Could not record the audit entry: {exc} ({self.path}). This is a fault in Mosaic; "
                               "please report it.", path=self.path, kind="invalid-entry") from exc

    @staticmethod
    def _insert_batch(conn: Connection, rows: list[dict[str, Any]], destinations: Sequence[str], now: str) -> int:
        """Plain driver executemany: SQLAlchemy's per-row parameter handling would double a bulk import."""
        if rows:
            conn.exec_driver_sql(_INSERT_JOURNAL, [tuple(r[name] for name in chain.ROW_FIELDS) for r in rows])
            if destinations:
                conn.execute(outbox.insert(), [_outbox_row(r["entry_id"], d, now) for r in rows for d in destinations])
        return len(rows)

    @staticmethod
    def _head(conn: Connection) -> tuple[int, str]:
        """The next seq and the hash to chain from. The next seq is above SQLite's AUTOINCREMENT high-water
        mark, so if the newest rows were ever deleted, the gap stays visible to verify()."""
        last = conn.execute(select(journal.c.seq, journal.c.hash).order_by(journal.c.seq.desc()).limit(1)).first()
        high = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").scalar()
        last_seq, prev_hash = (last.seq, last.hash) if last else (0, chain.GENESIS)
        return max(last_seq, high or 0) + 1, prev_hash

    # --- reading -------------------------------------------------------------------------------------

    def get(self, entry_id: str) -> JournalEntry | None:
        with self._transaction("read the audit journal") as conn:
            row = conn.execute(select(journal).where(journal.c.entry_id == entry_id)).first()
        return chain.from_row(row._mapping) if row else None

    def query(self, user: str | None = None, patient_nhs_number: str | None = None, practice_id: str | None = None,
              since: datetime | None = None, until: datetime | None = None, actions: Sequence[str] | None = None,
              limit: int | None = None, newest_first: bool = True, flagged: bool = False) -> list[JournalEntry]:
        """Entries matching every filter given, by time (then seq). `since` is inclusive, `until` exclusive.
        `flagged`: only accesses flagged for review (break-glass, self/family, denied), chosen in SQL."""
        stmt = select(journal)
        if flagged:
            stmt = stmt.where(flagged_clause(journal))
        if user is not None:
            stmt = stmt.where(journal.c.user_login == user)
        if patient_nhs_number is not None:
            stmt = stmt.where(journal.c.patient_nhs_number == patient_nhs_number)
        if practice_id is not None:
            stmt = stmt.where(journal.c.practice_id == practice_id)
        try:
            if since is not None:
                stmt = stmt.where(journal.c.recorded_at >= chain.format_time(since))
            if until is not None:
                stmt = stmt.where(journal.c.recorded_at < chain.format_time(until))
        except chain.InvalidEntry as exc:
            raise ValueError("query times must be timezone-aware") from exc
        if actions is not None:
            stmt = stmt.where(journal.c.action.in_([str(a) for a in actions]))
        order = (journal.c.recorded_at, journal.c.seq)
        stmt = stmt.order_by(*(c.desc() for c in order) if newest_first else order)
        with self._transaction("read the audit journal") as conn:
            rows = conn.execute(stmt if limit is None else stmt.limit(limit)).all()
            entries = [chain.from_row(r._mapping) for r in rows]
            if flagged and limit is not None and len(rows) == limit and not all(map(is_flagged, entries)):
                # the SQL let a lookalike through: read them all, so that the limit counts what is kept
                entries = [chain.from_row(r._mapping) for r in conn.execute(stmt).all()]
        return [e for e in entries if is_flagged(e)][:limit] if flagged else entries

    def count(self) -> int:
        with self._transaction("read the audit journal") as conn:
            return conn.execute(select(func.count()).select_from(journal)).scalar_one()

    def verify(self) -> VerifyResult:
        """Walk the whole chain in seq order, in batches (constant memory), from one consistent snapshot."""
        columns = ", ".join(chain.ROW_FIELDS)
        checker = chain.ChainChecker()
        problem: chain.Break | None = None
        with self._transaction("check the audit journal") as conn:
            driver = conn.connection.driver_connection  # None only once the pool has invalidated it
            if driver is None:
                raise JournalError(f"Could not check the audit journal: its connection was closed ({self.path}).",
                                   path=self.path, kind="closed")
            cursor = driver.cursor()
            try:
                cursor.execute(f"SELECT {columns} FROM journal ORDER BY seq")
                while problem is None and (batch := cursor.fetchmany(BATCH)):
                    for values in batch:
                        if (problem := checker.feed(values)) is not None:
                            break
            finally:
                cursor.close()
            if problem is None:
                high = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").scalar()
                problem = checker.finish(high)
        if problem is None:
            return VerifyResult(ok=True, checked=checker.checked)
        log.warning("audit journal failed verification at seq %s (entry %s)", problem.seq, problem.entry_id)
        return VerifyResult(ok=False, checked=checker.checked, first_bad_seq=problem.seq,
                            first_bad_entry_id=problem.entry_id, reason=problem.reason)

    # --- the outbox ----------------------------------------------------------------------------------

    def due(self, now: datetime, limit: int = 100, destination: str | None = None) -> list[OutboxItem]:
        """Pending deliveries whose next attempt is due by `now`, soonest first."""
        stmt = (select(outbox.c.id, outbox.c.destination, outbox.c.attempts, outbox.c.last_error, journal)
                .join(journal, journal.c.entry_id == outbox.c.entry_id)
                .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= _time(now))
                .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit))
        if destination is not None:
            stmt = stmt.where(outbox.c.destination == destination)
        return self._items(stmt)

    def refused_items(self) -> list[OutboxItem]:
        """Deliveries a destination refused for good: kept, to show the user and to export."""
        stmt = (select(outbox.c.id, outbox.c.destination, outbox.c.attempts, outbox.c.last_error, journal)
                .join(journal, journal.c.entry_id == outbox.c.entry_id)
                .where(outbox.c.status == REFUSED).order_by(outbox.c.id))
        return self._items(stmt)

    def _items(self, stmt: Any) -> list[OutboxItem]:
        with self._transaction("read the audit outbox") as conn:
            rows = conn.execute(stmt).all()
        return [OutboxItem(id=r.id, destination=r.destination, attempts=r.attempts, last_error=r.last_error,
                           entry=chain.from_row(r._mapping)) for r in rows]

    def mark_delivered(self, item_id: int) -> bool:
        """Delivered (final). A late success of a refused item counts too. False if already delivered."""
        return self._mark(item_id, (PENDING, REFUSED), status=DELIVERED,
                          delivered_at=chain.format_time(datetime.now(UTC)))

    def mark_retry(self, item_id: int, error: str, next_attempt_at: datetime) -> bool:
        """A failed attempt: try again at `next_attempt_at`. False unless the item was pending."""
        return self._mark(item_id, (PENDING,), last_error=error, next_attempt_at=_time(next_attempt_at))

    def mark_refused(self, item_id: int, error: str) -> bool:
        """Refused for good: kept (never dropped) and shown. False unless the item was pending."""
        return self._mark(item_id, (PENDING,), status=REFUSED, last_error=error)

    def _mark(self, item_id: int, from_statuses: tuple[str, ...], **values: Any) -> bool:
        doing = "update the audit outbox"
        with self._transaction(doing, write=True) as conn:
            done = conn.execute(update(outbox).where(outbox.c.id == item_id, outbox.c.status.in_(from_statuses))
                                .values(attempts=outbox.c.attempts + 1, **values)).rowcount
            if not done and conn.execute(select(outbox.c.id).where(outbox.c.id == item_id)).first() is None:
                raise JournalError(f"Could not {doing}: there is no outbox item {item_id} ({self.path}).",
                                   path=self.path, kind="not-found")
        return bool(done)

    def outbox_status(self) -> list[DestinationStatus]:
        """Per destination with anything waiting or refused: counts, the oldest waiting, the latest error."""
        with self._transaction("read the audit outbox") as conn:
            rows = conn.execute(_OUTBOX_STATUS).all()
        return [DestinationStatus(destination, int(n_waiting), int(n_refused),
                                  chain.parse_time(oldest_text) if oldest_text else None, last_error)
                for destination, n_waiting, n_refused, oldest_text, last_error in rows]


def _outbox_status_statement() -> Any:
    """Per destination: waiting, refused, the oldest waiting and the latest error, in ONE statement (the
    sender reads it after every burst of appends; a query per destination cost ~0.2 ms each in Python)."""
    unsent = outbox.c.status.in_((PENDING, REFUSED))
    other = outbox.alias("other")
    last_error = (select(other.c.last_error)
                  .where(other.c.destination == outbox.c.destination, other.c.status.in_((PENDING, REFUSED)),
                         other.c.last_error.is_not(None))
                  .order_by((other.c.status == PENDING).desc(), other.c.next_attempt_at.desc(), other.c.id.desc())
                  .limit(1).scalar_subquery())
    return (select(outbox.c.destination, func.count().filter(outbox.c.status == PENDING),
                   func.count().filter(outbox.c.status == REFUSED),
                   func.min(outbox.c.created_at).filter(outbox.c.status == PENDING), last_error)
            .where(unsent).group_by(outbox.c.destination).order_by(outbox.c.destination))


_OUTBOX_STATUS = _outbox_status_statement()


@contextlib.contextmanager
def _bigger_cache(conn: Connection, kib: int = 64 * 1024) -> Iterator[None]:
    """A larger page cache for one bulk import (index pages stay in memory), then back to what it was."""
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{kib}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


_INSERT_JOURNAL = (f"INSERT INTO journal ({', '.join(chain.ROW_FIELDS)}) "
                   f"VALUES ({', '.join('?' * len(chain.ROW_FIELDS))})")


def _time(moment: datetime) -> str:
    try:
        return chain.format_time(moment)
    except chain.InvalidEntry as exc:
        raise ValueError("outbox times must be timezone-aware") from exc


def _outbox_row(entry_id: str, destination: str, now: str) -> dict[str, Any]:
    return {"entry_id": entry_id, "destination": destination, "status": PENDING, "attempts": 0,
            "next_attempt_at": now, "created_at": now}
