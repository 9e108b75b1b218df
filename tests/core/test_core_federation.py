"""The core against the real demo practices over loopback: sign-in, federated search, opening records."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from app.core.model import PatientQuery, SectionName
from app.core.search import group_by_person
from app.core.secrets import env_name
from app.core.service import MosaicCore, PatientNotFound
from app.core.sessions import PracticeState, PracticeStatus


def shared_nhs_number(network) -> tuple[str, list[str]]:
    """An NHS number registered at more than one demo practice, and the practices that hold it."""
    seen: dict[str, list[str]] = {}
    for server in network.servers:
        for patient in server.population:
            if patient.nhs_number:
                seen.setdefault(patient.nhs_number, []).append(server.practice.id)
    number, holders = next((n, h) for n, h in seen.items() if len(h) > 1)
    return number, holders


async def test_sign_in_opens_every_practice_and_reports_round_trip(secrets_env) -> None:
    seen: list[PracticeState] = []
    core = MosaicCore(secrets_env.practices, on_state=seen.append)
    try:
        states = await core.sign_in()
    finally:
        await core.close()
    assert [s.status for s in states] == [PracticeStatus.ONLINE] * 5
    assert all(s.server and s.server.round_trip_ms > 0 and s.server.fhir_version.startswith("4.0") for s in states)
    # every practice was seen connecting before it came online
    for practice in secrets_env.practices:
        mine = [s.status for s in seen if s.practice.id == practice.id]
        assert mine[:2] == [PracticeStatus.CONNECTING, PracticeStatus.ONLINE]


async def test_missing_secret_fails_that_practice_only(secrets_env, monkeypatch) -> None:
    victim = secrets_env.practices[0]
    monkeypatch.delenv(env_name(victim.id))
    # the test's own keyring (tests/conftest.py) holds no secret for it; the audit journal's key goes there too
    core = MosaicCore(secrets_env.practices)
    try:
        states = {s.practice.id: s for s in await core.sign_in()}
    finally:
        await core.close()
    assert states[victim.id].status is PracticeStatus.FAILED
    assert victim.name in states[victim.id].detail and "credentials set" in states[victim.id].detail
    assert sum(s.status is PracticeStatus.ONLINE for s in states.values()) == 4


async def test_a_hanging_practice_does_not_delay_the_others(secrets_env) -> None:
    slow = replace(secrets_env.practices[2], timeout_s=2.0)
    practices = [slow if p.id == slow.id else p for p in secrets_env.practices]
    order: list[tuple[str, PracticeStatus]] = []
    core = MosaicCore(practices, on_state=lambda s: order.append((s.practice.id, s.status)))
    try:
        with secrets_env.server(slow.id).faults.override(mode="hang"):
            states = {s.practice.id: s for s in await core.sign_in()}
    finally:
        await core.close()
    settled = [pid for pid, status in order if status in (PracticeStatus.ONLINE, PracticeStatus.RETRYING)]
    assert settled[-1] == slow.id, "the hanging practice should settle last, after the others are online"
    assert states[slow.id].status is PracticeStatus.RETRYING  # no answer: tried again by itself
    assert states[slow.id].retry_at is not None and states[slow.id].kind == "timeout"
    assert slow.name in states[slow.id].detail
    assert all(states[p.id].status is PracticeStatus.ONLINE for p in practices if p.id != slow.id)


async def test_federated_search_groups_the_same_person_across_practices(secrets_env) -> None:
    number, holders = shared_nhs_number(secrets_env)
    answered: list[str] = []
    core = MosaicCore(secrets_env.practices)
    try:
        await core.sign_in()
        outcome = await core.search(PatientQuery(nhs_number=number), on_result=lambda r: answered.append(r.practice_id))
    finally:
        await core.close()
    assert sorted(answered) == sorted(p.id for p in secrets_env.practices)  # every practice answered
    assert not outcome.failures
    assert sorted(p.practice_id for p in outcome.patients) == sorted(holders)
    groups = group_by_person(outcome.patients)
    assert len(groups) == 1 and groups[0].nhs_number == number and len(groups[0].members) == len(holders)


async def test_search_names_a_failing_practice_and_keeps_the_rest(secrets_env) -> None:
    family = next(iter(secrets_env.servers[0].population)).family
    broken = secrets_env.practices[1]
    core = MosaicCore(secrets_env.practices)
    try:
        await core.sign_in()
        with secrets_env.server(broken.id).faults.override(mode="http-500"):
            outcome = await core.search(PatientQuery(family=family))
    finally:
        await core.close()
    assert [r.practice_id for r in outcome.failures] == [broken.id]
    assert broken.name in outcome.failures[0].error
    assert any(p.practice_id == secrets_env.practices[0].id and p.family == family for p in outcome.patients)
    assert all(p.family.lower().startswith(family.lower()) for p in outcome.patients)


async def test_practice_that_failed_sign_in_is_named_in_search(secrets_env) -> None:
    broken = secrets_env.practices[3]
    core = MosaicCore(secrets_env.practices)
    try:
        with secrets_env.server(broken.id).faults.override(mode="auth-fail"):
            await core.sign_in()
        outcome = await core.search(PatientQuery(family="a"))
        assert [r.practice_id for r in outcome.failures] == [broken.id]
        assert "not searched" in outcome.failures[0].error
        # retry brings it back once the practice is healthy
        assert (await core.retry(broken.id)).status is PracticeStatus.ONLINE
    finally:
        await core.close()


async def test_open_record_by_nhs_number_loads_every_section(secrets_env) -> None:
    server = secrets_env.servers[1]
    patient = next(p for p in server.population if p.nhs_number)
    core = MosaicCore(secrets_env.practices)
    try:
        await core.sign_in()
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        record = await core.open_record(server.practice.id, local_id)
        with pytest.raises(PatientNotFound, match="check digit"):
            wrong_check_digit = patient.nhs_number[:9] + str((int(patient.nhs_number[9]) + 1) % 10)
            await core.resolve_patient(server.practice.id, wrong_check_digit)
    finally:
        await core.close()
    assert local_id == patient.local_id
    assert record.patient.nhs_number == patient.nhs_number and record.patient.family == patient.family
    assert set(record.sections) == set(SectionName)
    assert all(s.status == "loaded" for s in record.sections.values())
    assert record.round_trips <= 3


async def test_practices_connect_concurrently(secrets_env) -> None:
    """Five practices each adding a second sign in together, not one after another."""
    for server in secrets_env.servers:
        server.faults.latency_ms = 1000  # long enough that a loaded machine's overhead cannot blur the two
    core = MosaicCore(secrets_env.practices)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        states = await core.sign_in()
        elapsed = loop.time() - started
    finally:
        for server in secrets_env.servers:
            server.faults.latency_ms = 0
        await core.close()
    assert all(s.status is PracticeStatus.ONLINE for s in states)
    per_practice_minimum = min(s.server.round_trip_ms for s in states) / 1000
    assert per_practice_minimum >= 1.0
    # sequential sign-in would take at least 5 x the slowest single practice
    assert elapsed < 5 * per_practice_minimum
