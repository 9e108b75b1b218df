"""Retrying one failed section goes through the normal path: policy (with the reason), an intent journaled
before the request, the patient checked, the outcome journaled naming only that section, then handed back."""

from __future__ import annotations

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import Action, Outcome
from app.core.model import SectionName
from app.core.policy import PolicyError
from app.core.service import MosaicCore, WrongPatientError
from tests.core.test_policy import USER, open_core, policy_text, write_policy


def server_by_section(network):
    """A practice that reads sections one by one (no $everything), so one section can fail alone."""
    return next(s for s in network.servers if not s.spec.supports_everything)


async def test_a_failed_section_is_read_again_alone_and_journaled_first(secrets_env, tmp_path) -> None:
    server = server_by_section(secrets_env)
    patient = next(p for p in server.population if p.nhs_number)
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(secrets_env.practices, journal=journal, user=USER, policy=None)
    await core.sign_in()
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        with server.faults.override(mode="http-500", match="Medication"):
            record = await core.open_record(server.practice.id, local_id)
        assert record.sections[SectionName.MEDICATIONS].status == "failed"
        before = {e.entry_id for e in journal.query(patient_nhs_number=patient.nhs_number)}
        section = await core.reload_section(server.practice.id, local_id, SectionName.MEDICATIONS)
    finally:
        await core.close()
    assert section.name is SectionName.MEDICATIONS and section.status == "loaded"
    new = [e for e in journal.query(patient_nhs_number=patient.nhs_number) if e.entry_id not in before]
    actions = sorted(e.action for e in new)
    assert actions == sorted([Action.INTENT, Action.READ]), actions
    [read] = [e for e in new if e.action == Action.READ]
    assert read.outcome == Outcome.SUCCESS and read.sections == ("medications",), "only what was shown"


async def test_a_section_retry_needs_the_reason_the_policy_asks_for(secrets_env, tmp_path) -> None:
    server = server_by_section(secrets_env)
    patient = next(p for p in server.population if p.nhs_number)
    path = write_policy(tmp_path, policy_text(reason_required=True))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        with pytest.raises(PolicyError):
            await core.reload_section(server.practice.id, local_id, SectionName.ALLERGIES)
        section = await core.reload_section(server.practice.id, local_id, SectionName.ALLERGIES, "Direct care")
    finally:
        await core.close()
    assert section.status == "loaded"
    [read] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
    assert read.purpose == "Direct care" and read.sections == ("allergies",)


async def test_a_section_withheld_by_the_role_stays_withheld_when_retried(secrets_env, tmp_path) -> None:
    server = server_by_section(secrets_env)
    patient = next(p for p in server.population if p.nhs_number)
    path = write_policy(tmp_path, policy_text(sections='["allergies"]'))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        section = await core.reload_section(server.practice.id, local_id, SectionName.ENCOUNTERS)
    finally:
        await core.close()
    assert section.status == "withheld" and section.entries == ()
    [read] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
    assert read.sections == (), "nothing was shown"


async def test_a_section_retry_checks_the_patient(secrets_env, tmp_path, monkeypatch) -> None:
    server = server_by_section(secrets_env)
    patients = [p for p in server.population if p.nhs_number][:2]
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(secrets_env.practices, journal=journal, user=USER, policy=None)
    await core.sign_in()
    try:
        asked = await core.resolve_patient(server.practice.id, patients[0].nhs_number)
        other = await core.resolve_patient(server.practice.id, patients[1].nhs_number)
        adapter = core.sessions.online_adapter(server.practice.id)
        fetch = adapter.fetch_record
        monkeypatch.setattr(adapter, "fetch_record", lambda _local_id: fetch(other))  # answers with someone else
        with pytest.raises(WrongPatientError):
            await core.reload_section(server.practice.id, asked, SectionName.ALLERGIES)
    finally:
        await core.close()
