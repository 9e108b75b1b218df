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
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, create_engine, event, func, null, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from app.core import paths
from app.core.audit import chain, keys, migrations
from app.core.audit.model import CENTRAL_DESTINATION, JournalEntry, is_flagged
from app.core.audit.schema import (
    DELIVERED,
    PENDING,
    REFUSED,
    REVIEW_SQL,
    chain_key,
    flagged_clause,
    journal,
    outbox,
)

log = logging.getLogger(__name__)

FILE_NAME = "journal.sqlite"
BATCH = 5000  # rows per fetch or insert batch: bounds memory for verify and bulk appends
#: the keyring's record of the journal takes the latest checkpoint every this many commits and on close (a
#: keyring write is a D-Bus or OS call: too slow for every commit; the checkpoint file takes every one)
RECORD_EVERY = 64


def default_path() -> Path:
    return paths.user_data_dir() / FILE_NAME


class JournalError(Exception):
    """The journal could not do what was asked. The message is for the user: what, which file, what next.

    `kind` is one of: disk-full, read-only, locked, io-error, corrupt, cannot-open, newer-schema,
    old-schema, invalid-entry, not-found, closed, keyring (the OS keyring holding the journal's key cannot be
    reached), no-key (the keyring has no key for this journal), vanished (the keyring records a journal at
    this path that is gone), replaced (the file is not the journal the keyring records here), other.
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
    #: the seq of the first keyed entry (None: a Mosaic 0.1 journal, never keyed)
    keyed_from: int | None = field(default=None, compare=False)
    #: sentences for the reader: how the entries were checked, what the checkpoints said
    notes: tuple[str, ...] = field(default=(), compare=False)
    #: the journal's id (None when never keyed) and its last entry, for checks against the central store
    journal_id: str | None = field(default=None, compare=False)
    last_seq: int = field(default=0, compare=False)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    destination: str
    attempts: int
    entry: JournalEntry
    last_error: str | None = None
    #: the signed checkpoint "the journal held entry.seq entries, the newest being this one", sent upstream
    #: with the entry; None when the journal holds no key (read-only) or the entry no longer matches its hash
    checkpoint: keys.Checkpoint | None = None
    #: False when the entry no longer hashes to its stored hash under the journal's key: never sent
    intact: bool = True


@dataclass(frozen=True)
class DestinationStatus:
    destination: str
    waiting: int
    refused: int
    oldest_waiting: datetime | None
    last_error: str | None
    #: the destination's name when its entries were committed (None: a central store, or an older Mosaic)
    label: str | None = None


# --- errors in plain English --------------------------------------------------------------------------

def newer_schema(path: Path, doing: str, version: str | None) -> JournalError:
    """A journal a newer Mosaic wrote: this one never writes to it (nor downgrades it), and says so."""
    from app import installed_version

    return JournalError(f"Could not {doing} {path}: a newer version of Mosaic wrote it (journal schema "
                        f"{version or 'unknown'}; this Mosaic, {installed_version()}, knows schemas up to "
                        f"{migrations.HEAD}). Its entries are untouched. Update Mosaic on this computer (ask IT).",
                        path=path, kind="newer-schema")


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
        self._key: bytes | None = None  # the chain's key (from the OS keyring); None until keyed, or read-only
        self._latest: keys.Checkpoint | None = None  # the newest checkpoint written beside the journal
        self._recorded = 0  # the entry count of the checkpoint the keyring's record holds (as far as we know)
        self._record_lock = threading.Lock()
        self.journal_id: str | None = None
        self.keyed_from: int | None = None
        self._labelled = True  # the outbox has a label column (migration 0005); set when the schema is read

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
            _refuse_vanished(path, doing)
            try:
                paths.private_file(path)  # user-only, before SQLite makes it (or its -wal/-shm) world-readable
            except OSError as exc:
                raise explain(exc, path, doing) from exc
        journal_ = cls(path, _engine(path, read_only, busy_timeout, pragmas or {}), read_only=read_only,
                       busy_timeout=busy_timeout)
        try:
            journal_._prepare()
            if not read_only:
                journal_._key_chain()
        except BaseException:
            journal_.close()
            raise
        log.info("audit journal open: %s%s", path, " (read-only)" if read_only else "")
        return journal_

    def _prepare(self) -> None:
        doing = "open the audit journal"
        with self._transaction(doing) as conn:
            version = self._schema_version(conn)
        self._labelled = version is not None and version >= migrations.OUTBOX_LABEL
        if version == migrations.HEAD or self.read_only and version in migrations.READABLE:
            return
        if version is not None and version not in migrations.REVISIONS:
            raise newer_schema(self.path, doing, version)
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
                raise newer_schema(self.path, doing, version) from exc
            raise explain(exc, self.path, doing, self.busy_timeout) from exc
        self._labelled = True
        log.info("audit journal schema upgraded from %s to %s", version or "nothing", migrations.HEAD)

    @staticmethod
    def _schema_version(conn: Connection) -> str | None:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (migrations.VERSION_TABLE,)).first()
        if exists is None:
            return None
        return conn.exec_driver_sql(f"SELECT version_num FROM {migrations.VERSION_TABLE}").scalar()

    # --- the key ---------------------------------------------------------------------------------------

    @property
    def key(self) -> bytes | None:
        """The chain's key (None for a read-only journal): for checks an auditor runs in this process."""
        return self._key

    def _key_chain(self) -> None:
        """Load the chain's key from the OS keyring, or key the journal now (first use, or a Mosaic 0.1
        journal): a key in the keyring, the `chain_key` row in the file, the record in the keyring, and a
        first checkpoint. A keyring that cannot be reached stops here: nothing is recorded unkeyed."""
        doing = "open the audit journal"
        beside = keys.checkpoint_path(self.path)
        if beside.is_file():  # one an older Mosaic (or a loose umask) left readable: user-only, like the journal
            try:
                paths.private_file(beside)
            except OSError as exc:
                raise explain(exc, beside, doing) from exc
        try:
            record = keys.load_record(self.path)
            with self._transaction(doing) as conn:
                meta = conn.execute(select(chain_key)).first()
            if meta is None:
                if record is not None:
                    raise JournalError(
                        f"Could not {doing}: this account's keyring records that the journal at this place is "
                        f"journal {record.journal_id}, keyed from entry {record.keyed_from}, but this file has no "
                        f"key record: it was replaced or rewritten ({self.path}). Do not delete it: it is audit "
                        "evidence. Tell your Information Governance lead; nothing can be shown until IT has dealt "
                        "with it.", path=self.path, kind="replaced")
                meta = self._key_new_chain(doing)
            key = keys.load_key(meta.journal_id)
            if key is None:
                raise JournalError(
                    f"Could not {doing}: its key (journal {meta.journal_id}) is not in this account's OS keyring "
                    f"({self.path}). Mosaic records nothing without it, so nothing can be shown. If the keyring was "
                    "reset, ask IT: the journal is audit evidence and must be kept.", path=self.path, kind="no-key")
            if chain.key_id(key) != meta.key_id:
                raise JournalError(
                    f"Could not {doing}: the key in this account's keyring is not this journal's key ({self.path}). "
                    "Tell your Information Governance lead; nothing can be shown until IT has dealt with it.",
                    path=self.path, kind="no-key")
            if record is not None and (record.journal_id != meta.journal_id or record.keyed_from != meta.keyed_from):
                raise JournalError(
                    f"Could not {doing}: this account's keyring records journal {record.journal_id} at this place, but "
                    f"this file is journal {meta.journal_id}: it was swapped ({self.path}). Do not delete either: they "
                    "are audit evidence. Tell your Information Governance lead.", path=self.path, kind="replaced")
            self._key, self.journal_id, self.keyed_from = key, meta.journal_id, meta.keyed_from
            if record is None:  # keyed just now, or a journal IT moved here: the keyring remembers it from now on
                with self._transaction(doing) as conn:
                    seq, head = self._head(conn)
                first = self._make_checkpoint(seq - 1, head)
                keys.save_record(self.path, keys.JournalRecord(meta.journal_id, meta.keyed_from, first))
                self._write_checkpoint(first)
                self._recorded = first.entry_count
            else:
                self._recorded = record.checkpoint.entry_count
        except keys.KeyringUnavailable as exc:
            raise JournalError(f"Could not {doing}: {exc} ({self.path}).", path=self.path, kind="keyring") from exc
        except ValueError as exc:  # the keyring's record is damaged
            raise JournalError(f"Could not {doing}: {exc} ({self.path}). Tell your Information Governance lead.",
                               path=self.path, kind="replaced") from exc

    def _key_new_chain(self, doing: str) -> Any:
        """Make a key and write the `chain_key` row; if another process keyed the journal first, use its."""
        journal_id = str(uuid.uuid4())
        key = keys.new_key(journal_id)
        with self._transaction(doing, write=True) as conn:
            meta = conn.execute(select(chain_key)).first()
            if meta is None:
                seq, _head = self._head(conn)
                conn.execute(chain_key.insert().values(journal_id=journal_id, keyed_from=seq, key_id=chain.key_id(key),
                                                       keyed_at=chain.format_time(datetime.now(UTC))))
                meta = conn.execute(select(chain_key)).one()
                log.info("audit journal keyed from entry %s: %s", seq, self.path)
        if meta.journal_id != journal_id:
            keys.forget_key(journal_id)
        return meta

    def _make_checkpoint(self, entry_count: int, head_hash: str) -> keys.Checkpoint:
        assert self._key is not None and self.journal_id is not None and self.keyed_from is not None
        return keys.Checkpoint.make(self._key, self.journal_id, entry_count, head_hash, self.keyed_from)

    def _write_checkpoint(self, checkpoint: keys.Checkpoint) -> None:
        """After a commit. The entries are durable already: a checkpoint that cannot be written is logged (the
        next commit writes a newer one), never a reason to report the commit as failed."""
        try:
            keys.write_checkpoint(self.path, checkpoint)
        except OSError as exc:
            log.warning("audit journal: could not write the checkpoint beside %s (%s)", self.path,
                        exc.strerror or type(exc).__name__)
        with self._record_lock:
            if self._latest is None or checkpoint.entry_count > self._latest.entry_count:
                self._latest = checkpoint
            due = self._latest.entry_count - self._recorded >= RECORD_EVERY
        if due:
            self._record_latest()

    def _record_latest(self) -> None:
        """Put the newest checkpoint in the keyring's record (out of reach of a rollback of the checkpoint
        file). Logged, not raised, when the keyring fails: the entries are durable already."""
        with self._record_lock:
            latest = self._latest
            if latest is None or latest.entry_count <= self._recorded or self.keyed_from is None:
                return
            self._recorded = latest.entry_count
        try:
            with contextlib.suppress(ValueError):
                current = keys.load_record(self.path)
                if current is not None and current.journal_id == latest.journal_id \
                        and current.checkpoint.entry_count >= latest.entry_count:
                    return  # another process recorded a later one
            keys.save_record(self.path, keys.JournalRecord(latest.journal_id, self.keyed_from, latest))
        except keys.KeyringUnavailable:
            log.warning("audit journal: the keyring's record of %s could not be brought up to date", self.path)

    def close(self) -> None:
        if self._engine is not None and not self.read_only:
            self._record_latest()
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
            waiting: list[dict[str, Any]] = []
            for fields, destinations in items:
                row = chain.seal(fields, seq, prev_hash, self._chain_key())
                waiting.extend(_outbox_row(row["entry_id"], d, now) for d in destinations)
                rows.append(row)
                seq, prev_hash = seq + 1, row["hash"]
            # one statement each for every row of the group commit (twenty practices' entries at once): SQLAlchemy's
            # per-statement work was most of the journal thread's CPU, taken from the core's loop (issue 9)
            if rows:
                conn.execute(journal.insert(), rows)
            if waiting:
                conn.execute(outbox.insert(), waiting)
        if rows:
            self._write_checkpoint(self._make_checkpoint(rows[-1]["seq"], rows[-1]["hash"]))
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
            key = self._chain_key()
            for entry in entries:
                row = chain.seal(self._fields(entry), seq, prev_hash, key)
                rows.append(row)
                seq, prev_hash = seq + 1, row["hash"]
                if len(rows) >= BATCH:
                    count += self._insert_batch(conn, rows, destinations, now)
                    rows = []
            count += self._insert_batch(conn, rows, destinations, now)
        if count:
            self._write_checkpoint(self._make_checkpoint(seq - 1, prev_hash))
        return count

    def _chain_key(self) -> bytes:
        if self._key is None:  # a read-only journal: SQLite would refuse the write anyway
            raise JournalError(f"Could not record the audit entry: the journal was opened read-only ({self.path}).",
                               path=self.path, kind="read-only")
        return self._key

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
              limit: int | None = None, newest_first: bool = True, flagged: bool = False,
              before: tuple[datetime, int] | None = None, entry_ids: Sequence[str] | None = None,
              reviewed: Sequence[str] | None = None) -> list[JournalEntry]:
        """Entries matching every filter given, by time (then seq). `since` is inclusive, `until` exclusive.
        `flagged`: only accesses flagged for review (break-glass, self/family, denied), chosen in SQL.
        `before` (recorded_at, seq): only entries older than that one, newest first (a page after it);
        `entry_ids`: only these entries; `reviewed`: only reviews (Action.REVIEW) of these entry ids."""
        stmt = select(journal)
        if before is not None:
            at = chain.format_time(before[0])
            stmt = stmt.where(or_(journal.c.recorded_at < at,
                                  and_(journal.c.recorded_at == at, journal.c.seq < before[1])))
        if entry_ids is not None:
            stmt = stmt.where(journal.c.entry_id.in_(list(entry_ids)))
        if reviewed is not None:
            stmt = stmt.where(text(REVIEW_SQL),  # literal, as the partial index's WHERE: SQLite reads that index
                              func.json_extract(journal.c.details, "$.reviewed").in_(list(reviewed)))
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
        """Walk the whole chain in seq order, in batches (constant memory), from one consistent snapshot; then
        hold it against the checkpoints kept outside the file (the keyring's record and the checkpoint file).

        Keyed entries are checked with the key from the OS keyring; a Mosaic 0.1 journal's entries before
        `keyed_from` by their plain hashes (said in `notes`)."""
        columns = ", ".join(chain.ROW_FIELDS)
        problem: chain.Break | None = None
        notes: list[str] = []
        with self._transaction("check the audit journal") as conn:
            meta = self._chain_meta(conn)
            key: bytes | None = None
            if meta is not None:
                key, trouble = self._verify_key(meta)
                swapped = self._swapped(meta)
                trouble = swapped or trouble
                if trouble is not None:
                    return VerifyResult(ok=False, checked=0, reason=trouble, keyed_from=meta.keyed_from,
                                        journal_id=meta.journal_id)
            checker = chain.ChainChecker(key, meta.keyed_from if meta is not None else None)
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
                problem = self._against_checkpoints(conn, meta, key, checker.last_seq)
        keyed_from = meta.keyed_from if meta is not None else None
        notes.append(_how_checked(keyed_from, checker.checked))
        journal_id = meta.journal_id if meta is not None else None
        if problem is None:
            return VerifyResult(ok=True, checked=checker.checked, keyed_from=keyed_from, notes=tuple(notes),
                                journal_id=journal_id, last_seq=checker.last_seq)
        log.warning("audit journal failed verification at seq %s (entry %s)", problem.seq, problem.entry_id)
        return VerifyResult(ok=False, checked=checker.checked, first_bad_seq=problem.seq,
                            first_bad_entry_id=problem.entry_id, reason=problem.reason, keyed_from=keyed_from,
                            notes=tuple(notes), journal_id=journal_id, last_seq=checker.last_seq)

    @staticmethod
    def _chain_meta(conn: Connection) -> Any:
        """The `chain_key` row, or None (never keyed; or a Mosaic 0.1 file opened read-only, without the table)."""
        found = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chain_key'").first()
        if found is None:
            return None
        return conn.execute(select(chain_key)).first()

    def _swapped(self, meta: Any) -> str | None:
        """Why this file is not the journal this account's keyring records at its path, if it is not."""
        try:
            record = keys.load_record(self.path)
        except (keys.KeyringUnavailable, ValueError):
            return None  # said by the checks that need the keyring
        if record is not None and record.journal_id != meta.journal_id:
            return (f"this account's keyring records journal {record.journal_id} at this place, but this file is "
                    f"journal {meta.journal_id}: it was swapped")
        return None

    def _verify_key(self, meta: Any) -> tuple[bytes | None, str | None]:
        """The journal's key for checking (this process's, or the keyring's), or why there is none."""
        key = self._key
        if key is None:
            try:
                key = keys.load_key(meta.journal_id)
            except keys.KeyringUnavailable as exc:
                return None, f"its keyed entries cannot be checked: {exc}"
        if key is None:
            return None, (f"its keyed entries cannot be checked: the key of journal {meta.journal_id} is not in this "
                          "account's OS keyring (only the account that recorded them holds it)")
        if chain.key_id(key) != meta.key_id:
            return None, ("the key in this account's keyring is not this journal's key, or the journal's key "
                          "record was changed")
        return key, None

    def _against_checkpoints(self, conn: Connection, meta: Any, key: bytes | None, last_seq: int) -> chain.Break | None:
        """The chain (already intact on its own) against what was recorded outside the file: the keyring's record
        of the journal at this path and the signed checkpoint file. Each may only be behind the journal."""
        try:
            record = keys.load_record(self.path)
        except keys.KeyringUnavailable as exc:
            return chain.Break(None, None, f"its checkpoints cannot be checked: {exc}")
        except ValueError as exc:
            return chain.Break(None, None, str(exc))
        try:
            beside = keys.read_checkpoint(self.path)
        except ValueError as exc:
            return chain.Break(None, None, f"the checkpoint file beside the journal is unusable: {exc}")
        if meta is None:
            if record is not None:
                return chain.Break(None, None, f"this account's keyring records that this journal was keyed from entry "
                                               f"{record.keyed_from}, but the file has no key record: it was replaced "
                                               "or rewritten without its key")
            return None  # a Mosaic 0.1 journal, never keyed: nothing was checkpointed
        if record is not None and (record.journal_id != meta.journal_id or record.keyed_from != meta.keyed_from):
            return chain.Break(None, None, f"this account's keyring records journal {record.journal_id} at this place, "
                                           f"but this file is journal {meta.journal_id}: it was swapped")
        if beside is None and record is not None:
            return chain.Break(None, None, "the checkpoint file beside the journal is missing (deleted, or the journal "
                                           "was put back from an older copy)")
        assert key is not None
        for where, checkpoint in (("the keyring's record", record.checkpoint if record else None),
                                  ("the checkpoint file", beside)):
            if checkpoint is None:
                continue
            if checkpoint.journal_id != meta.journal_id or not checkpoint.signed_by(key) \
                    or checkpoint.keyed_from != meta.keyed_from:
                return chain.Break(None, None, f"{where} of this journal was altered (its signature does not match)")
            trouble = self.checkpoint_trouble(conn, checkpoint, last_seq, where)
            if trouble is not None:
                return trouble
        return None

    @staticmethod
    def checkpoint_trouble(conn: Connection, checkpoint: keys.Checkpoint, last_seq: int,
                           where: str) -> chain.Break | None:
        """Does the journal (intact up to `last_seq`) still hold what `checkpoint` saw?"""
        if checkpoint.entry_count > last_seq:
            return chain.Break(last_seq + 1, None,
                               f"the newest entries were removed: {where} shows the journal held "
                               f"{_entries(checkpoint.entry_count)}, but it now ends at entry {last_seq}")
        if checkpoint.entry_count:
            row = conn.execute(select(journal.c.hash, journal.c.entry_id)
                               .where(journal.c.seq == checkpoint.entry_count)).first()
            if row is None or row.hash != checkpoint.head_hash:
                return chain.Break(checkpoint.entry_count, row.entry_id if row else None,
                                   f"entry {checkpoint.entry_count} is not the entry {where} saw there: the "
                                   "journal was rewritten")
        return None

    def check_checkpoint(self, checkpoint: keys.Checkpoint, last_seq: int, where: str) -> str | None:
        """`checkpoint_trouble` for a checkpoint from elsewhere (the central store), its signature included:
        None when this journal still holds what it saw, else why not."""
        if self._key is None:
            return "this journal's key is not loaded"
        if checkpoint.journal_id != self.journal_id or not checkpoint.signed_by(self._key):
            return f"{where} was not signed with this journal's key"
        with self._transaction("check the audit journal") as conn:
            trouble = self.checkpoint_trouble(conn, checkpoint, last_seq, where)
        return trouble.reason if trouble is not None else None

    def load_key_for_checks(self) -> None:
        """For a read-only journal: load its key and id from the keyring, to check checkpoints from elsewhere.
        Raises JournalError (kind keyring or no-key) when that is not possible."""
        with self._transaction("check the audit journal") as conn:
            meta = self._chain_meta(conn)
        if meta is None:
            return
        key, trouble = self._verify_key(meta)
        if trouble is not None or key is None:
            raise JournalError(f"Could not check the audit journal: {trouble} ({self.path}).", path=self.path,
                               kind="no-key")
        self._key, self.journal_id, self.keyed_from = key, meta.journal_id, meta.keyed_from

    def delivered_upstream_since_keyed(self) -> int:
        """How many keyed entries the central store has acknowledged (each went with a checkpoint)."""
        if self.keyed_from is None:
            return 0
        with self._transaction("read the audit outbox") as conn:
            joined = outbox.join(journal, journal.c.entry_id == outbox.c.entry_id)
            return conn.execute(select(func.count()).select_from(joined)
                                .where(outbox.c.destination == CENTRAL_DESTINATION, outbox.c.status == DELIVERED,
                                       journal.c.seq >= self.keyed_from)).scalar_one()

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
        items = []
        for r in rows:
            entry = chain.from_row(r._mapping)
            checkpoint, intact = self._checkpoint_of(r._mapping)
            items.append(OutboxItem(id=r.id, destination=r.destination, attempts=r.attempts, last_error=r.last_error,
                                    entry=entry, checkpoint=checkpoint, intact=intact))
        return items

    def _checkpoint_of(self, row: Any) -> tuple[keys.Checkpoint | None, bool]:
        """The signed checkpoint at this row, if it still hashes (under the key) to its stored hash."""
        if self._key is None or self.keyed_from is None:
            return None, True
        key = self._key if row["seq"] >= self.keyed_from else None
        if chain.entry_hash(row["prev_hash"], row, key) != row["hash"]:
            return None, False
        return self._make_checkpoint(row["seq"], row["hash"]), True

    def mark_delivered(self, item_id: int) -> bool:
        """Delivered (final). A late success of a refused item counts too. False if already delivered."""
        return self._mark(item_id, (PENDING, REFUSED), status=DELIVERED,
                          delivered_at=chain.format_time(datetime.now(UTC)))

    def mark_retry(self, item_id: int, error: str, next_attempt_at: datetime) -> bool:
        """A failed attempt: try again at `next_attempt_at`. False unless the item was pending."""
        return self._mark(item_id, (PENDING,), last_error=error, next_attempt_at=_time(next_attempt_at))

    def make_due(self, destination: str, now: datetime) -> int:
        """Entries waiting for `destination` are due now (its practice has just signed in: the back-off of
        earlier attempts no longer says anything). Returns how many were moved forward."""
        with self._transaction("update the audit outbox", write=True) as conn:
            return int(conn.execute(update(outbox).where(outbox.c.destination == destination,
                                                         outbox.c.status == PENDING,
                                                         outbox.c.next_attempt_at > _time(now))
                                    .values(next_attempt_at=_time(now))).rowcount)

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
            rows = conn.execute(_OUTBOX_STATUS if self._labelled else _OUTBOX_STATUS_UNLABELLED).all()
        return [DestinationStatus(destination, int(n_waiting), int(n_refused),
                                  chain.parse_time(oldest_text) if oldest_text else None, last_error, label)
                for destination, n_waiting, n_refused, oldest_text, last_error, label in rows]


