"""A reason given for a patient covers that NHS number at the other practices for the session (when the role lets
it), never break-glass or self/family, is journaled with every access it covers, and is forgotten at sign-out
and when another user takes over."""

from __future__ import annotations

import pytest

from app.core.audit.model import Action, AuditUser, Outcome
from app.core.model import PatientQuery
from app.core.policy import PolicyError, parse_policy
from app.core.session_reasons import SessionReasons
from tests.core.test_policy import USER, open_core, policy_text, write_policy

REASON = "Medicines reconciliation"


def shared(network) -> tuple[str, tuple[str, str], tuple[str, str]]:
    person = network.shared_patients[0]
    return person.nhs_number, person.first, person.second


async def found(core, number: str) -> None:
    """Search by NHS number, as a user would before opening (the core then knows both registrations)."""
    outcome = await core.search(PatientQuery(nhs_number=number))
    assert len(outcome.patients) >= 2


async def test_a_reason_given_at_one_practice_covers_the_same_patient_at_another(secrets_env, tmp_path) -> None:
    number, (first_pid, first_lid), (second_pid, second_lid) = shared(secrets_env)
    core, journal = await open_core(secrets_env, tmp_path, write_policy(tmp_path, policy_text(reason_required=True)))
    try:
        await found(core, number)
        assert core.decide(second_pid, number).needs == "reason"
        with pytest.raises(PolicyError):
            await core.open_record(first_pid, first_lid)
        await core.open_record(first_pid, first_lid, purpose=REASON)
        assert core.decide(second_pid, number).allowed, "the reason now covers the patient at the other practice"
        record = await core.open_record(second_pid, second_lid)  # no reason passed: the session's is used
        assert record.patient.nhs_number == number
        other = next(p for p in secrets_env.server(second_pid).population if p.nhs_number and p.nhs_number != number)
        assert core.decide(second_pid, other.nhs_number).needs == "reason", "another patient is asked again"
    finally:
        await core.close()
    reads = journal.query(patient_nhs_number=number, actions=[Action.READ], newest_first=False)
    assert [(r.practice_id, r.purpose, r.outcome) for r in reads] == [
        (first_pid, REASON, Outcome.SUCCESS), (second_pid, REASON, Outcome.SUCCESS)]


async def test_a_role_can_ask_at_every_access(secrets_env, tmp_path) -> None:
    number, (first_pid, first_lid), (second_pid, _) = shared(secrets_env)
    text = policy_text(reason_required=True).replace("reason_required = true",
                                                     "reason_required = true\nreason_covers_patient = false")
    core, _ = await open_core(secrets_env, tmp_path, write_policy(tmp_path, text))
    try:
        await found(core, number)
        await core.open_record(first_pid, first_lid, purpose=REASON)
        assert core.decide(second_pid, number).needs == "reason"
        assert core.decide(first_pid, number).needs == "reason"
    finally:
        await core.close()


async def test_break_glass_is_asked_for_every_access_and_its_reason_covers_nothing(secrets_env, tmp_path) -> None:
    number, (first_pid, first_lid), (second_pid, _) = shared(secrets_env)
    text = policy_text(reason_required=True, restricted={first_pid: [number], second_pid: [number]})
    core, _ = await open_core(secrets_env, tmp_path, write_policy(tmp_path, text))
    try:
        await found(core, number)
        await core.open_record(first_pid, first_lid, purpose="Collapsed at the hub, need allergies now",
                               break_glass=True)
        assert len(core.session_reasons) == 0
        assert core.decide(second_pid, number).needs == "break-glass"
        assert core.decide(first_pid, number).needs == "break-glass", "break-glass asks again at the same practice"
    finally:
        await core.close()


async def test_self_or_family_is_asked_every_time(secrets_env, tmp_path) -> None:
    number, (first_pid, first_lid), (second_pid, _) = shared(secrets_env)
    text = policy_text(reason_required=True, profile=f'nhs_number = "{number}"')
    core, _ = await open_core(secrets_env, tmp_path, write_policy(tmp_path, text))
    try:
        await found(core, number)
        await core.open_record(first_pid, first_lid, purpose="Checking my own allergies")
        decision = core.decide(second_pid, number)
        assert decision.needs == "reason" and decision.flags == ("self-or-family",)
    finally:
        await core.close()


async def test_sign_out_and_another_user_forget_the_reasons(secrets_env, tmp_path) -> None:
    number, (first_pid, first_lid), (second_pid, _) = shared(secrets_env)
    text = policy_text(reason_required=True) + '\n[users.asmith]\nrole = "clinician"\n'
    core, _ = await open_core(secrets_env, tmp_path, write_policy(tmp_path, text))
    try:
        await found(core, number)
        await core.open_record(first_pid, first_lid, purpose=REASON)
        core.set_user(USER)  # the same person again (the idle lock, unlocked): kept
        assert core.decide(second_pid, number).allowed
        core.set_user(AuditUser(login="asmith", display_name="A Smith", role="clinician"))
        assert core.decide(second_pid, number).needs == "reason", "another user's access is not covered"
        core.set_user(USER)
        assert core.decide(second_pid, number).needs == "reason", "forgotten, not kept per user for later"
        await core.open_record(first_pid, first_lid, purpose=REASON)
        assert core.decide(second_pid, number).allowed
        await core.sign_out()
        assert core.decide(second_pid, number).needs == "reason"
    finally:
        await core.close()


def test_the_policy_reads_reason_covers_patient() -> None:
    policy = parse_policy('[roles.a]\npractices = ["*"]\n[roles.b]\npractices = ["*"]\nreason_covers_patient = false\n')
    assert policy.roles["a"].reason_covers_patient and not policy.roles["b"].reason_covers_patient
    with pytest.raises(Exception, match="true or false"):
        parse_policy('[roles.a]\npractices = ["*"]\nreason_covers_patient = "yes"\n')


def test_session_reasons_are_per_login_and_number() -> None:
    reasons = SessionReasons()
    reasons.remember("a", "9990000018", "Direct care")
    assert reasons.recall("a", "9990000018") == "Direct care"
    assert reasons.recall("b", "9990000018") is None and reasons.recall("a", "9990000026") is None
    reasons.forget()
    assert reasons.recall("a", "9990000018") is None and len(reasons) == 0
