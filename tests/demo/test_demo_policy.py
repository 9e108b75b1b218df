"""The demo's access policy (`mosaic demo --role`): it parses, and the patients it names behave as it says
under the real core against the demo practices."""

from __future__ import annotations

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.policy import FLAG_SELF_OR_FAMILY
from app.core.service import MosaicCore
from app.demo.oidc_provider import DEMO_USER
from app.demo.policy import DEMO_ROLES, demo_policy

DEMO = AuditUser(login=DEMO_USER["preferred_username"], display_name=DEMO_USER["name"])


def summary_of(network, nhs_number: str):
    for server in network.servers:
        for p in server.population:
            if p.nhs_number == nhs_number:
                return server.spec.id, p.summary(server.spec.id)
    raise LookupError(nhs_number)


@pytest.mark.parametrize("role", DEMO_ROLES)
def test_every_demo_role_parses_and_names_its_patients(network, role) -> None:
    demo = demo_policy(network, role)
    assert demo.policy.users["clinician1"].role == role
    text = demo.describe()
    assert f"role '{role}'" in text and text.count("Restricted (break-glass)") == len(network.servers)


def test_hub_needs_a_reason_restricted_needs_break_glass_and_self_is_flagged(network, tmp_path) -> None:
    demo = demo_policy(network, "hub")
    core = MosaicCore(network.practices, journal=Journal.open(tmp_path / "j.sqlite"), user=DEMO, policy=demo.policy,
                      notify=None)
    restricted, own, family = ([m for m in demo.marked if m.why.startswith("Restricted")][0],
                               *[m for m in demo.marked if not m.why.startswith("Restricted")])
    pid, patient = summary_of(network, restricted.nhs_number)
    assert core.decide(pid, patient).needs == "break-glass"
    assert core.decide(pid, patient, purpose="Unconscious in A&E", break_glass=True).allowed
    pid, patient = summary_of(network, own.nhs_number)
    decision = core.decide(pid, patient, purpose="Direct care")
    assert decision.allowed and FLAG_SELF_OR_FAMILY in decision.flags
    pid, patient = summary_of(network, family.nhs_number)
    assert FLAG_SELF_OR_FAMILY in core.decide(pid, patient, purpose="Direct care").flags
    ordinary = next(p for p in network.servers[1].population if p.nhs_number and
                    p.nhs_number not in {m.nhs_number for m in demo.marked})
    decision = core.decide(network.servers[1].spec.id, ordinary.summary(network.servers[1].spec.id))
    assert decision.needs == "reason" and "Extended-access appointment" in decision.reasons


def test_gp_role_opens_without_a_reason(network, tmp_path) -> None:
    demo = demo_policy(network, "gp")
    core = MosaicCore(network.practices, journal=Journal.open(tmp_path / "j.sqlite"), user=DEMO, policy=demo.policy,
                      notify=None)
    ordinary = next(p for p in network.servers[0].population if p.nhs_number and
                    p.nhs_number not in {m.nhs_number for m in demo.marked})
    assert core.decide(network.servers[0].spec.id, ordinary.summary(network.servers[0].spec.id)).allowed


async def test_researcher_role_sees_pseudonyms_except_the_consented(network, tmp_path, monkeypatch) -> None:
    from app.core.query import parse_query
    from app.core.secrets import env_name
    from app.demo.policy import DEMO_STUDY
    from tests.core.test_research_view import criteria_for

    demo = demo_policy(network, "researcher")
    monkeypatch.setenv(env_name(f"study-{DEMO_STUDY}"), demo.study_key)
    core = MosaicCore(network.practices, journal=Journal.open(tmp_path / "j.sqlite"), user=DEMO, policy=demo.policy,
                      notify=None)
    await core.sign_in()
    try:
        consented = next(iter(demo.policy.studies[DEMO_STUDY].consented))
        plain = next(p for p in network.servers[0].population if p.nhs_number and p.nhs_number != consented)
        hidden = (await core.search(parse_query(criteria_for(network.servers[0], plain)))).patients
        where, patient = next((s, found) for s in network.servers
                              if s.practice.adapter == "fhir-r4" and (found := s.population.by_nhs_number(consented)))
        shown = (await core.search(parse_query(criteria_for(where, patient)))).patients
    finally:
        await core.close()
    assert hidden and all(s.pseudonym and not s.nhs_number and not s.family
                          for s in hidden if s.nhs_number != consented)  # only the consented one is identified
    assert any(s.nhs_number == consented and not s.pseudonym for s in shown)
