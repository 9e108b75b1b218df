"""The central audit store against the real PostgreSQL (127.0.0.1:5432, database `test`), and SQLite.

Each run gets its own schema and roles, made from packaging/central-audit-postgres.sql exactly as an
administrator would apply it, and removed afterwards. The workstation and auditor connect as login
roles that are members of the file's group roles, so privileges are checked as in production.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.core.audit.central import SENT_COLUMNS, CentralStore
from app.core.audit.journal import Journal
from app.core.audit.model import CENTRAL_DESTINATION, Action, AuditUser, JournalEntry, Outcome
from app.core.audit.outbox import OutboxSender, central_delivery

psycopg = pytest.importorskip("psycopg")

SQL_FILE = Path(__file__).resolve().parents[2] / "packaging" / "central-audit-postgres.sql"
PG = "host=127.0.0.1 port=5432 dbname=test"


def pg_url(user: str) -> str:
    return f"postgresql+psycopg://{user}@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Names:
    schema: str
    owner: str
    workstation: str
    auditor: str
    ws_login: str
    auditor_login: str


def admin() -> psycopg.Connection:
    try:
        return psycopg.connect(f"{PG} user=postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 (database test, user postgres): {exc}")


def statements(sql: str, variables: dict[str, str]) -> list[str]:
    """The file's SQL with psql variables substituted (:"name" -> "value") and psql meta-commands dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith(("\\", "--"))]
    text = re.sub(r':"(\w+)"', lambda m: '"' + variables[m.group(1)].replace('"', '""') + '"', "\n".join(lines))
    return [s.strip() for s in text.split(";") if s.strip()]


@pytest.fixture(scope="module")
def names() -> Iterator[Names]:
    tag = uuid.uuid4().hex[:10]
    n = Names(schema=f"mosaic_audit_t{tag}", owner=f"mosaic_owner_t{tag}", workstation=f"mosaic_ws_t{tag}",
              auditor=f"mosaic_auditor_t{tag}", ws_login=f"ws_login_t{tag}", auditor_login=f"ig_login_t{tag}")
    with admin() as conn:
        variables = {"audit_schema": n.schema, "owner_role": n.owner, "workstation_role": n.workstation,
                     "auditor_role": n.auditor}
        try:
            for statement in statements(SQL_FILE.read_text(encoding="utf-8"), variables):
                conn.execute(statement)
            conn.execute(f'CREATE ROLE "{n.ws_login}" LOGIN IN ROLE "{n.workstation}"')
            conn.execute(f'CREATE ROLE "{n.auditor_login}" LOGIN IN ROLE "{n.auditor}"')
            yield n
        finally:
            conn.execute(f'DROP SCHEMA IF EXISTS "{n.schema}" CASCADE')
            for role in (n.ws_login, n.auditor_login, n.workstation, n.auditor, n.owner):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "journal.sqlite") as j:
        yield j


def entry(n: int = 0, **changes: object) -> JournalEntry:
    values: dict[str, object] = dict(
        action=Action.READ, user=AuditUser("jsmith", "Dr Jane Smith", "GP", {"sds_user_id": "555123456789"}),
        practice_id="riverside", practice_ods="Y01234", patient_local_id=f"p{n}", patient_nhs_number="9434765919",
        sections=("problems",), purpose="TREAT", details={"results": n}, workstation="ws-7", app_version="0.1.0",
        recorded_at=datetime(2026, 3, 12, 9, 0, tzinfo=UTC) + timedelta(minutes=n))
    values.update(changes)
    return JournalEntry(**values)  # type: ignore[arg-type]


# --- the role setup -------------------------------------------------------------------------------------


def test_workstation_inserts_idempotently_and_the_auditor_reads_it_back(names: Names, journal: Journal) -> None:
    stored = journal.append(entry(1))
    workstation = CentralStore(pg_url(names.ws_login), schema=names.schema)
    auditor = CentralStore(pg_url(names.auditor_login), schema=names.schema)
    try:
        assert workstation.insert(stored) is True
        assert workstation.insert(stored) is False  # a retried delivery: still one row
        [back] = auditor.query(user="jsmith")
        assert back == stored  # every journal field, the source seq and hashes included
        assert auditor.hash_matches(back, journal.key)  # keyed: checked with the journal's key
    finally:
        workstation.close()
        auditor.close()
    with admin() as conn:
        count, received = conn.execute(f'SELECT count(*), min(received_at) FROM "{names.schema}".audit_entry '
                                       "WHERE entry_id = %s", (stored.entry_id,)).fetchone()
    assert count == 1 and received is not None


