"""What the journal records for the access history (issue 11): one search id across a federated search, the role
under the access policy beside the professional role, the patient's name on a record open, and reviews."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from app.core.audit.model import Action, AuditUser
from app.core.audit.review import ReviewRefused, mark_reviewed, reviews_of
from app.core.display import display_name
from app.core.model import PatientQuery
from tests.core.test_policy import a_patient, open_core, policy_text, write_policy

GP = AuditUser(login="jbloggs", display_name="Jo Bloggs", role="General Medical Practitioner")


def test_a_federated_search_journals_one_search_id_and_reads_name_the_patient_and_the_policy_role(
        network, tmp_path) -> None:
    server = network.servers[0]
    patient = a_patient(server)
    restricted = network.servers[1]
    hidden = a_patient(restricted)
    path = write_policy(tmp_path, policy_text(restricted={restricted.practice.id: [hidden.nhs_number]}))

    async def run():
        core, journal = await open_core(network, tmp_path, path)
        core.set_user(GP)
        try:
            await core.search(PatientQuery(nhs_number=patient.nhs_number))
            await core.search(PatientQuery(nhs_number=patient.nhs_number))
            found = (await core.search(PatientQuery(nhs_number=patient.nhs_number))).patients
            summary = next(p for p in found if p.practice_id == server.practice.id)
            record = await core.open_record(server.practice.id, summary.local_id)
            entries = journal.query(newest_first=False)
            glass_found = (await core.search(PatientQuery(nhs_number=hidden.nhs_number))).patients
            target = next(p for p in glass_found if p.practice_id == restricted.practice.id)
            await core.open_record(restricted.practice.id, target.local_id, purpose="Collapsed at the hub",
                                   break_glass=True)
            glass = journal.query(actions=["break-glass"])[0]
            with pytest.raises(ReviewRefused, match="not flagged"):
                await mark_reviewed(core, entries[-1].entry_id, "fine")
            with pytest.raises(ReviewRefused, match="your own access"):  # four eyes
                await mark_reviewed(core, str(glass.seq), "Fine by me")
            core.set_user(dataclasses.replace(GP, login="pjones", display_name="Pat Jones"))
            review = await mark_reviewed(core, str(glass.seq), "  Checked with   the clinician ")
            return record, entries, glass, review, reviews_of(journal, [glass.entry_id])
        finally:
            await core.close()

    record, entries, glass, review, reviews = asyncio.run(run())
    searches = [e for e in entries if e.action in (Action.SEARCH, Action.INTENT) and e.details.get("query")]
    ids = {e.details["search_id"] for e in searches}
    assert len(ids) == 3, "one id per search, whatever the practices"
    for search_id in ids:
        mine = [e for e in searches if e.details["search_id"] == search_id]
        assert {e.practice_id for e in mine} == {p.id for p in network.practices}
    assert all(e.details["policy_role"] == "clinician" for e in entries)
    assert all(e.user.role == "General Medical Practitioner" for e in entries), "the professional role is kept"
    [read] = [e for e in entries if e.action is Action.READ]
    assert read.details["patient_name"] == display_name(record.patient)

    assert review.action is Action.REVIEW and review.user.login == "pjones"
    assert review.details["reviewed"] == glass.entry_id and review.details["note"] == "Checked with the clinician"
    assert reviews == {glass.entry_id: [review]}
