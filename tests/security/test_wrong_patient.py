"""Issue 10, class 3 — the wrong patient shown.

The core checks every record against the patient asked for (practice, local id, NHS number) whatever the
adapter did (a third-party adapter may check nothing), refuses a mismatch as a clinical-safety error
naming the practice, journals it, and shows nothing of it. It then decides the access policy again on
the record's own identifiers: a patient found without an NHS number who turns out to be restricted opens
only by break-glass. The adapters here are the installed ones, made careless in-process (a test seam),
against the real demo practices over loopback HTTP.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from adapters.base import AdapterError, available_adapters
from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.model import PatientQuery, PatientRecord, PatientSummary
from app.core.policy import PolicyError, parse_policy
from app.core.service import MosaicCore
from tests.core.test_notify_core import restricting

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")


def careless(monkeypatch: pytest.MonkeyPatch, swap) -> None:
    """Every installed adapter, as a third party might write it: what `swap` makes of each record is handed
    to the core unchecked."""
    import app.core.service as service

    def make(practice: Any, secret: str | None) -> Any:
        base = available_adapters()[practice.adapter]

        class Careless(base):  # type: ignore[misc, valid-type]
            async def fetch_record(self, local_id: str) -> PatientRecord:
                return await swap(self, local_id, super().fetch_record)

        return Careless(practice, secret)

    monkeypatch.setattr(service, "adapter_for", make)


def other_patient(server, not_this) -> Any:
    return next(p for p in server.population if p.nhs_number and p.resource is None
                and p.local_id != not_this.local_id and p.nhs_number != not_this.nhs_number)


def local_id_of(server, patient) -> str:
    return patient.nhs_number if server.gpconnect is not None else patient.local_id


async def opened(core: MosaicCore, server, patient, **kw) -> PatientRecord:
    await core.resolve_patient(server.spec.id, patient.nhs_number)
    return await core.open_record(server.spec.id, local_id_of(server, patient), **kw)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["fhir-everything", "fhir-per-type", "gp-connect"])
async def test_another_patients_record_is_refused_journaled_and_not_shown(practices, monkeypatch, tmp_path,
                                                                          index) -> None:
    server = practices.servers[index]
    asked = next(p for p in server.population if p.nhs_number and p.resource is None)
    other = other_patient(server, asked)

    async def someone_else(adapter: Any, local_id: str, fetch) -> PatientRecord:
        return await fetch(local_id_of(server, other))  # the practice answered with another patient

    careless(monkeypatch, someone_else)
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(practices.practices, journal=journal, user=USER, policy=None, notify=None)
    shown: list[PatientRecord] = []
    try:
        await core.sign_in()
        with pytest.raises(AdapterError) as info:
            shown.append(await opened(core, server, asked))
    finally:
        await core.close()
    assert shown == []
    assert info.value.kind == "wrong-patient"
    assert "Clinical safety" in info.value.message and server.spec.name in info.value.message
    [entry] = journal.query(practice_id=server.spec.id, actions=[Action.READ])
    assert entry.outcome is Outcome.FAILURE and entry.details["clinical_safety"] == "wrong-patient"
    assert entry.patient_nhs_number == asked.nhs_number and entry.sections == ()
    assert journal.query(practice_id=server.spec.id, actions=[Action.INTENT])  # the attempt, before it left


@pytest.mark.parametrize("index", [0, 1], ids=["fhir-everything", "fhir-per-type"])
async def test_same_record_id_with_another_nhs_number_is_refused(practices, monkeypatch, tmp_path, index) -> None:
    server = practices.servers[index]
    asked = next(p for p in server.population if p.nhs_number and p.resource is None)
    other = other_patient(server, asked)

    async def renumbered(adapter: Any, local_id: str, fetch) -> PatientRecord:
        record = await fetch(local_id)
        return dataclasses.replace(record, patient=dataclasses.replace(record.patient, nhs_number=other.nhs_number))

    careless(monkeypatch, renumbered)
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(practices.practices, journal=journal, user=USER, policy=None, notify=None)
    try:
        await core.sign_in()
        with pytest.raises(AdapterError, match="Clinical safety") as info:
            await opened(core, server, asked)
    finally:
        await core.close()
    assert server.spec.name in info.value.message and "NHS number" in info.value.message
    [entry] = journal.query(practice_id=server.spec.id, actions=[Action.READ])
    assert entry.outcome is Outcome.FAILURE and entry.details["received"]["nhs_number"] == other.nhs_number


@pytest.mark.parametrize("index", [0, 1], ids=["fhir-everything", "fhir-per-type"])
async def test_a_patient_found_without_nhs_number_is_checked_again_on_the_record(practices, monkeypatch, tmp_path,
                                                                                 index) -> None:
    """The practice's search answer carries no NHS number; the record does, and it is restricted."""
    server = practices.servers[index]
    patient = next(p for p in server.population if p.nhs_number and p.resource is None)
    import app.core.service as service

    def make(practice: Any, secret: str | None) -> Any:
        base = available_adapters()[practice.adapter]

        class NoNumbers(base):  # type: ignore[misc, valid-type]
            async def search(self, query: PatientQuery) -> list[PatientSummary]:
                return [dataclasses.replace(p, nhs_number=None) for p in await super().search(query)]

        return NoNumbers(practice, secret)

    monkeypatch.setattr(service, "adapter_for", make)
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(practices.practices, journal=journal, user=USER, notify=None,
                      policy=restricting(server.spec.id, patient.nhs_number))
    shown: list[PatientRecord] = []
    try:
        await core.sign_in()
        outcome = await core.search(PatientQuery(family=patient.family, birth_date=patient.birth_date))
        found = next(p for p in outcome.patients if p.practice_id == server.spec.id
                     and p.local_id == patient.local_id)
        assert found.nhs_number is None and core.decide(server.spec.id, found).allowed  # nothing to restrict on yet
        with pytest.raises(PolicyError) as info:
            shown.append(await core.open_record(server.spec.id, patient.local_id))
        assert info.value.needs == "break-glass" and "break-glass" in str(info.value)
        denied = journal.query(practice_id=server.spec.id, actions=[Action.READ])
        assert [e.outcome for e in denied] == [Outcome.DENIED]
        assert denied[0].patient_nhs_number == patient.nhs_number and denied[0].details["flagged"]
        # by break-glass, with a reason, it opens, and the entry is flagged for review
        record = await core.open_record(server.spec.id, patient.local_id, purpose="Unconscious in the surgery",
                                        break_glass=True)
    finally:
        await core.close()
    assert shown == []
    assert record.patient.nhs_number == patient.nhs_number and "break-glass" in record.access_flags
    [glass] = journal.query(practice_id=server.spec.id, actions=[Action.BREAK_GLASS])
    assert glass.outcome is Outcome.SUCCESS


