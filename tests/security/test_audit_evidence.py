"""Issue 10, class 12 — evidence that holds: `mosaic audit verify` catches a rewritten journal that was
re-hashed, the newest entries cut off with the sequence lowered, and a journal that vanished; `--central`
catches what only the upstream checkpoints can show; a Mosaic 0.1 journal keeps verifying; and no keyring
means no journaling, never an unkeyed chain.

The attacker here has the journal file (as its own user does) and tools: sqlite3, hashlib. Where a test
says so, the attacker also has the key (its user can read their own keyring): then only the central
store's checkpoints, which the workstation can add to but never change, still tell.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import pytest

from app.cli import main
from app.core.audit import chain, keys, migrations
from app.core.audit.central import CentralStore
from app.core.audit.journal import Journal, JournalError, default_path
from app.core.audit.model import CENTRAL_DESTINATION, Action, AuditUser, JournalEntry
from app.core.audit.outbox import OutboxSender, central_delivery
from tests.core.test_secrets import LockedKeyring, MemoryKeyring

T0 = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
USER = AuditUser("jsmith", "Dr Jane Smith", "GP")


def entry(n: int, nhs: str = "9434765919") -> JournalEntry:
    return JournalEntry(action=Action.READ, user=USER, practice_id="riverside", practice_ods="Y01234",
                        patient_local_id=f"p{n}", patient_nhs_number=nhs, sections=("problems",),
                        recorded_at=T0 + timedelta(minutes=n), app_version="0.2.0", workstation="ws-7")


def fill(count: int, path: Path | None = None, destinations: tuple[str, ...] = ()) -> Path:
    """A journal with `count` entries, recorded as Mosaic records them; closed afterwards."""
    path = path or default_path()
    with Journal.open(path) as journal:
        for n in range(count):
            journal.append(entry(n), destinations)
    return path


def verify_cli(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def rows(path: Path) -> list[dict[str, object]]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    found = [dict(r) for r in con.execute("SELECT * FROM journal ORDER BY seq")]
    con.close()
    return found


def rewrite(path: Path, change: dict[str, object], at_seq: int, key: bytes | None = None) -> None:
    """Change entry `at_seq` and re-hash it and every later entry, as an attacker with the file would
    (plain sha256, the 0.1 formula — or HMAC when the attacker also has the key), triggers dropped first."""
    con = sqlite3.connect(path, isolation_level=None)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    prev = chain.GENESIS
    for row in rows(path):
        if row["seq"] == at_seq:
            row.update(change)
        if row["seq"] >= at_seq:
            fields = {k: v for k, v in row.items() if k in chain.HASHED_FIELDS}
            text = json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True,
                              separators=(",", ":"), ensure_ascii=False)
            new_hash = hashlib.sha256((prev + text).encode()).hexdigest() if key is None else \
                chain.entry_hash(prev, fields, key)
            con.execute("UPDATE journal SET prev_hash = ?, hash = ?, patient_nhs_number = ? WHERE seq = ?",
                        (prev, new_hash, row["patient_nhs_number"], row["seq"]))
            row["hash"] = new_hash
        prev = str(row["hash"])
    con.close()


def cut_newest(path: Path, keep: int) -> None:
    """Delete every entry after `keep` and lower SQLite's sequence to match, so no gap shows in the file."""
    con = sqlite3.connect(path, isolation_level=None)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("DELETE FROM outbox WHERE entry_id IN (SELECT entry_id FROM journal WHERE seq > ?)", (keep,))
    con.execute("DELETE FROM journal WHERE seq > ?", (keep,))
    con.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'journal'", (keep,))
    con.close()