@pytest.mark.parametrize("statement", [
    "UPDATE {t} SET user_login = 'someone-else'",
    "DELETE FROM {t}",
    "TRUNCATE {t}",
    "SELECT * FROM {t}",
    "INSERT INTO {t} (entry_id, seq, recorded_at, user_login, user_display_name, user_ids, workstation, action, "
    "sections, outcome, app_version, details, prev_hash, hash, received_at) VALUES ('x', 1, now(), 'u', 'U', '{{}}', "
    "'w', 'read', '[]', 'success', '', '{{}}', '0', 'h', now() - interval '1 year')",
    "INSERT INTO {t} (entry_id, seq, recorded_at, user_login, user_display_name, user_ids, workstation, action, "
    "sections, outcome, app_version, details, prev_hash, hash) VALUES ('x', 1, now(), 'u', 'U', '{{}}', 'w', 'read', "
    "'[]', 'success', '', '{{}}', '0', 'h') ON CONFLICT (entry_id) DO NOTHING",
    "CREATE TABLE {s}.mine (x int)",
    "ALTER TABLE {t} DISABLE TRIGGER ALL",
], ids=["update", "delete", "truncate", "select", "backdate-received_at", "on-conflict-with-target", "create",
        "alter"])
def test_workstation_role_may_do_nothing_but_insert(names: Names, journal: Journal, statement: str) -> None:
    store = CentralStore(pg_url(names.ws_login), schema=names.schema)
    try:
        store.insert(journal.append(entry(2)))  # a row to (fail to) change
    finally:
        store.close()
    sql = statement.format(t=f'"{names.schema}".audit_entry', s=f'"{names.schema}"')
    with psycopg.connect(f"{PG} user={names.ws_login}", autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql)


def test_auditor_role_reads_but_cannot_write(names: Names) -> None:
    table = f'"{names.schema}".audit_entry'
    with psycopg.connect(f"{PG} user={names.auditor_login}", autocommit=True) as conn:
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        for sql in (f"DELETE FROM {table}", f"UPDATE {table} SET hash = 'x'",
                    f"INSERT INTO {table} (entry_id) VALUES ('x')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)


def test_public_has_no_access(names: Names) -> None:
    stranger = f"stranger_{uuid.uuid4().hex[:10]}"
    with admin() as conn:
        conn.execute(f'CREATE ROLE "{stranger}" LOGIN')
        try:
            with psycopg.connect(f"{PG} user={stranger}", autocommit=True) as other, \
                    pytest.raises(psycopg.errors.InsufficientPrivilege):
                other.execute(f'SELECT count(*) FROM "{names.schema}".audit_entry')
        finally:
            conn.execute(f'DROP ROLE "{stranger}"')


def test_sql_file_table_matches_the_store(names: Names) -> None:
    """The DDL lives in two places (the SQL file, ensure_schema); their columns must agree."""
    engine = sa.create_engine(pg_url("postgres"))
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("audit_entry", schema=names.schema)}
    finally:
        engine.dispose()
    assert columns == {*SENT_COLUMNS, "received_at"}


# --- the store itself -----------------------------------------------------------------------------------


@pytest.fixture
def admin_store() -> Iterator[CentralStore]:
    """A store in its own schema, created by ensure_schema() as the administrator."""
    admin().close()  # skip early when PostgreSQL is not there
    store = CentralStore(pg_url("postgres"), schema=f"mosaic_audit_e{uuid.uuid4().hex[:10]}")
    try:
        store.ensure_schema()
        store.ensure_schema()  # idempotent
        yield store
    finally:
        store.close()
        with admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')


def test_query_filters_on_postgres(admin_store: CentralStore, journal: Journal) -> None:
    check_query_filters(admin_store, journal)


def test_sqlite_store_for_trials(tmp_path: Path, journal: Journal) -> None:
    store = CentralStore(f"sqlite:///{tmp_path / 'central.sqlite'}")
    try:
        store.ensure_schema()
        check_query_filters(store, journal)
    finally:
        store.close()