async def test_self_or_family_is_checked_again_on_the_record(practices, monkeypatch, tmp_path) -> None:
    """Found by name without an NHS number, the record turns out to be the user's own: a reason is needed."""
    server = practices.servers[1]
    patient = next(p for p in server.population if p.nhs_number and p.resource is None)
    import app.core.service as service

    def make(practice: Any, secret: str | None) -> Any:
        base = available_adapters()[practice.adapter]

        class NoNumbers(base):  # type: ignore[misc, valid-type]
            async def search(self, query: PatientQuery) -> list[PatientSummary]:
                return [dataclasses.replace(p, nhs_number=None, postcode=None) for p in await super().search(query)]

        return NoNumbers(practice, secret)

    monkeypatch.setattr(service, "adapter_for", make)
    policy = parse_policy(f"""
[roles.clinician]
practices = ["*"]
[users.jbloggs]
role = "clinician"
nhs_number = "{patient.nhs_number}"
""")
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(practices.practices, journal=journal, user=USER, notify=None, policy=policy)
    try:
        await core.sign_in()
        await core.search(PatientQuery(family=patient.family, birth_date=patient.birth_date))
        with pytest.raises(PolicyError) as info:
            await core.open_record(server.spec.id, patient.local_id)
    finally:
        await core.close()
    assert info.value.needs == "reason"
    [entry] = journal.query(practice_id=server.spec.id, actions=[Action.READ])
    assert entry.outcome is Outcome.DENIED
