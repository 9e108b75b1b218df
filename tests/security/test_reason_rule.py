"""Class 16: the CLI accepted a break-glass reason of "." while the window asks for ten letters or digits.

One reason rule, in the core (app/core/policy.py `written_reason_problem`), used by the window's dialog and
enforced by the policy's decision itself, so the CLI — or any other face — cannot open a restricted record
with a reason that fails it.
"""

from __future__ import annotations

import pytest

from app.core.policy import Policy, parse_policy, written_reason_problem

NHS = "9434765919"
POLICY = f"""
[roles.hub]
practices = ["*"]
[users.apatel]
role = "hub"
[practices.riverside]
restricted = ["{NHS}"]
"""


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY)


@pytest.mark.parametrize("reason", [".", "...", "x", "-- -- --", "aaaaaaaaaaaa", "1111111111111", "ok ok"])
def test_a_break_glass_reason_that_fails_the_rule_is_refused_by_the_core(policy: Policy, reason: str) -> None:
    decision = policy.decide("apatel", "riverside", NHS, purpose=reason, break_glass=True)
    assert decision.needs == "break-glass", decision
    assert written_reason_problem(reason) is not None


def test_a_written_reason_opens_by_break_glass(policy: Policy) -> None:
    decision = policy.decide("apatel", "riverside", NHS, purpose="Safeguarding referral today", break_glass=True)
    assert decision.allowed


def test_the_window_uses_the_same_rule() -> None:
    from app.core import policy as core_policy
    from app.ui import access_dialogs

    assert access_dialogs.written_reason_problem is core_policy.written_reason_problem
