"""The locality-wide audit store: every workstation's journal entries in one database.

PostgreSQL is the production target (`postgresql+psycopg://…`); SQLite serves tests and trials.
Workstations only ever INSERT, idempotently (`ON CONFLICT DO NOTHING` on the entry id), so a retried
delivery never makes a second row; packaging/central-audit-postgres.sql sets up roles in which they
cannot UPDATE, DELETE or TRUNCATE. Rows keep the journal's own columns and text forms (see
app.core.audit.chain), so each row's `hash` can be recomputed centrally to show it arrived unaltered.
`received_at` is set by the database, never by the sender.

With each entry goes a signed checkpoint of the sending journal (`audit_checkpoint`: journal id, entry
count, head hash, HMAC under the journal's key), in the same transaction. The workstation may only add
checkpoints, never change them, so they hold against the journal's own user: `mosaic audit verify
--central` (run with an auditor's login) checks the journal on this PC against every one of them, and a
rewritten, cut-short or vanished journal shows.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from app.core.audit.chain import format_time, from_row, to_row
from app.core.audit.keys import Checkpoint
from app.core.audit.model import JournalEntry, is_flagged
from app.core.audit.schema import flagged_clause
from app.core.nhs_number import normalise
from app.core.schema_types import redacted_url

TABLE = "audit_entry"
CHECKPOINT_TABLE = "audit_checkpoint"
#: columns of a checkpoint a workstation sends (everything but received_at)
CHECKPOINT_COLUMNS: tuple[str, ...] = (
    "journal_id", "entry_count", "head_hash", "keyed_from", "mac", "workstation", "user_login",
)
#: the schema packaging/central-audit-postgres.sql creates, used on PostgreSQL unless told otherwise
DEFAULT_PG_SCHEMA = "mosaic_audit"
#: columns a workstation sends (everything but received_at); the SQL file grants INSERT on these only
SENT_COLUMNS: tuple[str, ...] = (
    "entry_id", "seq", "recorded_at", "user_login", "user_display_name", "user_role", "user_ids",
    "workstation", "practice_id", "practice_ods", "patient_local_id", "patient_nhs_number", "action",
    "sections", "purpose", "outcome", "outcome_detail", "app_version", "details", "prev_hash", "hash",
)


class CentralStoreError(Exception):
    """The central store could not be used; the message says why and what to do."""


#: the only sslmode Mosaic accepts for a central store on another machine: TLS, the server's certificate
#: checked against a trusted CA *and* against the host name in the URL. `require` encrypts but accepts any
#: certificate, so whoever sits on the path (or answers for the name) could read and drop audit entries,
#: which carry who looked at which NHS number; `verify-ca` accepts any server the CA ever certified.
REMOTE_SSLMODE = "verify-full"


def _is_local_host(host: str) -> bool:
    """This machine: a loopback address or name, or a Unix-socket folder (libpq: a host starting with /)."""
    if host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PgSetting:
    """Which configured PostgreSQL URL `pg_connect_args` checks, so that its refusal names the right one."""

    store: str      # "central audit store"
    setting: str    # "[audit] central_url"
    carries: str    # why TLS: "audit entries name patients, so Mosaic sends them"


AUDIT_STORE = PgSetting("central audit store", "[audit] central_url",
                        "audit entries name patients, so Mosaic sends them")


def pg_connect_args(url: sa.URL, setting: PgSetting = AUDIT_STORE) -> dict[str, str]:
    """libpq settings Mosaic fixes for a PostgreSQL store (the central audit store's, or `setting`'s), so that
    TLS is required to another machine and nothing outside the configured URL (PGHOSTADDR, PGSSLMODE, PGSERVICE
    in the environment, a service file) can redirect the connection or drop TLS. Raises CentralStoreError for a
    URL that would, naming `setting`.

    The URL must name its server. To any server but this machine, `sslmode` must be verify-full (it is set
    when the URL leaves it out); the CA is libpq's own (`sslrootcert` in the URL, else ~/.postgresql/root.crt).
    """
    where = redacted_url(url.render_as_string(hide_password=True))
    query = {k: (v if isinstance(v, str) else ",".join(v)) for k, v in url.query.items()}
    if "service" in query:
        raise CentralStoreError(f"The {setting.store}'s URL ({where}, {setting.setting}) names a libpq service: "
                                "put the server and sslmode in the URL itself, where Mosaic can check them.")
    hosts = [h for value in (url.host or "", query.get("host", ""), query.get("hostaddr", ""))
             for h in value.split(",") if h]
    if not hosts:
        raise CentralStoreError(f"The {setting.store}'s URL ({where}, {setting.setting}) does not name its server: "
                                "write it as postgresql+psycopg://LOGIN@SERVER/DATABASE.")
    sslmode = query.get("sslmode")
    args = {"hostaddr": query.get("hostaddr", "")}  # "": no PGHOSTADDR from the environment either
    if all(_is_local_host(h) for h in hosts):
        args["sslmode"] = sslmode or "prefer"  # this machine: nothing crosses a network
        return args
    if sslmode not in (None, REMOTE_SSLMODE):
        raise CentralStoreError(
            f"The {setting.store} ({where}) is on another machine and its URL says sslmode={sslmode}: "
            f"{setting.carries} only over TLS with the server's certificate checked against its name. Change the "
            f"URL to sslmode={REMOTE_SSLMODE} (or leave sslmode out) in {setting.setting}, and give this PC the CA "
            "certificate that signed the server's (ask IT).")
    args["sslmode"] = REMOTE_SSLMODE
    return args


def _table(metadata: sa.MetaData) -> sa.Table:
    text, when = sa.Text, sa.DateTime(timezone=True)
    return sa.Table(
        TABLE, metadata,
        sa.Column("entry_id", text, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),  # position in the sending journal
        sa.Column("recorded_at", when, nullable=False),
        sa.Column("user_login", text, nullable=False),
        sa.Column("user_display_name", text, nullable=False),
        sa.Column("user_role", text),
        sa.Column("user_ids", text, nullable=False),  # canonical JSON text, exactly as hashed
        sa.Column("workstation", text, nullable=False),
        sa.Column("practice_id", text),
        sa.Column("practice_ods", text),
        sa.Column("patient_local_id", text),
        sa.Column("patient_nhs_number", text),
        sa.Column("action", text, nullable=False),
        sa.Column("sections", text, nullable=False),
        sa.Column("purpose", text),
        sa.Column("outcome", text, nullable=False),
        sa.Column("outcome_detail", text),
        sa.Column("app_version", text, nullable=False),
        sa.Column("details", text, nullable=False),
        sa.Column("prev_hash", text, nullable=False),
        sa.Column("hash", text, nullable=False),  # the source journal's hash of this entry
        sa.Column("received_at", when, nullable=False, server_default=sa.func.now()),
        sa.Index("audit_entry_user", "user_login", "recorded_at"),
        sa.Index("audit_entry_patient", "patient_nhs_number", "recorded_at"),
        sa.Index("audit_entry_practice", "practice_id", "recorded_at"),
        sa.Index("audit_entry_recorded", "recorded_at"),
    )


def _checkpoint_table(metadata: sa.MetaData) -> sa.Table:
    text = sa.Text
    return sa.Table(
        CHECKPOINT_TABLE, metadata,
        sa.Column("journal_id", text, primary_key=True),  # the sending journal (app.core.audit.keys)
        sa.Column("entry_count", sa.BigInteger, primary_key=True),  # the journal held this many entries...
        sa.Column("head_hash", text, nullable=False),  # ...the newest hashing to this
        sa.Column("keyed_from", sa.BigInteger, nullable=False),  # its first keyed entry
        sa.Column("mac", text, nullable=False),  # HMAC-SHA256 under the journal's key: only its holder can check it
        sa.Column("workstation", text, nullable=False),
        sa.Column("user_login", text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


class CentralStore:
    """One central audit database. Blocking (SQLAlchemy); the outbox calls it from a worker thread."""

    def __init__(self, url: str, *, schema: str | None = None, connect_timeout_s: float = 10.0) -> None:
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise CentralStoreError(f"The central audit store address is not a database URL ({exc}).") from exc
        is_pg = parsed.get_backend_name() == "postgresql"
        connect_args: dict[str, object] = {}
        if is_pg:
            connect_args = {"connect_timeout": max(1, int(connect_timeout_s)), **pg_connect_args(parsed)}
        # hide_parameters: a database error must never carry patient data into a log or a message
        self._engine: Engine = sa.create_engine(parsed, pool_pre_ping=True, hide_parameters=True,
                                                connect_args=connect_args)
        self.schema = schema if schema is not None or not is_pg else DEFAULT_PG_SCHEMA
        self.table = _table(sa.MetaData(schema=self.schema))
        self.checkpoint_table = _checkpoint_table(self.table.metadata)
        self._dialect = postgresql if is_pg else sqlite if parsed.get_backend_name() == "sqlite" else None
        self.where = redacted_url(parsed.render_as_string(hide_password=True))

    def ensure_schema(self) -> None:
        """Create the table and its indexes (admin side: workstations have no CREATE privilege)."""
        with self._engine.begin() as conn:
            if self.schema and self._dialect is postgresql:
                conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            self.table.metadata.create_all(conn)

    def insert(self, entry: JournalEntry, checkpoint: Checkpoint | None = None) -> bool:
        """Store `entry` unless its id is there already, and with it the journal's `checkpoint` at that entry
        (one transaction); True when this call added the entry."""
        values = self._row(entry)
        with self._engine.begin() as conn:
            result = conn.execute(self._insert_ignoring_duplicates(self.table, values))
            if checkpoint is not None:
                row = {"journal_id": checkpoint.journal_id, "entry_count": checkpoint.entry_count,
                       "head_hash": checkpoint.head_hash, "keyed_from": checkpoint.keyed_from, "mac": checkpoint.mac,
                       "workstation": entry.workstation, "user_login": entry.user.login}
                conn.execute(self._insert_ignoring_duplicates(self.checkpoint_table, row))
        return bool(result.rowcount)

    def checkpoints(self, journal_id: str) -> list[Checkpoint]:
        """Every checkpoint of journal `journal_id` here, by entry count (needs SELECT: an auditor's login)."""
        t = self.checkpoint_table
        stmt = sa.select(t.c.journal_id, t.c.entry_count, t.c.head_hash, t.c.keyed_from, t.c.mac) \
            .where(t.c.journal_id == journal_id).order_by(t.c.entry_count)
        try:
            with self._engine.connect() as conn:
                return [Checkpoint(r.journal_id, int(r.entry_count), r.head_hash, int(r.keyed_from), r.mac)
                        for r in conn.execute(stmt)]
        except sa.exc.DBAPIError as exc:  # the driver's first line only: never parameters
            first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CentralStoreError(f"The central audit store's checkpoints could not be read at {self.where} "
                                    f"({first[:200]}). Checking against them needs an auditor's login.") from exc

    def query(self, *, user: str | None = None, patient: str | None = None, practice: str | None = None,
              since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
              newest_first: bool = True, flagged: bool = False) -> list[JournalEntry]:
        """Entries matching every filter given, by time, like Journal.query: `patient` is an NHS number
        (spaces allowed), `since` is inclusive and `until` exclusive, both timezone-aware; `flagged`: only
        accesses flagged for review."""
        if any(t is not None and t.tzinfo is None for t in (since, until)):
            raise ValueError("query times must be timezone-aware")
        t = self.table
        stmt = sa.select(*(t.c[name] for name in SENT_COLUMNS))
        if flagged:
            stmt = stmt.where(flagged_clause(t))
        if user:
            stmt = stmt.where(t.c.user_login == user)
        if patient:
            stmt = stmt.where(t.c.patient_nhs_number == normalise(patient))
        if practice:
            stmt = stmt.where(t.c.practice_id == practice)
        if since:
            stmt = stmt.where(t.c.recorded_at >= since.astimezone(UTC))
        if until:
            stmt = stmt.where(t.c.recorded_at < until.astimezone(UTC))
        order = (t.c.recorded_at, t.c.seq, t.c.entry_id)
        stmt = stmt.order_by(*(c.desc() for c in order) if newest_first else order)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt if limit is None else stmt.limit(limit)).mappings().all()
            entries = [from_row(_journal_row(row)) for row in rows]
            if flagged and limit is not None and len(rows) == limit and not all(map(is_flagged, entries)):
                entries = [from_row(_journal_row(row)) for row in conn.execute(stmt).mappings().all()]
        return [e for e in entries if is_flagged(e)][:limit] if flagged else entries

    def hash_matches(self, entry: JournalEntry, key: bytes | None = None) -> bool:
        """Does `entry` (as read back from here) still hash to the value its journal gave it? A keyed entry
        is checked with its journal's `key` (from that account's keyring); without it, as a Mosaic 0.1 entry."""
        if entry.seq is None or entry.prev_hash is None:
            return False
        return to_row(entry, entry.seq, entry.prev_hash, key)["hash"] == entry.hash

    def insert_problems(self) -> list[str]:
        """Why this login could not deliver entries here, asked without adding any (`mosaic doctor`): a missing
        table, or on PostgreSQL a column of what a workstation sends it may not INSERT (the privilege functions:
        a workstation's role holds column INSERT grants and nothing else). [] when it could. Raises
        CentralStoreError when the store cannot be reached or refuses the login."""
        wanted = ((self.table, SENT_COLUMNS), (self.checkpoint_table, CHECKPOINT_COLUMNS))
        problems: list[str] = []
        try:
            with self._engine.connect() as conn:
                for table, columns in wanted:
                    name = f"{self.schema}.{table.name}" if self.schema else table.name
                    if self._dialect is not postgresql:
                        if not sa.inspect(conn).has_table(table.name, schema=self.schema):
                            problems.append(f"there is no table {name}")
                        continue
                    oid = conn.execute(sa.text(
                        "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
                        "c.relnamespace WHERE n.nspname = :schema AND c.relname = :table"),
                        {"schema": self.schema, "table": table.name}).scalar()
                    if oid is None:
                        problems.append(f"there is no table {name}")
                        continue
                    if not conn.execute(sa.text("SELECT has_schema_privilege(:schema, 'USAGE')"),
                                        {"schema": self.schema}).scalar():
                        problems.append(f"this login may not use the schema {self.schema}")
                        break
                    refused = [c for c in columns if not conn.execute(
                        sa.text("SELECT has_column_privilege(:oid, :column, 'INSERT')"),
                        {"oid": oid, "column": c}).scalar()]
                    if refused:
                        problems.append(f"this login may not add rows to {name} (no INSERT on "
                                        f"{', '.join(refused[:3])}{', …' if len(refused) > 3 else ''})")
        except sa.exc.DBAPIError as exc:  # the driver's first line only: never parameters
            first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CentralStoreError(f"The central audit store could not be reached at {self.where} "
                                    f"({first[:200]}).") from exc
        return problems

    def close(self) -> None:
        self._engine.dispose()

    # --- plumbing --------------------------------------------------------------------------------

    def _row(self, entry: JournalEntry) -> dict[str, object]:
        if entry.seq is None or entry.prev_hash is None or entry.hash is None:
            raise ValueError(f"audit entry {entry.entry_id} has not been journaled (no seq or hash)")
        row = to_row(entry, entry.seq, entry.prev_hash)
        row["hash"] = entry.hash  # the journal's word, not ours: a mismatch must stay visible
        row["recorded_at"] = entry.recorded_at.astimezone(UTC)
        return {name: row[name] for name in SENT_COLUMNS}

    def _insert_ignoring_duplicates(self, table: sa.Table, values: dict[str, object]) -> sa.Insert:
        if self._dialect is None:
            raise CentralStoreError(f"The central audit store must be PostgreSQL (or SQLite for trials); "
                                    f"{self.where} is neither.")
        # No conflict target on purpose: `ON CONFLICT (entry_id)` needs SELECT on entry_id, which the
        # workstation role does not have; the primary key is the table's only unique constraint.
        stmt = self._dialect.insert(table).values(values).on_conflict_do_nothing()
        return stmt.execution_options(preserve_rowcount=True)  # SQLAlchemy 2.1 reports -1 otherwise


