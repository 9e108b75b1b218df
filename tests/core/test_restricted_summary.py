"""What a search result of a restricted patient keeps: who they are and whether they have died, never where
they live (MosaicCore.SHOWN_WHEN_RESTRICTED)."""

from __future__ import annotations

from app.core.model import PatientQuery
from tests.core.test_policy import open_core, policy_text, write_policy


async def test_a_restricted_result_keeps_its_death_and_withholds_its_address(secrets_env, tmp_path) -> None:
    server = next(s for s in secrets_env.servers if any(p.deceased and p.nhs_number for p in s.population))
    dead = next(p for p in server.population if p.deceased and p.nhs_number)
    text = policy_text(restricted={server.practice.id: [dead.nhs_number]})
    core, _ = await open_core(secrets_env, tmp_path, write_policy(tmp_path, text))
    try:
        outcome = await core.search(PatientQuery(nhs_number=dead.nhs_number))
    finally:
        await core.close()
    [found] = [p for p in outcome.patients if p.practice_id == server.practice.id]
    assert found.deceased == dead.deceased and found.is_deceased, "a dead patient never reads as alive"
    assert found.postcode is None and found.address is None, "where they live is withheld"
    assert (found.family, found.birth_date, found.nhs_number) == (dead.family, dead.birth_date, dead.nhs_number)
