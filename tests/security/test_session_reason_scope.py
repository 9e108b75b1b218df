"""Issue 11, class 2: a reason remembered for a patient (app/core/session_reasons.py) covers no more than it
was given for — never break-glass (even where the patient is restricted at one practice only), never under
another role or study for the same login (a policy changed mid-session), and every access it covers is
journaled with it."""

from __future__ import annotations

import pytest

from app.core.audit.model import Action
from app.core.policy import PolicyError, load_policy
from tests.core.test_policy import open_core, policy_text, write_policy
from tests.core.test_session_reasons import REASON, found, shared


async def test_a_break_glass_reason_never_covers_the_unrestricted_registration(secrets_env, tmp_path) -> None:
    number, (first_pid, first_lid), (second_pid, second_lid) = shared(secrets_env)
    text = policy_text(reason_required=True, restricted={first_pid: [number]})
    core, _ = await open_core(secrets_env, tmp_path, write_policy(tmp_path, text))
    try:
        await found(core, number)
        await core.open_record(first_pid, first_lid, purpose="Collapsed at the hub, need allergies now",
                               break_glass=True)
        assert core.decide(second_pid, number).needs == "reason"
        with pytest.raises(PolicyError):
            await core.open_record(second_pid, second_lid)
    finally:
        await core.close()


async def test_a_reason_does_not_cover_the_same_login_under_another_role(secrets_env, tmp_path) -> None:
    number, (first_pid, first_lid), (second_pid, second_lid) = shared(secrets_env)
    core, journal = await open_core(secrets_env, tmp_path,
                                    write_policy(tmp_path, policy_text(reason_required=True)))
    try:
        await found(core, number)
        await core.open_record(first_pid, first_lid, purpose=REASON)
        assert core.decide(second_pid, number).allowed
        other_role = policy_text(reason_required=True).replace("clinician", "hub_admin")
        core.policy = load_policy(write_policy(tmp_path, other_role))  # the policy changed: the login has a new role
        assert core.decide(second_pid, number).needs == "reason"
        with pytest.raises(PolicyError):
            await core.open_record(second_pid, second_lid)
    finally:
        await core.close()
    reads = journal.query(patient_nhs_number=number, actions=[Action.READ])
    assert all(r.purpose == REASON for r in reads if r.practice_id == first_pid)
    assert not [r for r in reads if r.practice_id == second_pid and r.outcome.value == "success"]