def remove_journal(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", keys.CHECKPOINT_SUFFIX):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


# --- rewrite and re-hash ----------------------------------------------------------------------------------

def test_a_rewritten_and_rehashed_journal_fails_verify(memory_keyring: MemoryKeyring,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = fill(6)
    assert verify_cli(capsys)[0] == 0
    rewrite(path, {"patient_nhs_number": "9000000009"}, at_seq=3)  # someone else's patient, chain re-hashed
    code, out = verify_cli(capsys)
    assert code == 1 and "BROKEN at entry 3" in out and "changed after it was recorded" in out


def test_a_journal_rewritten_as_a_never_keyed_one_fails_verify(memory_keyring: MemoryKeyring,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Re-hashed from the start with the 0.1 formula and its key record dropped: the keyring still knows."""
    path = fill(4)
    rewrite(path, {"patient_nhs_number": "9000000009"}, at_seq=1)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("DROP TABLE chain_key")
    con.execute("UPDATE alembic_version SET version_num = '0003'")
    con.close()
    code, out = verify_cli(capsys)
    assert code == 1 and "no key record" in out
    with pytest.raises(JournalError) as refused:  # and Mosaic does not carry on recording to it
        Journal.open(path)
    assert refused.value.kind == "replaced"


# --- truncation -------------------------------------------------------------------------------------------

def test_the_newest_entries_cut_off_with_the_sequence_lowered_fail_verify(
        memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]) -> None:
    path = fill(8)
    cut_newest(path, keep=5)
    code, out = verify_cli(capsys)
    assert code == 1 and "newest entries were removed" in out and "held 8 entries" in out and "entry 5" in out


def test_truncation_with_the_checkpoint_file_deleted_or_rolled_back_fails_verify(
        memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]) -> None:
    path = fill(3)
    older = keys.checkpoint_path(path).read_bytes()  # the attacker keeps a copy of an early checkpoint
    with Journal.open(path) as journal:  # a later session records more
        for n in range(3, 9):
            journal.append(entry(n))
    cut_newest(path, keep=3)
    keys.checkpoint_path(path).unlink()
    code, out = verify_cli(capsys)
    assert code == 1 and "checkpoint file beside the journal is missing" in out
    keys.checkpoint_path(path).write_bytes(older)  # rolled back to match the cut journal
    code, out = verify_cli(capsys)
    assert code == 1 and "newest entries were removed" in out and "keyring's record" in out


# --- a vanished journal -----------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["deleted", "emptied", "replaced-by-a-new-one"])
def test_a_vanished_journal_fails_verify_and_is_not_silently_replaced(
        memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str], how: str) -> None:
    path = fill(3)
    remove_journal(path)
    if how == "emptied":
        path.write_bytes(b"")
    code, out = verify_cli(capsys)
    if how == "replaced-by-a-new-one":  # made elsewhere (another keyring) and copied in
        other = MemoryKeyring()
        keyring.set_keyring(other)
        fill(1, path)
        keyring.set_keyring(memory_keyring)
        code, out = verify_cli(capsys)
        assert code == 1 and "swapped" in out
        return
    assert code == 1 and f"AUDIT JOURNAL {'MISSING' if how == 'deleted' else 'EMPTY'}" in out
    assert "nothing to verify" not in out
    with pytest.raises(JournalError) as refused:  # the window or a command would not start a fresh one
        Journal.open(path)
    assert refused.value.kind == "vanished" and "Mosaic does not start a new journal" in str(refused.value)


# --- the central store's checkpoints -----------------------------------------------------------------------

psycopg = pytest.importorskip("psycopg")
PG = "host=127.0.0.1 port=5432 dbname=test"
SQL_FILE = Path(__file__).resolve().parents[2] / "packaging" / "central-audit-postgres.sql"


@pytest.fixture
def central(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, str]]:
    """The SQL file applied in a schema of its own: (workstation URL, auditor URL, schema). `mosaic audit
    verify --central` (run in this process) is pointed at that schema."""
    from tests.core.test_audit_central import statements

    try:
        admin = psycopg.connect(f"{PG} user=postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 (database test, user postgres): {exc}")
    tag = uuid.uuid4().hex[:10]
    schema, owner, ws, auditor = (f"mosaic_audit_v{tag}", f"own_v{tag}", f"ws_v{tag}", f"aud_v{tag}")
    ws_login, auditor_login = f"wsl_v{tag}", f"igl_v{tag}"
    variables = {"audit_schema": schema, "owner_role": owner, "workstation_role": ws, "auditor_role": auditor}
    try:
        for statement in statements(SQL_FILE.read_text(encoding="utf-8"), variables):
            admin.execute(statement)
        admin.execute(f'CREATE ROLE "{ws_login}" LOGIN IN ROLE "{ws}"')
        admin.execute(f'CREATE ROLE "{auditor_login}" LOGIN IN ROLE "{auditor}"')
        monkeypatch.setattr("app.core.audit.central.DEFAULT_PG_SCHEMA", schema)
        url = "postgresql+psycopg://{}@127.0.0.1:5432/test"
        yield url.format(ws_login), url.format(auditor_login), schema
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for role in (ws_login, auditor_login, ws, auditor, owner):
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def deliver_all(path: Path, workstation_url: str, schema: str) -> None:
    """The outbox sender, as the window runs it, until nothing waits for the central store."""
    async def run() -> None:
        store = CentralStore(workstation_url, schema=schema)
        with Journal.open(path) as journal:
            done = asyncio.Event()
            sender = OutboxSender(journal, {CENTRAL_DESTINATION: central_delivery(store)},
                                  on_status=lambda status: done.set() if not status else None)
            sender.start()
            try:
                await asyncio.wait_for(done.wait(), 30)
            finally:
                await sender.stop()
                store.close()

    asyncio.run(run())


def test_central_checkpoints_catch_a_rewrite_and_a_cut_made_with_the_key(
        memory_keyring: MemoryKeyring, central: tuple[str, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The journal's own user can read the key from their keyring: rewrite, re-key, re-sign the checkpoints
    outside the file. Verify on the PC then passes; against the central store it does not."""
    workstation_url, auditor_url, schema = central
    path = fill(6, destinations=(CENTRAL_DESTINATION,))
    deliver_all(path, workstation_url, schema)
    with _auditor(auditor_url, schema) as store, Journal.open(path) as journal:
        assert [c.entry_count for c in store.checkpoints(journal.journal_id or "")] == [1, 2, 3, 4, 5, 6]
    assert verify_cli(capsys, "--central", auditor_url)[0] == 0

    with Journal.open(path) as journal:
        key, journal_id, keyed_from = journal.key, journal.journal_id, journal.keyed_from
    assert key is not None and journal_id is not None and keyed_from is not None
    rewrite(path, {"patient_nhs_number": "9000000009"}, at_seq=4, key=key)
    head = rows(path)[-1]
    forged = keys.Checkpoint.make(key, journal_id, 6, str(head["hash"]), keyed_from)
    keys.checkpoint_path(path).unlink()
    keys.write_checkpoint(path, forged)
    keys.save_record(path, keys.JournalRecord(journal_id, keyed_from, forged))
    code, out = verify_cli(capsys)
    assert code == 0, out  # nothing on this PC can tell any more
    code, out = verify_cli(capsys, "--central", auditor_url)
    assert code == 1 and "DOES NOT MATCH THE CENTRAL STORE" in out and "entry 4" in out and "rewritten" in out

    cut_newest(path, keep=3)  # and now cut short too, re-signing the checkpoints at 3
    third = keys.Checkpoint.make(key, journal_id, 3, str(rows(path)[-1]["hash"]), keyed_from)
    keys.checkpoint_path(path).unlink()
    keys.write_checkpoint(path, third)
    keys.save_record(path, keys.JournalRecord(journal_id, keyed_from, third))
    assert verify_cli(capsys)[0] == 0
    code, out = verify_cli(capsys, "--central", auditor_url)
    assert code == 1 and "newest entries were removed" in out


def _auditor(url: str, schema: str) -> _Closing:
    return _Closing(CentralStore(url, schema=schema))


class _Closing:
    def __init__(self, store: CentralStore) -> None:
        self.store = store

    def __enter__(self) -> CentralStore:
        return self.store

    def __exit__(self, *_exc: object) -> None:
        self.store.close()


def test_central_checkpoints_cannot_be_changed_by_the_workstation(central: tuple[str, str, str]) -> None:
    workstation_url, _auditor_url, schema = central
    login = workstation_url.split("://", 1)[1].split("@", 1)[0]
    table = f'"{schema}".audit_checkpoint'
    with psycopg.connect(f"{PG} user={login}", autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (journal_id, entry_count, head_hash, keyed_from, mac, workstation, "
                     "user_login) VALUES ('j', 1, 'h', 1, 'm', 'w', 'u')")
        for sql in (f"UPDATE {table} SET head_hash = 'x'", f"DELETE FROM {table}", f"TRUNCATE {table}",
                    f"SELECT * FROM {table}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)


# --- a Mosaic 0.1 journal ---------------------------------------------------------------------------------

def old_journal(path: Path, count: int) -> list[dict[str, object]]:
    """A journal as Mosaic 0.1 left it: schema 0003, plain sha256 chain, no key anywhere."""
    from sqlalchemy import create_engine

    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        migrations.upgrade(conn, "0003")
    engine.dispose()
    made, prev = [], chain.GENESIS
    for n in range(count):
        row = chain.to_row(entry(n), n + 1, prev)
        made.append(row)
        prev = str(row["hash"])
    con = sqlite3.connect(path)
    con.executemany(f"INSERT INTO journal ({', '.join(made[0])}) VALUES ({', '.join('?' * len(made[0]))})",
                    [tuple(r.values()) for r in made])
    con.commit()
    con.close()
    return made


def test_an_unkeyed_journal_from_0_1_keeps_verifying_and_is_keyed_from_then_on(
        memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]) -> None:
    path = default_path()
    old = old_journal(path, 4)
    code, out = verify_cli(capsys)  # read-only, before any upgrade
    assert code == 0 and "4 entries verified" in out and "not been keyed yet" in out

    with Journal.open(path) as journal:  # the first 0.2 session: keyed from entry 5
        new = journal.append(entry(10))
        key = journal.key
    assert key is not None and (new.seq, new.prev_hash) == (5, old[-1]["hash"])
    stored = rows(path)[4]
    assert stored["hash"] == chain.entry_hash(str(new.prev_hash), stored, key)  # keyed: an HMAC under the key
    assert stored["hash"] != chain.entry_hash(str(new.prev_hash), stored)  # not the plain hash any more
    code, out = verify_cli(capsys)
    assert code == 0 and "5 entries verified" in out
    assert "Entries 1 to 4 were recorded before the journal was keyed" in out and "from 5 on" in out

    rewrite(path, {"patient_nhs_number": "9000000009"}, at_seq=2)  # an old entry, re-hashed: the key anchors it
    code, out = verify_cli(capsys)
    assert code == 1 and "BROKEN at entry 5" in out


# --- no keyring, no journaling ----------------------------------------------------------------------------

def test_a_locked_keyring_stops_journaling_instead_of_an_unkeyed_chain(
        memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    keyring.set_keyring(LockedKeyring())
    with pytest.raises(JournalError) as error:
        Journal.open(path)
    assert error.value.kind == "keyring"
    message = str(error.value)
    assert "keyring" in message and "nothing can be shown" in message and "locked" in message
    assert not path.exists() or not rows(path)  # nothing recorded without the key
