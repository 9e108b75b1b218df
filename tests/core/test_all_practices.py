"""One patient opened at every practice they are registered at, each through the normal path (policy, reason,
journal entry per practice, patient check), against the real demo practices over loopback."""

from __future__ import annotations

import pytest

from app.core.all_practices import RESEARCH_REFUSED, decision_for_all, registered_at
from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.policy import PolicyError, parse_policy
from app.core.service import MosaicCore, PatientNotFound

USER = AuditUser(login="jbloggs", display_name="Jo Bloggs", role="clinician")


def hub_policy(restricted: dict[str, str] | None = None, research: bool = False) -> str:
    text = f"""
[roles.hub]
practices = ["*"]
reason_required = true
reasons = ["Direct care", "Medicines reconciliation"]
research = {str(research).lower()}
{'study = "s1"' if research else ''}

[studies.s1]
consented = []

[users.jbloggs]
role = "hub"
"""
    for practice_id, number in (restricted or {}).items():
        text += f'\n[practices.{practice_id}]\nrestricted = ["{number}"]\n'
    return text


def shared(network, skip: int = 0):
    """A patient registered at two demo practices: (NHS number, (practice id, local id) x 2)."""
    item = network.shared_patients[skip]
    return item.nhs_number, item.first, item.second


async def core_for(network, tmp_path, policy_text: str | None = None) -> tuple[MosaicCore, Journal]:
    journal = Journal.open(tmp_path / "j.sqlite")
    policy = parse_policy(policy_text, "<test policy>") if policy_text else None
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=policy, notify=None)
    await core.sign_in()
    return core, journal


async def test_every_registration_opens_with_one_journal_entry_per_practice(network, tmp_path) -> None:
    number, first, second = shared(network)
    core, journal = await core_for(network, tmp_path)
    try:
        opened = await core.open_all_practices(number)
    finally:
        await core.close()
    assert [(o.practice.id, o.status) for o in opened.opened] == sorted(
        [(first[0], "ok"), (second[0], "ok")], key=lambda x: [p.id for p in network.practices].index(x[0]))
    assert {o.local_id for o in opened.opened} == {first[1], second[1]}
    assert all(o.record is not None and o.record.patient.nhs_number == number for o in opened.opened)
    assert len(opened.not_registered) == len(network.practices) - 2
    reads = journal.query(patient_nhs_number=number, actions=[Action.READ])
    assert sorted(e.practice_id for e in reads) == sorted([first[0], second[0]])  # one per practice
    assert all(e.outcome is Outcome.SUCCESS for e in reads)
    searches = journal.query(user="jbloggs", actions=[Action.SEARCH])
    assert sorted(e.practice_id for e in searches) == sorted(p.id for p in network.practices)
    timeline = opened.timeline()
    assert {i.practice.id for i in timeline.items} == {first[0], second[0]}
    assert registered_at(opened.opened).startswith("Registered at: ")


async def test_a_practice_that_fails_is_named_and_the_others_still_shown(network, tmp_path) -> None:
    number, first, second = shared(network, 1)
    core, journal = await core_for(network, tmp_path)
    try:
        with network.server(second[0]).faults.override(mode="http-500", match="/Patient/"):
            opened = await core.open_all_practices(number)
    finally:
        await core.close()
    by_id = {o.practice.id: o for o in opened.opened}
    assert by_id[first[0]].status == "ok" and by_id[first[0]].record is not None
    failed = by_id[second[0]]
    assert failed.status == "failed" and failed.record is None and failed.why
    assert [(p.id) for p, _ in opened.records] == [first[0]]
    outcomes = {e.practice_id: e.outcome for e in journal.query(patient_nhs_number=number, actions=[Action.READ])}
    assert outcomes == {first[0]: Outcome.SUCCESS, second[0]: Outcome.FAILURE}


async def test_a_reason_given_once_is_used_at_each_practice(network, tmp_path) -> None:
    number, first, second = shared(network)
    core, journal = await core_for(network, tmp_path, hub_policy())
    try:
        asked = decision_for_all(core, number)
        assert asked.needs == "reason" and "Medicines reconciliation" in asked.reasons
        without = await core.open_all_practices(number)
        assert {o.status for o in without.opened} == {"denied"} and {o.needs for o in without.opened} == {"reason"}
        assert journal.query(patient_nhs_number=number, actions=[Action.READ]) == []  # nothing was read
        opened = await core.open_all_practices(number, reason="Medicines reconciliation")
    finally:
        await core.close()
    assert {o.status for o in opened.opened} == {"ok"}
    reads = journal.query(patient_nhs_number=number, actions=[Action.READ])
    assert sorted(e.practice_id for e in reads) == sorted([first[0], second[0]])
    assert {e.purpose for e in reads} == {"Medicines reconciliation"}


async def test_a_restricted_registration_is_denied_and_journaled_the_other_opens(network, tmp_path) -> None:
    number, first, second = shared(network)
    core, journal = await core_for(network, tmp_path, hub_policy(restricted={second[0]: number}))
    try:
        opened = await core.open_all_practices(number, reason="Medicines reconciliation")
    finally:
        await core.close()
    by_id = {o.practice.id: o for o in opened.opened}
    assert by_id[first[0]].status == "ok"
    assert by_id[second[0]].status == "denied" and by_id[second[0]].needs == "break-glass"
    assert by_id[second[0]].record is None and "break-glass" in (by_id[second[0]].why or "")
    denied = journal.query(patient_nhs_number=number, practice_id=second[0], actions=[Action.READ])
    assert [e.outcome for e in denied] == [Outcome.DENIED]


async def test_the_research_view_is_refused_before_anything_is_asked(network, tmp_path) -> None:
    number, _, _ = shared(network)
    core, journal = await core_for(network, tmp_path, hub_policy(research=True))
    try:
        assert decision_for_all(core, number).needs == "denied"
        with pytest.raises(PolicyError) as caught:
            await core.open_all_practices(number)
    finally:
        await core.close()
    assert str(caught.value) == RESEARCH_REFUSED
    assert journal.query() == []


async def test_an_invalid_or_unknown_nhs_number_is_not_found(network, tmp_path) -> None:
    core, _ = await core_for(network, tmp_path)
    try:
        with pytest.raises(PatientNotFound, match="check digit"):
            await core.open_all_practices("943 476 5918")
        with pytest.raises(PatientNotFound, match="No practice has a patient"):
            await core.open_all_practices("999 000 0018")
    finally:
        await core.close()
