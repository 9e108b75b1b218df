"""A policy role with locality insight and no record access (issue 13), and the journal of insight actions, in the
core against the real demo practices over loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import CENTRAL_DESTINATION, Action, AuditUser, Outcome
from app.core.audit.recorder import is_flagged
from app.core.insight_access import InsightQuery
from app.core.model import PatientQuery
from app.core.policy import PolicyError, PolicyFileError, load_policy, parse_policy
from app.core.policy_schema import PolicyFile
from app.core.service import MosaicCore
from tests.core.test_policy import a_patient, write_policy

LEAD = AuditUser(login="lead", display_name="Locality Lead", role="manager")
GP = AuditUser(login="gp", display_name="Dr Green", role="GP")

POLICY = """
[roles.locality-lead]
practices = ["*"]
records = false
insight = true

[roles.clinician]
practices = ["*"]

[roles.researcher]
practices = ["*"]
research = true
study = "s1"
insight = true

[studies.s1]
consented = []

[users.lead]
role = "locality-lead"

[users.gp]
role = "clinician"

[users.res]
role = "researcher"
"""


def test_the_schema_carries_records_and_insight_with_their_defaults() -> None:
    policy = parse_policy(POLICY)
    lead, clinician = policy.roles["locality-lead"], policy.roles["clinician"]
    assert (lead.records, lead.insight) == (False, True)
    assert (clinician.records, clinician.insight) == (True, False)  # insight is given, never assumed
    properties = PolicyFile.model_json_schema()["$defs"]["RoleRules"]["properties"]
    assert properties["records"]["default"] is True and properties["insight"]["default"] is False


def test_a_research_role_without_records_is_refused_at_its_line() -> None:
    text = '[roles.r]\nresearch = true\nstudy = "s1"\nrecords = false\n\n[studies.s1]\n'
    with pytest.raises(PolicyFileError) as raised:
        parse_policy(text)
    assert "searches and opens records" in str(raised.value) and raised.value.line == 4


def test_an_unknown_role_key_lists_records_and_insight() -> None:
    with pytest.raises(PolicyFileError) as raised:
        parse_policy('[roles.r]\ninsights = true\n')
    assert "insight" in str(raised.value) and "records" in str(raised.value)


async def open_core(network, tmp_path: Path, user: AuditUser, *, central: str | None = None) -> tuple[
        MosaicCore, Journal]:
    path = write_policy(tmp_path, POLICY)
    journal = Journal.open(tmp_path / f"{user.login}.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=user, policy=load_policy(path), central_url=central,
                      notify=None, health_interval_s=None)
    return core, journal


async def test_an_insight_only_role_never_searches_or_opens_a_record(secrets_env, tmp_path, demo_requests) -> None:
    practice = secrets_env.practices[0]
    server = secrets_env.server(practice.id)
    patient = a_patient(server)
    core, journal = await open_core(secrets_env, tmp_path, LEAD)
    try:
        await core.sign_in()
        asked = demo_requests(server)
        for attempt in (core.search(PatientQuery(family="a")), core.search(PatientQuery(nhs_number=patient.nhs_number)),
                        core.resolve_patient(practice.id, patient.nhs_number),
                        core.open_record(practice.id, patient.local_id, purpose="Direct care"),
                        core.open_all_practices(patient.nhs_number, reason="Direct care")):
            with pytest.raises(PolicyError) as raised:
                await attempt
            assert raised.value.needs == "denied"
            assert "insight only, without access to patient records" in str(raised.value), str(raised.value)
        assert asked.asked() == []  # not one request for a patient reached the practice
        assert [p.id for p in core.insight_practices()] == [p.id for p in secrets_env.practices]
    finally:
        await core.close()
    assert not any(e.action in (Action.SEARCH, Action.READ) and e.outcome is Outcome.SUCCESS for e in journal.query())


async def test_an_insight_only_role_runs_insight_and_each_action_is_journaled(secrets_env, tmp_path) -> None:
    core, journal = await open_core(secrets_env, tmp_path, LEAD)
    ids = tuple(p.id for p in secrets_env.practices)
    try:
        entry = await core.journal_insight(InsightQuery("show", metric="dna_rate", by="practice", period="2026-03",
                                                        practices=ids))
    finally:
        await core.close()
    [stored] = [e for e in journal.query() if e.action is Action.INSIGHT]
    assert stored.entry_id == entry.entry_id and stored.seq is not None  # committed, in the chain
    assert stored.user.login == "lead" and stored.outcome is Outcome.SUCCESS
    assert stored.patient_nhs_number is None and stored.patient_local_id is None and stored.practice_id is None
    assert stored.details["insight"] == "show" and stored.details["metric"] == "dna_rate"
    assert stored.details["by"] == "practice" and stored.details["period"] == "2026-03"
    assert stored.details["practices"] == list(ids) and stored.details["policy_role"] == "locality-lead"


async def test_a_role_without_insight_is_refused_and_the_attempt_is_journaled_as_denied(secrets_env,
                                                                                         tmp_path) -> None:
    core, journal = await open_core(secrets_env, tmp_path, GP)
    try:
        with pytest.raises(PolicyError) as raised:
            core.insight_practices()
        assert "does not include locality insight" in str(raised.value)
        with pytest.raises(PolicyError):
            await core.journal_insight(InsightQuery("show", metric="appointments", by="practice"))
    finally:
        await core.close()
    [denied] = [e for e in journal.query() if e.action is Action.INSIGHT]
    assert denied.outcome is Outcome.DENIED and is_flagged(denied)


async def test_a_research_role_s_insight_entry_keeps_what_was_asked(secrets_env, tmp_path) -> None:
    core, journal = await open_core(secrets_env, tmp_path, AuditUser(login="res", display_name="R"))
    try:
        await core.journal_insight(InsightQuery("show", metric="utilisation", by="month", period="2026-01"))
    finally:
        await core.close()
    [entry] = [e for e in journal.query() if e.action is Action.INSIGHT]
    assert entry.details["metric"] == "utilisation" and entry.details["by"] == "month"


async def test_insight_entries_go_to_the_central_store_only_never_to_a_practice(secrets_env, tmp_path) -> None:
    central = f"sqlite:///{tmp_path / 'central.sqlite'}"  # never opened here: only where the entry is bound
    core, journal = await open_core(secrets_env, tmp_path, LEAD, central=central)
    try:
        await core.journal_insight(InsightQuery("export", practices=("riverside",)))
    finally:
        await core.close()
    waiting = {d.destination: d.waiting for d in journal.outbox_status()}
    assert waiting == {CENTRAL_DESTINATION: 1}


async def test_with_no_policy_insight_is_allowed_as_everything_else_is(secrets_env, tmp_path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(secrets_env.practices, journal=journal, user=GP, policy=None, notify=None,
                      health_interval_s=None)
    try:
        assert len(core.insight_practices()) == len(secrets_env.practices)
        await core.journal_insight(InsightQuery("peers", metric="dna_rate", practices=("riverside",)))
    finally:
        await core.close()
    assert [e.details["insight"] for e in journal.query() if e.action is Action.INSIGHT] == ["peers"]


async def test_a_role_s_practices_bound_its_insight(secrets_env, tmp_path) -> None:
    first = secrets_env.practices[0].id
    path = write_policy(tmp_path, f'[roles.lead]\npractices = ["{first}"]\nrecords = false\ninsight = true\n\n'
                                  '[users.lead]\nrole = "lead"\n')
    core = MosaicCore(secrets_env.practices, journal=Journal.open(tmp_path / "j.sqlite"), user=LEAD,
                      policy=load_policy(path), notify=None, health_interval_s=None)
    try:
        assert [p.id for p in core.insight_practices()] == [first]
    finally:
        await core.close()