def check_query_filters(store: CentralStore, journal: Journal) -> None:
    other_user = AuditUser("akhan", "Dr A Khan")
    stored = [journal.append(e) for e in (
        entry(0), entry(1, user=other_user), entry(2, practice_id="hillside", practice_ods="Y05678"),
        entry(3, patient_nhs_number="4010232137", outcome=Outcome.FAILURE, outcome_detail="timed out"),
        entry(4, action=Action.SEARCH, patient_local_id=None, patient_nhs_number=None, sections=()),
    )]
    assert [store.insert(e) for e in stored] == [True] * 5
    assert [store.insert(e) for e in stored] == [False] * 5
    ids = [e.entry_id for e in stored]

    def found(**filters: object) -> list[str]:
        return [e.entry_id for e in store.query(newest_first=False, **filters)]  # type: ignore[arg-type]

    assert found() == ids
    assert [e.entry_id for e in store.query()] == ids[::-1]  # newest first by default, as Journal.query
    assert [e.entry_id for e in store.query(limit=1)] == [ids[-1]]
    assert found(user="akhan") == [ids[1]]
    assert found(patient="943 476 5919") == [ids[0], ids[1], ids[2]]
    assert found(practice="hillside") == [ids[2]]
    start = stored[1].recorded_at
    assert found(since=start, until=stored[3].recorded_at) == [ids[1], ids[2]]
    assert found(limit=2) == ids[:2]
    assert store.query(newest_first=False) == stored
    assert all(store.hash_matches(e, journal.key) for e in store.query())
    with pytest.raises(ValueError, match="timezone-aware"):
        store.query(since=datetime(2026, 1, 1))
    flagged = [journal.append(e) for e in (
        entry(10, action=Action.BREAK_GLASS, details={"flagged": True, "flag": "break-glass"}),
        entry(11, outcome=Outcome.DENIED, details={"flagged": True, "denied": True, "flag": "denied"}),
        entry(12, details={"flagged": True, "flag": "self-or-family", "flags": ["self-or-family"]}),
        entry(13, details={"nested": {"flagged": True}}),  # the SQL LIKE matches; the re-check does not
    )]
    assert all(store.insert(e) for e in flagged)
    assert found(flagged=True) == [e.entry_id for e in flagged[:3]]
    assert [e.entry_id for e in store.query(flagged=True, limit=2)] == [flagged[2].entry_id, flagged[1].entry_id]


def test_insert_needs_a_journaled_entry(tmp_path: Path) -> None:
    store = CentralStore(f"sqlite:///{tmp_path / 'central.sqlite'}")
    try:
        store.ensure_schema()
        with pytest.raises(ValueError, match="not been journaled"):
            store.insert(entry(0))
    finally:
        store.close()


def test_a_changed_entry_no_longer_matches_its_hash(admin_store: CentralStore, journal: Journal) -> None:
    stored = journal.append(entry(5))
    admin_store.insert(stored)
    with admin() as conn:
        conn.execute(f'UPDATE "{admin_store.schema}".audit_entry SET user_login = %s WHERE entry_id = %s',
                     ("someone-else", stored.entry_id))
    [back] = admin_store.query()
    assert not admin_store.hash_matches(back)


# --- end to end: journal -> outbox -> PostgreSQL as the workstation role -----------------------------------


async def test_outbox_delivers_journal_entries_to_postgres_exactly_once(names: Names, journal: Journal) -> None:
    store = CentralStore(pg_url(names.ws_login), schema=names.schema)
    auditor = CentralStore(pg_url(names.auditor_login), schema=names.schema)
    login = f"user-{uuid.uuid4().hex[:8]}"
    appended = [journal.append(entry(n, user=AuditUser(login, "Test User")), [CENTRAL_DESTINATION])
                for n in range(20)]
    done = asyncio.Event()
    sender = OutboxSender(journal, {CENTRAL_DESTINATION: central_delivery(store)},
                          on_status=lambda status: done.set() if not status else None)
    sender.start()
    try:
        await asyncio.wait_for(done.wait(), 20)
    finally:
        await sender.stop()
    try:
        assert [e.entry_id for e in auditor.query(user=login, newest_first=False)] == [e.entry_id for e in appended]
        # a second delivery of everything (as after a crash before marking) adds nothing
        assert not any(store.insert(e) for e in appended)
        assert len(auditor.query(user=login)) == 20
    finally:
        store.close()
        auditor.close()