def _aware(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _journal_row(row: sa.RowMapping) -> dict[str, object]:
    """A central row in the journal's text forms, for chain.from_row."""
    values = dict(row)
    values["recorded_at"] = format_time(_aware(row["recorded_at"]))
    return values


CENTRAL_SECRET_ID = "central"


def open_central(url: str, *, schema: str | None = None) -> CentralStore:
    """The central store from a configured URL. The URL carries no password (config files and command
    lines are readable by others); it comes from MOSAIC_SECRET_CENTRAL or the keyring (user `central`).
    `schema`: as CentralStore's (tests use a schema of their own)."""
    from app.core.secrets import resolve_secret

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise CentralStoreError(f"The central audit store address is not a database URL ({exc}).") from exc
    if parsed.password:
        raise CentralStoreError("Leave the password out of the central audit store's URL; set "
                                "MOSAIC_SECRET_CENTRAL or run `mosaic credentials set central`.")
    if parsed.get_backend_name() == "postgresql":
        pg_connect_args(parsed)  # a URL Mosaic will not use is refused before any secret is read
    if parsed.username:  # file databases and peer/certificate authentication need no password
        secret = resolve_secret(CENTRAL_SECRET_ID, "The central audit store")
        if secret:
            parsed = parsed.set(password=secret)
    return CentralStore(parsed.render_as_string(hide_password=False), schema=schema)
