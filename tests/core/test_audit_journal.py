"""The local audit journal against real SQLite files: append, query, outbox, tampering, failures."""

from __future__ import annotations

import hmac
import json
import logging
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.core.audit import chain
from app.core.audit.journal import Journal, JournalError, VerifyResult
from app.core.audit.model import Action, AuditUser, JournalEntry, Outcome
from app.core.audit.schema import FLAGGED_SQL

T0 = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)
NHS_1, NHS_2 = "9434765919", "9434765870"
ALICE = AuditUser("alice", "Dr Alice Åberg", role="GP", professional_ids={"sds_user_id": "123456789012"})
BOB = AuditUser("bob", "Bob Jones", role="Nurse")


def entry(user: AuditUser = ALICE, minutes: float = 0, nhs: str | None = NHS_1, practice: str | None = "A81001",
          action: Action = Action.READ, **kw: object) -> JournalEntry:
    return JournalEntry(action=action, user=user, practice_id=practice, practice_ods=practice,
                        patient_local_id="p-1" if nhs else None, patient_nhs_number=nhs,
                        recorded_at=T0 + timedelta(minutes=minutes), app_version="0.1.0", **kw)  # type: ignore[arg-type]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Journal:
    j = Journal.open(path)
    yield j
    j.close()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def tamper(path: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    """What an attacker with the file would do: drop the triggers, then change rows directly."""
    con = raw(path)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    for sql in statements:
        con.execute(sql, params if "?" in sql else ())
    con.close()


def entry_id_at(path: Path, seq: int) -> str:
    con = raw(path)
    (value,) = con.execute("SELECT entry_id FROM journal WHERE seq = ?", (seq,)).fetchone()
    con.close()
    return value


# --- append and read back -----------------------------------------------------------------------------

def test_append_returns_the_stored_entry_chained_and_durable(path: Path) -> None:
    original = entry(sections=("summary", "medications"), purpose="Direct care", outcome=Outcome.SUCCESS,
                     details={"results": 3, "practices": ["A81001", "B82002"], "note": "café"})
    with Journal.open(path) as journal:
        first = journal.append(original, destinations=["practice:A81001", "central"])
        second = journal.append(entry(BOB, minutes=1, nhs=None, action=Action.SEARCH))
        key = journal.key
    assert (first.seq, first.prev_hash) == (1, chain.GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert first.hash == chain.entry_hash(chain.GENESIS, chain.to_row(original, 1, chain.GENESIS, key), key)
    with Journal.open(path) as journal:  # a fresh process would see the same
        stored = journal.get(original.entry_id)
        assert stored == first
        assert journal.get("no-such-entry") is None
        assert journal.count() == 2
    assert stored.user == ALICE and stored.sections == ("summary", "medications")
    assert stored.details == original.details and stored.recorded_at == T0
    assert (stored.purpose, stored.practice_ods, stored.patient_local_id) == ("Direct care", "A81001", "p-1")


def test_the_hash_is_reproducible_from_the_stored_columns_alone(journal: Journal, path: Path) -> None:
    """What an outside verifier holding the journal's key (from the OS keyring) does:
    HMAC-SHA256(key, prev_hash + sorted compact JSON of the non-NULL columns)."""
    journal.append(entry(details={"note": "café", "n": 1.5}), destinations=["central"])
    journal.append(entry(BOB, minutes=1, nhs=None, practice=None, action=Action.SEARCH))
    con = raw(path)
    con.row_factory = sqlite3.Row
    prev = "0" * 64
    for row in con.execute("SELECT * FROM journal ORDER BY seq"):
        fields = {k: v for k, v in dict(row).items() if k not in ("prev_hash", "hash") and v is not None}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert row["prev_hash"] == prev
        assert row["hash"] == hmac.new(journal.key or b"", (prev + text).encode("utf-8"), "sha256").hexdigest()
        prev = row["hash"]
    con.close()


def test_the_database_is_wal_with_the_expected_schema(journal: Journal, path: Path) -> None:
    con = raw(path)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    names = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
    assert {"journal", "outbox", "ix_journal_user_time", "ix_journal_patient_time", "ix_journal_practice_time",
            "ix_journal_recorded_at", "ix_outbox_status_due", "journal_no_update", "journal_no_delete"} <= names
    con.close()


def test_default_location_is_the_user_data_folder(mosaic_home: Path) -> None:
    with Journal.open() as journal:
        assert journal.path == mosaic_home / "data" / "journal.sqlite"
        journal.append(entry())
    assert (mosaic_home / "data" / "journal.sqlite").is_file()


def test_invalid_entries_are_refused_before_anything_is_written(journal: Journal) -> None:
    naive = JournalEntry(action=Action.READ, user=ALICE, recorded_at=datetime(2025, 1, 1))
    with pytest.raises(JournalError) as naive_error:
        journal.append(naive)
    with pytest.raises(JournalError) as set_error:
        journal.append(entry(details={"bad": {1, 2}}))
    assert naive_error.value.kind == set_error.value.kind == "invalid-entry"
    assert journal.count() == 0


# --- queries ------------------------------------------------------------------------------------------

@pytest.fixture
def filled(journal: Journal) -> Journal:
    journal.append(entry(ALICE, 0, NHS_1, "A81001"))
    journal.append(entry(BOB, 1, NHS_1, "B82002"))
    journal.append(entry(ALICE, 2, NHS_2, "A81001", outcome=Outcome.FAILURE, outcome_detail="timeout"))
    journal.append(entry(ALICE, 3, None, None, action=Action.SEARCH))
    journal.append(entry(BOB, 4, NHS_2, "A81001", action=Action.BREAK_GLASS, purpose="Emergency"))
    journal.append(entry(ALICE, 4, NHS_1, "B82002"))  # same time as the one before: seq breaks the tie
    return journal


def seqs(entries: list[JournalEntry]) -> list[int | None]:
    return [e.seq for e in entries]


def test_query_by_user_newest_first_and_oldest_first(filled: Journal) -> None:
    assert seqs(filled.query(user="alice")) == [6, 4, 3, 1]
    assert seqs(filled.query(user="alice", newest_first=False)) == [1, 3, 4, 6]
    assert seqs(filled.query(user="bob")) == [5, 2]
    assert filled.query(user="nobody") == []


def test_query_by_patient_practice_time_and_action(filled: Journal) -> None:
    assert seqs(filled.query(patient_nhs_number=NHS_1)) == [6, 2, 1]
    assert seqs(filled.query(patient_nhs_number=NHS_2)) == [5, 3]
    assert seqs(filled.query(practice_id="B82002")) == [6, 2]
    assert seqs(filled.query(since=T0 + timedelta(minutes=2))) == [6, 5, 4, 3]  # since: inclusive
    assert seqs(filled.query(until=T0 + timedelta(minutes=2))) == [2, 1]  # until: exclusive
    assert seqs(filled.query(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))) == [3, 2]
    assert seqs(filled.query(actions=[Action.SEARCH, "break-glass"])) == [5, 4]
    assert seqs(filled.query()) == [6, 5, 4, 3, 2, 1]


def test_query_filters_combine_and_limit_keeps_the_newest(filled: Journal) -> None:
    assert seqs(filled.query(user="alice", patient_nhs_number=NHS_1)) == [6, 1]
    assert seqs(filled.query(user="alice", practice_id="A81001", actions=["read"])) == [3, 1]
    assert seqs(filled.query(user="alice", limit=2)) == [6, 4]
    assert seqs(filled.query(user="alice", limit=2, newest_first=False)) == [1, 3]
    in_paris = (T0 + timedelta(minutes=4)).astimezone(timezone(timedelta(hours=1)))
    assert seqs(filled.query(since=in_paris)) == [6, 5]  # any offset means the same instant
    with pytest.raises(ValueError):
        filled.query(since=datetime(2025, 1, 1))


@pytest.mark.parametrize("where, index", [
    ("user_login = 'u1'", "ix_journal_user_time"),
    ("patient_nhs_number = '9434765919'", "ix_journal_patient_time"),
    ("practice_id = 'A'", "ix_journal_practice_time"),
    ("user_login = 'u1' AND recorded_at >= '2025'", "ix_journal_user_time"),
    (f"({FLAGGED_SQL})", "ix_journal_flagged"),  # as flagged_clause writes it: the review list
])
def test_the_key_questions_are_answered_from_an_index_without_sorting(journal: Journal, path: Path, where: str,
                                                                      index: str) -> None:
    con = raw(path)
    con.execute("ANALYZE")
    plan = " | ".join(row[-1] for row in con.execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM journal WHERE {where} ORDER BY recorded_at DESC, seq DESC LIMIT 500"))
    con.close()
    assert index in plan and "TEMP B-TREE" not in plan, plan


# --- the outbox ---------------------------------------------------------------------------------------

def test_outbox_rows_are_committed_with_their_entry(journal: Journal) -> None:
    stored = journal.append(entry(), destinations=["practice:A81001", "central"])
    items = journal.due(datetime.now(UTC))
    assert sorted(i.destination for i in items) == ["central", "practice:A81001"]
    assert all(i.entry == stored and i.attempts == 0 for i in items)
    assert journal.due(datetime.now(UTC), destination="central")[0].destination == "central"
    status = {s.destination: s for s in journal.outbox_status()}
    assert status["central"].waiting == 1 and status["central"].refused == 0
    assert status["central"].oldest_waiting is not None and status["central"].last_error is None


def test_a_failed_outbox_insert_leaves_no_entry(journal: Journal, path: Path) -> None:
    first = journal.append(entry())
    doomed = entry(minutes=1)
    with pytest.raises(JournalError) as error:
        journal.append(doomed, destinations=["central", "central"])
    assert error.value.kind == "other" and str(path) in str(error.value)
    assert journal.get(doomed.entry_id) is None and journal.count() == 1
    assert journal.due(datetime.now(UTC)) == [] and journal.outbox_status() == []
    after = journal.append(entry(minutes=2))
    assert (after.seq, after.prev_hash) == (2, first.hash)
    assert journal.verify().ok


def test_outbox_retry_refuse_deliver(journal: Journal) -> None:
    journal.append(entry(), destinations=["practice:A81001", "central"])
    journal.append(entry(minutes=1), destinations=["practice:A81001"])
    now = datetime.now(UTC)
    first, second, third = journal.due(now)
    assert journal.mark_retry(first.id, "HTTP 503 from practice", now + timedelta(minutes=5))
    assert [i.id for i in journal.due(now)] == [second.id, third.id]
    later = journal.due(now + timedelta(minutes=6))
    assert later[-1].id == first.id and later[-1].attempts == 1 and later[-1].last_error == "HTTP 503 from practice"
    assert journal.due(now, limit=1) == [journal.due(now)[0]]

    assert journal.mark_refused(second.id, "HTTP 422: unknown patient")
    assert [(i.id, i.last_error) for i in journal.refused_items()] == [(second.id, "HTTP 422: unknown patient")]
    assert journal.mark_delivered(third.id) and not journal.mark_delivered(third.id)
    assert not journal.mark_retry(third.id, "late", now)  # delivered is final
    status = {s.destination: s for s in journal.outbox_status()}
    assert (status["practice:A81001"].waiting, status["practice:A81001"].refused) == (1, 0)
    assert status["practice:A81001"].last_error == "HTTP 503 from practice"
    assert (status["central"].waiting, status["central"].refused, status["central"].oldest_waiting) == (0, 1, None)
    assert status["central"].last_error == "HTTP 422: unknown patient"
    with pytest.raises(JournalError) as error:
        journal.mark_delivered(999)
    assert error.value.kind == "not-found"


def test_outbox_rows_cannot_be_deleted(journal: Journal, path: Path) -> None:
    journal.append(entry(), destinations=["central"])
    con = raw(path)
    with pytest.raises(sqlite3.DatabaseError, match="kept"):
        con.execute("DELETE FROM outbox")
    con.close()


# --- append-only and tamper-evident -------------------------------------------------------------------

def test_triggers_refuse_update_delete_and_out_of_chain_inserts(journal: Journal, path: Path) -> None:
    stored = journal.append(entry())
    con = raw(path)
    with pytest.raises(sqlite3.DatabaseError, match="cannot be changed"):
        con.execute("UPDATE journal SET patient_nhs_number = '9999999999'")
    with pytest.raises(sqlite3.DatabaseError, match="cannot be deleted"):
        con.execute("DELETE FROM journal")
    forged = chain.to_row(entry(minutes=1), 2, chain.GENESIS)  # does not follow the newest entry
    columns = ", ".join(forged)
    with pytest.raises(sqlite3.DatabaseError, match="must follow"):
        con.execute(f"INSERT INTO journal ({columns}) VALUES ({', '.join('?' * len(forged))})", tuple(forged.values()))
    con.close()
    assert journal.get(stored.entry_id) == stored and journal.verify().ok


@pytest.fixture
def six(journal: Journal, path: Path) -> Path:
    for minute in range(6):
        journal.append(entry(minutes=minute), destinations=["central"])
    assert journal.verify() == VerifyResult(ok=True, checked=6)
    journal.close()
    return path


def verify(path: Path) -> VerifyResult:
    with Journal.open(path) as journal:
        return journal.verify()


def key_of(path: Path) -> bytes | None:
    """The journal's key, as its user could read it from their own keyring."""
    with Journal.open(path) as journal:
        return journal.key


def insert_row(path: Path, row: dict[str, object]) -> None:
    columns = ", ".join(row)
    tamper(path, f"INSERT INTO journal ({columns}) VALUES ({', '.join('?' * len(row))})", params=tuple(row.values()))


def head_hash(path: Path, seq: int) -> str:
    con = raw(path)
    (value,) = con.execute("SELECT hash FROM journal WHERE seq = ?", (seq,)).fetchone()
    con.close()
    return value


def test_verify_catches_an_edited_field(six: Path) -> None:
    victim = entry_id_at(six, 3)
    tamper(six, "UPDATE journal SET user_login = 'mallory' WHERE seq = 3")
    result = verify(six)
    assert (result.ok, result.checked, result.first_bad_seq, result.first_bad_entry_id) == (False, 2, 3, victim)
    assert "changed" in result.reason


def test_verify_catches_an_edit_whose_own_hash_was_recomputed(six: Path) -> None:
    con = raw(six)
    con.row_factory = sqlite3.Row
    row = dict(con.execute("SELECT * FROM journal WHERE seq = 3").fetchone())
    con.close()
    row["patient_nhs_number"] = NHS_2
    resealed = chain.seal({k: v for k, v in row.items() if k not in ("seq", "prev_hash", "hash")}, 3, row["prev_hash"],
                          key_of(six))  # an attacker who also has the key from the keyring
    tamper(six, "UPDATE journal SET patient_nhs_number = ?, hash = ? WHERE seq = 3",
           params=(NHS_2, resealed["hash"]))
    result = verify(six)
    assert (result.ok, result.first_bad_seq, result.first_bad_entry_id) == (False, 4, entry_id_at(six, 4))
    assert "does not follow entry 3" in result.reason


@pytest.mark.parametrize("column, value", [("hash", "f" * 64), ("recorded_at", "2025-03-12T09:31:00.000001+00:00"),
                                           ("details", '{"x":1}'), ("entry_id", "another-id")])
def test_verify_catches_any_edited_column(six: Path, column: str, value: str) -> None:
    tamper(six, f"UPDATE journal SET {column} = ? WHERE seq = 2", params=(value,))
    result = verify(six)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_verify_catches_a_deleted_row(six: Path) -> None:
    tamper(six, "DELETE FROM outbox WHERE entry_id = (SELECT entry_id FROM journal WHERE seq = 3)",
           "DELETE FROM journal WHERE seq = 3")
    result = verify(six)
    assert (result.ok, result.first_bad_seq, result.first_bad_entry_id) == (False, 4, entry_id_at(six, 4))
    assert "entry 3 is missing" in result.reason


def test_verify_catches_a_deleted_row_whose_gap_was_closed(six: Path) -> None:
    tamper(six, "DELETE FROM journal WHERE seq = 3", *(f"UPDATE journal SET seq = {s - 1} WHERE seq = {s}"
                                                         for s in range(4, 7)))
    result = verify(six)
    assert (result.ok, result.first_bad_seq, result.first_bad_entry_id) == (False, 3, entry_id_at(six, 3))
    assert "does not follow entry 2" in result.reason


def test_verify_catches_deleted_newest_rows_and_later_appends_keep_the_gap(six: Path) -> None:
    tamper(six, "DELETE FROM journal WHERE seq >= 5")
    result = verify(six)
    assert (result.ok, result.first_bad_seq, result.first_bad_entry_id) == (False, 5, None)
    assert "newest entries were deleted" in result.reason
    with Journal.open(six) as journal:
        after = journal.append(entry(minutes=9))
        assert after.seq == 7
        assert journal.verify().first_bad_seq == 7


def test_verify_catches_a_forged_row_with_a_correct_own_hash_but_wrong_chain(six: Path) -> None:
    forged = chain.to_row(entry(BOB, minutes=7), 7, head_hash(six, 4))  # pretends to follow entry 4
    assert forged["hash"] == chain.entry_hash(forged["prev_hash"], forged)
    insert_row(six, forged)
    result = verify(six)
    assert (result.ok, result.first_bad_seq, result.first_bad_entry_id) == (False, 7, forged["entry_id"])
    assert "does not follow entry 6" in result.reason


def test_verify_catches_a_row_inserted_in_place_of_another(six: Path) -> None:
    forged = chain.to_row(entry(BOB, minutes=2), 3, head_hash(six, 2), key_of(six))  # chained correctly to entry 2
    tamper(six, "DELETE FROM journal WHERE seq = 3")
    insert_row(six, forged)
    result = verify(six)
    assert (result.ok, result.first_bad_seq) == (False, 4)  # the first entry that no longer fits
    assert "does not follow entry 3" in result.reason


def test_verify_catches_rows_inserted_far_ahead(six: Path) -> None:
    forged = chain.to_row(entry(BOB, minutes=7), 100, head_hash(six, 6))
    insert_row(six, forged)
    result = verify(six)
    assert (result.ok, result.first_bad_seq, result.first_bad_entry_id) == (False, 100, forged["entry_id"])
    assert "entries 7 to 99 are missing" in result.reason


def test_verify_catches_swapped_rows(six: Path) -> None:
    moved = entry_id_at(six, 4)
    tamper(six, "UPDATE journal SET seq = -1 WHERE seq = 3", "UPDATE journal SET seq = 3 WHERE seq = 4",
           "UPDATE journal SET seq = 4 WHERE seq = -1")
    result = verify(six)
    assert (result.ok, result.first_bad_seq, result.first_bad_entry_id) == (False, 3, moved)


def test_verify_an_empty_journal(journal: Journal) -> None:
    assert journal.verify().ok and journal.verify().checked == 0


# --- failures the user can meet -----------------------------------------------------------------------

def assert_untouched(path: Path, count: int) -> None:
    with Journal.open(path) as journal:
        assert journal.count() == count
        assert len(journal.due(datetime.now(UTC) + timedelta(days=1))) == count
        assert journal.verify().ok


def test_a_full_disk_fails_the_append_with_a_plain_message_and_nothing_half_written(path: Path) -> None:
    with Journal.open(path) as journal:
        journal.append(entry(), destinations=["central"])
    con = raw(path)
    (pages,) = con.execute("PRAGMA page_count").fetchone()
    con.close()
    with Journal.open(path, pragmas={"max_page_count": pages + 2}) as journal, pytest.raises(JournalError) as error:
        for minute in range(1, 200):
            journal.append(entry(minutes=minute, details={"pad": "x" * 2000}), destinations=["central"])
    assert error.value.kind == "disk-full"
    assert "disk is full" in str(error.value) and str(path) in str(error.value) and "Free some" in str(error.value)
    with Journal.open(path) as journal:
        written = journal.count()
    assert 1 <= written < 200
    assert_untouched(path, written)


def test_a_read_only_journal_refuses_appends_but_reads_and_verifies(path: Path) -> None:
    with Journal.open(path) as journal:
        stored = journal.append(entry(), destinations=["central"])
    with Journal.open(path, read_only=True) as journal:
        assert journal.get(stored.entry_id) == stored and journal.verify().ok
        with pytest.raises(JournalError) as error:
            journal.append(entry(minutes=1))
    assert error.value.kind == "read-only"
    assert "read-only" in str(error.value) and str(path) in str(error.value)
    assert_untouched(path, 1)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only files anyway")
def test_a_read_only_folder_is_a_plain_error(path: Path) -> None:
    with Journal.open(path) as journal:
        journal.append(entry(), destinations=["central"])
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        with pytest.raises(JournalError) as error, Journal.open(path) as journal:
            journal.append(entry(minutes=1))
        assert error.value.kind == "read-only" and str(path) in str(error.value)
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)
    assert_untouched(path, 1)


def test_a_locked_journal_fails_after_the_busy_timeout(path: Path) -> None:
    with Journal.open(path) as journal:
        journal.append(entry(), destinations=["central"])
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")  # another process mid-append, and stuck
    try:
        with Journal.open(path, busy_timeout=0.2) as journal, pytest.raises(JournalError) as error:
            journal.append(entry(minutes=1))
        assert error.value.kind == "locked" and "busy for more than 0.2 s" in str(error.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert_untouched(path, 1)


def test_a_corrupt_file_is_a_plain_error_that_says_keep_it(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(JournalError) as error:
        Journal.open(path)
    assert error.value.kind == "corrupt" and "Do not delete it" in str(error.value) and str(path) in str(error.value)


def test_a_folder_in_the_way_is_a_plain_error(path: Path) -> None:
    path.mkdir(parents=True)
    with pytest.raises(JournalError) as error:
        Journal.open(path)
    assert error.value.kind == "cannot-open" and str(path) in str(error.value)


def test_a_closed_journal_says_so(journal: Journal) -> None:
    journal.close()
    with pytest.raises(JournalError) as error:
        journal.append(entry())
    assert error.value.kind == "closed"


def test_nothing_about_the_patient_reaches_the_logs_or_the_errors(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Journal.open(path) as journal:
        journal.append(entry(), destinations=["central"])
        journal.query(patient_nhs_number=NHS_1)
        with pytest.raises(JournalError) as error:
            journal.append(entry(minutes=1), destinations=["central", "central"])
    tamper(path, f"UPDATE journal SET patient_nhs_number = '{NHS_2}'")
    assert not verify(path).ok
    text = caplog.text + str(error.value) + repr(error.value.__cause__)
    assert NHS_1 not in text and NHS_2 not in text and ALICE.display_name not in text


# --- concurrency --------------------------------------------------------------------------------------

def test_threads_and_separate_handles_take_turns_on_the_chain_head(path: Path) -> None:
    handles = [Journal.open(path), Journal.open(path)]  # like the window and the CLI
    errors: list[BaseException] = []

    def writer(journal: Journal, who: int) -> None:
        try:
            for i in range(25):
                journal.append(entry(minutes=i, details={"writer": who}), destinations=["central"])
                journal.query(user="alice", limit=5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(handles[n % 2], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = handles[0].verify()
    assert (result.ok, result.checked) == (True, 100)
    assert len(handles[1].due(datetime.now(UTC), limit=1000)) == 100
    for handle in handles:
        handle.close()


def test_flagged_query_finds_break_glass_self_family_and_denied_only(journal: Journal) -> None:
    plain = [journal.append(entry(minutes=m)) for m in range(5)]
    flagged = [journal.append(e) for e in (
        entry(minutes=10, action=Action.BREAK_GLASS, details={"flagged": True, "flag": "break-glass"}),
        entry(minutes=11, outcome=Outcome.DENIED, details={"flagged": True, "denied": True, "flag": "denied"}),
        entry(minutes=12, details={"flagged": True, "flag": "self-or-family", "flags": ["self-or-family"]}),
    )]
    journal.append(entry(minutes=13, details={"nested": {"flagged": True}}))  # the SQL LIKE matches; the re-check not
    assert [e.entry_id for e in journal.query(flagged=True, newest_first=False)] == [e.entry_id for e in flagged]
    assert [e.entry_id for e in journal.query(flagged=True, limit=1)] == [flagged[-1].entry_id]
    assert len(journal.query()) == len(plain) + len(flagged) + 1


def _queued_then_released(journal: Journal, entries: list[JournalEntry]) -> tuple[list[object], list[int]]:
    """Append `entries` from one thread each while a commit is in progress, so that all of them queue; then
    let the commit end. Returns what each append returned (or raised), and the size of each group committed."""
    groups: list[int] = []
    real = journal._append_rows

    def counted(items):  # type: ignore[no-untyped-def]
        groups.append(len(items))
        return real(items)

    journal._append_rows = counted  # type: ignore[method-assign]
    outcomes: list[object] = [None] * len(entries)

    def writer(n: int) -> None:
        try:
            outcomes[n] = journal.append(entries[n], destinations=["central"])
        except BaseException as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(len(entries))]
    with journal._commit_lock:  # a commit in progress
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(journal._queue) < len(entries):  # wait until every append has queued its entry
            assert time.monotonic() < deadline, "the appends did not queue"
            time.sleep(0.001)
    for t in threads:
        t.join()
    return outcomes, groups


def test_appends_at_the_same_moment_share_one_commit(journal: Journal) -> None:
    entries = [entry(minutes=n, details={"n": n}) for n in range(5)]
    outcomes, groups = _queued_then_released(journal, entries)
    assert groups == [5]  # one transaction, one fsync, for all five
    assert all(isinstance(o, JournalEntry) for o in outcomes)
    stored = sorted(outcomes, key=lambda e: e.seq)  # type: ignore[union-attr]
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
    assert all(journal.get(e.entry_id) == e for e in stored)  # type: ignore[union-attr]
    assert journal.verify().ok and len(journal.due(datetime.now(UTC))) == 5


def test_a_failing_entry_in_a_group_fails_only_its_own_append(journal: Journal,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [entry(minutes=n, details={"n": n}) for n in range(4)]
    real = journal._append_rows

    def refuse_the_third(items):  # type: ignore[no-untyped-def]
        if any(fields["details"] and '"n":2' in fields["details"] for fields, _d in items):
            raise JournalError("Could not record the audit entry: refused for the test.", path=journal.path,
                               kind="test")
        return real(items)

    monkeypatch.setattr(journal, "_append_rows", refuse_the_third)
    outcomes, groups = _queued_then_released(journal, entries)
    assert groups == [4, 1, 1, 1, 1]  # the group failed, then each entry alone
    assert isinstance(outcomes[2], JournalError)
    assert [isinstance(o, JournalEntry) for o in outcomes] == [True, True, False, True]
    assert journal.count() == 3 and journal.verify().ok
