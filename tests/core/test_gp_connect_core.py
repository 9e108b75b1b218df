"""A GP Connect practice beside FHIR R4 ones, through the core: the same person found by NHS number at
both, the record opened, the practitioner named in the JWT, and the journal joined to the provider's
audit by the trace id (GP Connect practices audit each request themselves, so no AuditEvent is sent)."""

from __future__ import annotations

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, practice_destination
from app.core.model import PatientQuery, SectionName
from app.core.secrets import env_name
from app.core.service import MosaicCore
from app.demo.network import DemoNetwork

USER = AuditUser(login="clinician1", display_name="Dr Asha Patel", role="GP",
                 professional_ids={"sds_user_id": "555021935107", "sds_role_profile_id": "555021936103"})


@pytest.fixture(scope="module")
def mixed_network():
    network = DemoNetwork.start(practices=3, patients=60, gp_connect=(1,))
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def core_env(mixed_network, monkeypatch, tmp_path):
    for practice_id, secret in mixed_network.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    journal = Journal.open(tmp_path / "j.sqlite")
    yield mixed_network, journal
    journal.close()


async def test_gp_connect_record_beside_fhir_and_joined_by_trace_id(core_env) -> None:
    network, journal = core_env
    gpc = network.servers[1]
    assert gpc.practice.adapter == "gp-connect"
    shared = next(s for s in network.shared_patients if gpc.practice.id in (s.first[0], s.second[0]))
    core = MosaicCore(network.practices, journal=journal, user=USER)
    try:
        states = await core.sign_in()
        assert all(s.status == "online" for s in states), [s.detail for s in states]
        outcome = await core.search(PatientQuery(nhs_number=shared.nhs_number))
        holders = {p.practice_id for p in outcome.patients}
        assert {shared.first[0], shared.second[0]} <= holders
        gp_summary = next(p for p in outcome.patients if p.practice_id == gpc.practice.id)
        record = await core.open_record(gpc.practice.id, gp_summary.local_id)
        by_name = await core.search(PatientQuery(family=gp_summary.family))
    finally:
        await core.close()
    assert record.patient.nhs_number == shared.nhs_number
    assert record.sections[SectionName.MEDICATIONS].status in ("loaded", "unsupported")
    # the demo marks the first patient a GP Connect practice shares as having confidential items withheld
    assert any("confidentiality" in w for w in record.warnings)
    assert len(record.warnings) == len({w.casefold() for w in record.warnings}), "a warning shown twice"
    assert any(r.practice_id == gpc.practice.id and r.note and "NHS number" in r.note for r in by_name.results)
    [read] = journal.query(practice_id=gpc.practice.id, actions=[Action.READ])
    trace = gpc.gpconnect.trace(read.details["trace_id"])
    assert trace is not None and trace.status == 200
    assert trace.sub == "clinician1" and trace.sds_user_id == "555021935107"
    # no AuditEvent is queued for the GP Connect practice; the FHIR practices get theirs
    waiting = {d.destination for d in journal.outbox_status()}
    assert practice_destination(gpc.practice) not in waiting
    later = read.recorded_at.replace(year=read.recorded_at.year + 1)
    assert not journal.due(later, destination=practice_destination(gpc.practice))
