"""Audit through the core: every search and record open is journaled before anything is handed back,
and reaches the owning practice as an AuditEvent."""

from __future__ import annotations

import asyncio

import pytest

from app.core.audit.balp import entry_identifier
from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome, practice_destination
from app.core.audit.recorder import AuditError
from app.core.model import PatientQuery
from app.core.service import MosaicCore

USER = AuditUser(login="jbloggs", display_name="Jo Bloggs", role="clinician")


async def test_open_record_is_journaled_before_it_is_returned(secrets_env, tmp_path) -> None:
    server = secrets_env.servers[0]
    patient = next(p for p in server.population if p.nhs_number)
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(secrets_env.practices, journal=journal, user=USER)
    try:
        await core.sign_in()
        record = await core.open_record(server.practice.id, patient.local_id, purpose="direct care")
        # the entry is already there when open_record returns
        [entry] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
        assert entry.user.login == "jbloggs" and entry.outcome is Outcome.SUCCESS
        assert entry.practice_id == server.practice.id and entry.patient_local_id == patient.local_id
        assert set(entry.sections) == {name.value for name, s in record.sections.items() if s.status == "loaded"}
        assert entry.purpose == "direct care"
        # ... and reaches the owning practice as a BALP AuditEvent, exactly once
        await core.flush_outbox()
        system, value = entry_identifier(entry)
        events = server.audit.search(identifier=f"{system}|{value}")
        assert len(events) == 1 and events[0]["action"] == "R"
        assert events[0] in server.audit.search(patient=f"Patient/{patient.local_id}")
    finally:
        await core.close()
    assert Journal.open(tmp_path / "j.sqlite").verify().ok


async def test_each_practice_search_is_journaled(secrets_env, tmp_path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite")
    broken = secrets_env.practices[2]
    core = MosaicCore(secrets_env.practices, journal=journal, user=USER)
    try:
        await core.sign_in()
        with secrets_env.server(broken.id).faults.override(mode="http-500"):
            outcome = await core.search(PatientQuery(family="a"))
    finally:
        await core.close()
    entries = journal.query(user="jbloggs", actions=[Action.SEARCH])
    assert sorted(e.practice_id for e in entries) == sorted(p.id for p in secrets_env.practices)
    by_practice = {e.practice_id: e for e in entries}
    assert by_practice[broken.id].outcome is Outcome.FAILURE
    for result in outcome.results:
        if not result.error:
            assert by_practice[result.practice_id].details["results"] == len(result.patients)
            assert by_practice[result.practice_id].details["query"] == {"family": "a"}


async def test_a_journal_that_cannot_write_means_nothing_is_shown(secrets_env, tmp_path) -> None:
    Journal.open(tmp_path / "j.sqlite").close()
    read_only = Journal.open(tmp_path / "j.sqlite", read_only=True)
    server = secrets_env.servers[1]
    patient = next(iter(server.population))
    records_shown: list[object] = []
    answers: list[object] = []
    core = MosaicCore(secrets_env.practices, journal=read_only, user=USER)
    try:
        await core.sign_in()
        with pytest.raises(AuditError, match="audit journal"):
            records_shown.append(await core.open_record(server.practice.id, patient.local_id))
        await core.search(PatientQuery(family=patient.family), on_result=answers.append)
    finally:
        await core.close()
    assert records_shown == []
    assert len(answers) == 5
    assert all(not r.patients and "audit journal" in (r.error or "") for r in answers)


async def test_failed_fetch_is_journaled_as_failure(secrets_env, tmp_path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(secrets_env.practices, journal=journal, user=USER)
    practice = secrets_env.practices[0]
    try:
        await core.sign_in()
        with pytest.raises(Exception, match="."):
            await core.open_record(practice.id, "no-such-patient")
    finally:
        await core.close()
    [entry] = journal.query(practice_id=practice.id, actions=[Action.READ])
    assert entry.outcome is Outcome.FAILURE and entry.outcome_detail


async def test_outage_then_recovery_delivers_exactly_once(secrets_env, tmp_path) -> None:
    server = secrets_env.servers[3]
    patients = [p for p in server.population][:3]
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(secrets_env.practices, journal=journal, user=USER)
    try:
        await core.sign_in()
        with server.faults.override(mode="http-503", match="/AuditEvent"):
            for p in patients:
                await core.open_record(server.practice.id, p.local_id)
            waiting = {d.destination: d.waiting for d in journal.outbox_status()}
            assert waiting[practice_destination(server.practice)] >= 3
        waiting = -1
        for _ in range(600):  # up to 30 s on a loaded machine; usually one pass
            core._sender.retry_now()  # the practice is back: do not wait out the backoff in a test
            status = {d.destination: d for d in journal.outbox_status()}
            mine = status.get(practice_destination(server.practice))
            waiting = mine.waiting if mine is not None else 0
            if waiting == 0:
                break
            await asyncio.sleep(0.05)
        assert waiting == 0, f"{waiting} entries still waiting after the practice came back"
        refused = [d for d in journal.outbox_status() if d.refused]
        assert not refused, f"refused: {[(d.destination, d.refused, d.last_error) for d in refused]}"
    finally:
        await core.close()
    for entry in journal.query(practice_id=server.practice.id, actions=[Action.READ]):
        system, value = entry_identifier(entry)
        assert len(server.audit.search(identifier=f"{system}|{value}")) == 1


async def test_commits_made_while_one_is_written_go_to_the_journal_together(tmp_path) -> None:
    import threading
    from datetime import datetime

    from app.core.audit.model import JournalEntry
    from app.core.audit.recorder import AuditRecorder
    from app.core.model import Practice

    journal = Journal.open(tmp_path / "j.sqlite")
    calls: list[int] = []
    first_started, release = threading.Event(), threading.Event()
    real = journal.append_each

    def held(items):  # type: ignore[no-untyped-def]
        calls.append(len(items))
        if len(calls) == 1:
            first_started.set()
            assert release.wait(10), "the test never released the first write"
        return real(items)

    journal.append_each = held  # type: ignore[method-assign]
    recorder = AuditRecorder(journal, USER)
    practice = Practice(id="p1", name="Practice One", ods_code="Y01", adapter="fhir-r4", base_url="http://127.0.0.1:9")
    good = [recorder.search(practice, PatientQuery(family=f"name{n}"), n) for n in range(4)]
    naive = JournalEntry(action=Action.SEARCH, user=USER, recorded_at=datetime(2025, 1, 1))  # no time zone: invalid
    try:
        first = asyncio.ensure_future(recorder.commit(good[0], practice))
        assert await asyncio.to_thread(first_started.wait, 10)  # the first commit is being written
        rest = [asyncio.ensure_future(recorder.commit(e, practice)) for e in (good[1], naive, good[2], good[3])]
        while len(recorder._waiting) < 4:  # let them queue (each waits for the write in flight)
            await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(first, *rest, return_exceptions=True)
    finally:
        release.set()
    assert calls == [1, 4]  # the four made meanwhile went together, in one worker-thread call
    assert isinstance(results[2], AuditError)  # the invalid entry failed alone ...
    stored = [r for i, r in enumerate(results) if i != 2]
    assert [e.seq for e in stored] == [1, 2, 3, 4]  # ... the others were stored, in the order made
    assert journal.verify().ok and journal.count() == 4
    journal.close()