def _outbox_status_statement(labelled: bool = True) -> Any:
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
                   func.min(outbox.c.created_at).filter(outbox.c.status == PENDING), last_error,
                   func.max(outbox.c.label) if labelled else null())
            .where(unsent).group_by(outbox.c.destination).order_by(outbox.c.destination))


_OUTBOX_STATUS = _outbox_status_statement()
#: a journal before migration 0005, opened read-only: its outbox has no label column
_OUTBOX_STATUS_UNLABELLED = _outbox_status_statement(labelled=False)


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


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _how_checked(keyed_from: int | None, checked: int) -> str:
    if keyed_from is None:
        return (f"This journal has not been keyed yet (it was written by Mosaic 0.1): its {_entries(checked)} were "
                "checked by their plain hashes. Mosaic keys it the next time it records to it.")
    if keyed_from > 1:
        plain = min(checked, keyed_from - 1)
        return (f"Entries 1 to {keyed_from - 1} were recorded before the journal was keyed (Mosaic 0.1) and were "
                f"checked by their plain hashes ({plain} checked), held in place by the first keyed entry; "
                f"entries from "
                f"{keyed_from} on were checked with the journal's key from {keys.key_source()}.")
    return f"Every entry was checked with the journal's key from {keys.key_source()}."



def _refuse_vanished(path: Path, doing: str) -> None:
    """Before a journal is created at `path`: if this account's keyring records one there, it must still be
    there. A journal that vanished is not silently replaced by an empty one."""
    try:
        record = keys.load_record(path)
    except keys.KeyringUnavailable as exc:
        raise JournalError(f"Could not {doing}: {exc} ({path}).", path=path, kind="keyring") from exc
    except ValueError:
        return  # a damaged record: _key_chain says so once the file is open
    if record is None:
        return
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = -1
    except OSError:
        return  # unreadable: opening it says why
    if size <= 0:
        raise JournalError(
            f"Could not {doing}: the audit journal is {'missing' if size < 0 else 'empty'}, but this account's "
            f"keyring records journal {record.journal_id} here, keyed with {_entries(record.checkpoint.entry_count)} "
            f"in it ({path}). "
            "It was deleted, moved or emptied. Put it back from a backup, or tell your Information Governance lead; "
            "Mosaic does not start a new journal in its place, so nothing can be shown until IT has dealt with it.",
            path=path, kind="vanished")


def _time(moment: datetime) -> str:
    try:
        return chain.format_time(moment)
    except chain.InvalidEntry as exc:
        raise ValueError("outbox times must be timezone-aware") from exc


def _outbox_row(entry_id: str, destination: str, now: str) -> dict[str, Any]:
    """`destination` may be a model.Destination: its label (the practice's name then) is kept with the row."""
    return {"entry_id": entry_id, "destination": str(destination), "status": PENDING, "attempts": 0,
            "next_attempt_at": now, "created_at": now, "label": getattr(destination, "label", None)}
