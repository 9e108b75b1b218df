"""The locality access policy, enforced in the core against the real demo practices over loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.audit.recorder import is_flagged
from app.core.display import BREAK_GLASS_NOTE, access_notes
from app.core.model import PatientQuery, SectionName
from app.core.policy import (
    PolicyError,
    PolicyFileError,
    load_policy,
    parse_policy,
    policy_file,
    writable_problem,
)
from app.core.service import MosaicCore
from tests.machine import set_machine_policy, write_machine_file

USER = AuditUser(login="jbloggs", display_name="Jo Bloggs", role="clinician")


def write_policy(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    folder = tmp_path / "policy"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    path = folder / "policy.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    if monkeypatch is not None:  # named by this test's machine-wide file (tests/machine.py), as IT would
        set_machine_policy(path)
    return path


def policy_text(*, practices: str = '["*"]', sections: str = '["*"]', reason_required: bool = False,
                restricted: dict[str, list[str]] | None = None, profile: str = "") -> str:
    text = f"""
[roles.clinician]
practices = {practices}
sections = {sections}
reason_required = {str(reason_required).lower()}
reasons = ["Direct care", "Medicines reconciliation"]

[users.jbloggs]
role = "clinician"
{profile}
"""
    for pid, numbers in (restricted or {}).items():
        text += f"\n[practices.{pid}]\nrestricted = {numbers!r}\n".replace("'", '"')
    return text


def a_patient(server):
    return next(p for p in server.population if p.nhs_number)


async def open_core(network, tmp_path, policy_path: Path) -> tuple[MosaicCore, Journal]:
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=load_policy(policy_path))
    await core.sign_in()
    return core, journal


# --- rules in the core --------------------------------------------------------------------------------

async def test_no_policy_configured_allows_everything(secrets_env) -> None:
    core = MosaicCore(secrets_env.practices)
    assert core.policy is None
    assert core.decide(secrets_env.practices[0].id, "9990000018").allowed


async def test_default_core_loads_the_policy_named_by_mosaic_policy(secrets_env, tmp_path, monkeypatch) -> None:
    write_policy(tmp_path, policy_text(), monkeypatch)
    core = MosaicCore(secrets_env.practices, user=USER)
    assert core.policy is not None and "clinician" in core.policy.roles


async def test_a_practice_outside_the_role_is_never_reached(secrets_env, tmp_path, demo_requests) -> None:
    allowed, hidden = secrets_env.practices[0], secrets_env.practices[1]
    path = write_policy(tmp_path, policy_text(practices=f'["{allowed.id}"]'))
    hidden_server = secrets_env.server(hidden.id)
    patient = a_patient(hidden_server)
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        asked = demo_requests(hidden_server)
        notes: list[str] = []
        outcome = await core.search(PatientQuery(family="a"), on_result=lambda r: notes.append(r.practice_id))
        skipped = next(r for r in outcome.results if r.practice_id == hidden.id)
        assert not skipped.queried and not skipped.patients and "not searched" in skipped.note
        assert all(r.refused_by_policy == (r.practice_id != allowed.id) for r in outcome.results)
        assert hidden.id in notes  # the listener hears about the skip too
        assert any(r.practice_id == allowed.id and r.queried for r in outcome.results)
        with pytest.raises(PolicyError) as raised:
            await core.resolve_patient(hidden.id, patient.nhs_number)
        assert raised.value.needs == "denied" and hidden.id in str(raised.value)
        with pytest.raises(PolicyError) as raised:
            await core.open_record(hidden.id, patient.local_id, purpose="curious")
        assert raised.value.needs == "denied"
        assert asked.asked() == []  # not one request reached the practice
    finally:
        await core.close()
    denied = [e for e in journal.query(practice_id=hidden.id) if e.outcome is Outcome.DENIED]
    assert {e.action for e in denied} == {Action.SEARCH, Action.READ}
    assert all(is_flagged(e) for e in denied)


async def test_restricted_patient_without_break_glass_is_denied_and_nothing_fetched(secrets_env, tmp_path,
                                                                                   demo_requests) -> None:
    server = secrets_env.servers[0]
    patient = a_patient(server)
    path = write_policy(tmp_path, policy_text(restricted={server.practice.id: [patient.nhs_number]}))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        asked = demo_requests(server)  # not the search's AuditEvent, nor a health check: what the test does
        with pytest.raises(PolicyError) as raised:
            await core.open_record(server.practice.id, local_id, purpose="direct care")
        assert raised.value.needs == "break-glass" and "restricted" in str(raised.value)
        with pytest.raises(PolicyError) as raised:  # break-glass without a written reason is not enough
            await core.open_record(server.practice.id, local_id, break_glass=True, purpose="   ")
        assert raised.value.needs == "break-glass"
        assert asked.asked() == []
    finally:
        await core.close()
    reads = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
    assert len(reads) == 2 and all(e.outcome is Outcome.DENIED for e in reads)
    assert all(not e.sections for e in reads)


async def test_break_glass_opens_a_restricted_patient_flagged(secrets_env, tmp_path) -> None:
    server = secrets_env.servers[0]
    patient = a_patient(server)
    path = write_policy(tmp_path, policy_text(restricted={server.practice.id: [patient.nhs_number]}))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        assert core.decide(server.practice.id, patient.nhs_number).needs == "break-glass"
        record = await core.open_record(server.practice.id, local_id, break_glass=True,
                                        purpose="Unconscious in A&E, no other record")
    finally:
        await core.close()
    assert record.access_flags == ("break-glass",) and record.access_reason == "Unconscious in A&E, no other record"
    assert access_notes(record) == [BREAK_GLASS_NOTE, "Reason given: Unconscious in A&E, no other record"]
    [entry] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.BREAK_GLASS])
    assert entry.outcome is Outcome.SUCCESS and entry.purpose == "Unconscious in A&E, no other record"
    assert entry.details["flagged"] is True and entry.details["flag"] == "break-glass"
    from app.core.audit.balp import audit_event

    event = audit_event(entry, server.practice, server.practice.base_url)
    assert "Unconscious in A&E" in str(event)  # the agent's purposeOfUse text


async def test_reason_required_offers_the_policy_reasons_and_is_journaled(secrets_env, tmp_path,
                                                                         demo_requests) -> None:
    server = secrets_env.servers[2]
    patient = a_patient(server)
    path = write_policy(tmp_path, policy_text(reason_required=True))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        asked = demo_requests(server)
        decision = core.decide(server.practice.id, patient.nhs_number)
        assert decision.needs == "reason" and decision.reasons == ("Direct care", "Medicines reconciliation")
        with pytest.raises(PolicyError) as raised:
            await core.open_record(server.practice.id, local_id)
        assert raised.value.needs == "reason" and "Direct care" in str(raised.value)
        assert asked.asked() == []
        await core.open_record(server.practice.id, local_id, purpose="Medicines reconciliation")
    finally:
        await core.close()
    [entry] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
    assert entry.purpose == "Medicines reconciliation" and entry.outcome is Outcome.SUCCESS
    assert not is_flagged(entry)


async def test_own_record_by_nhs_number_needs_a_reason_and_is_flagged(secrets_env, tmp_path) -> None:
    server = secrets_env.servers[1]
    patient = a_patient(server)
    path = write_policy(tmp_path, policy_text(profile=f'nhs_number = "{patient.nhs_number}"'))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        with pytest.raises(PolicyError) as raised:
            await core.open_record(server.practice.id, local_id)
        assert raised.value.needs == "reason" and "family member" in str(raised.value)
        record = await core.open_record(server.practice.id, local_id, purpose="Checking my own allergies")
    finally:
        await core.close()
    assert record.access_flags == ("self-or-family",) and "you or a family member" in access_notes(record)[0]
    [entry] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
    assert entry.details["flag"] == "self-or-family" and is_flagged(entry)


async def test_family_by_surname_and_postcode_from_search(secrets_env, tmp_path) -> None:
    server = secrets_env.servers[3]
    patient = a_patient(server)
    profile = f'family = "{patient.family.upper()}"\npostcode = "{patient.postcode.replace(" ", "").lower()}"'
    path = write_policy(tmp_path, policy_text(profile=profile))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        outcome = await core.search(PatientQuery(nhs_number=patient.nhs_number))
        summary = next(p for p in outcome.patients if p.practice_id == server.practice.id)
        assert core.decide(server.practice.id, summary).needs == "reason"
        await core.open_record(server.practice.id, summary.local_id, purpose="Collecting a prescription")
    finally:
        await core.close()
    [entry] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ],
                            practice_id=server.practice.id)
    assert entry.details["flag"] == "self-or-family"


async def test_sections_outside_the_role_are_not_shown_or_journaled(secrets_env, tmp_path) -> None:
    server = secrets_env.servers[0]
    patient = a_patient(server)
    path = write_policy(tmp_path, policy_text(sections='["allergies", "medications"]'))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        local_id = await core.resolve_patient(server.practice.id, patient.nhs_number)
        record = await core.open_record(server.practice.id, local_id)
    finally:
        await core.close()
    shown = {name for name, section in record.sections.items() if section.status != "withheld"}
    assert shown == {SectionName.ALLERGIES, SectionName.MEDICATIONS}
    withheld = [section for section in record.sections.values() if section.status == "withheld"]
    assert withheld and all(not s.entries and s.error is None for s in withheld), "withheld: no entries, no failure"
    assert any("Not shown under the access policy" in w for w in record.warnings)
    [entry] = journal.query(patient_nhs_number=patient.nhs_number, actions=[Action.READ])
    assert set(entry.sections) <= {"allergies", "medications"}


async def test_a_patient_not_named_by_the_practice_cannot_be_opened_by_local_id(secrets_env, tmp_path,
                                                                               demo_requests) -> None:
    server = secrets_env.servers[0]
    patient = a_patient(server)
    path = write_policy(tmp_path, policy_text(restricted={server.practice.id: [patient.nhs_number]}))
    core, journal = await open_core(secrets_env, tmp_path, path)
    try:
        asked = demo_requests(server)
        with pytest.raises(PolicyError) as raised:  # guessing the local id would skip the restriction
            await core.open_record(server.practice.id, patient.local_id, break_glass=False, purpose="x")
        assert raised.value.needs == "denied" and "search" in str(raised.value)
        assert asked.asked() == []
    finally:
        await core.close()


async def test_a_login_without_a_role_reaches_nothing(secrets_env, tmp_path, demo_requests) -> None:
    path = write_policy(tmp_path, policy_text())
    journal = Journal.open(tmp_path / "j.sqlite")
    stranger = AuditUser(login="mallory", display_name="Mallory")
    core = MosaicCore(secrets_env.practices, journal=journal, user=stranger, policy=load_policy(path))
    try:
        await core.sign_in()
        asked = demo_requests(*secrets_env.servers)
        outcome = await core.search(PatientQuery(family="a"))
    finally:
        await core.close()
    assert not outcome.patients and all(not r.queried for r in outcome.results)
    assert asked.asked() == []


# --- the policy file ------------------------------------------------------------------------------------

def test_malformed_toml_names_the_line(tmp_path) -> None:
    path = write_policy(tmp_path, '[roles.clinician]\npractices = ["*"]\nreasons = ["a", \n\n[users.x\n')
    with pytest.raises(PolicyFileError) as raised:
        load_policy(path)
    assert raised.value.line is not None and f"line {raised.value.line}" in str(raised.value)
    assert str(path) in str(raised.value)


def test_schema_errors_name_the_line(tmp_path) -> None:
    text = policy_text().replace('role = "clinician"', 'role = "superuser"')
    with pytest.raises(PolicyFileError, match=r"line 9: user 'jbloggs' has role 'superuser'"):
        parse_policy(text, "p.toml")
    with pytest.raises(PolicyFileError, match=r"line 5: 'reason_required' must be true or false"):
        parse_policy(policy_text().replace("reason_required = false", 'reason_required = "yes"'), "p.toml")
    with pytest.raises(PolicyFileError, match="unknown section 'gossip'"):
        parse_policy(policy_text(sections='["gossip"]'), "p.toml")
    with pytest.raises(PolicyFileError, match="not a valid NHS number"):
        parse_policy(policy_text(restricted={"riverside": ["1234567890"]}), "p.toml")


def test_a_policy_file_the_user_can_write_is_refused(tmp_path, secrets_env, monkeypatch) -> None:
    path = write_policy(tmp_path, policy_text(), monkeypatch)
    path.chmod(0o666)
    with pytest.raises(PolicyFileError, match="writable by group or others"):
        load_policy(path)
    with pytest.raises(PolicyFileError):  # the core never starts on it, so never falls open
        MosaicCore(secrets_env.practices, user=USER)
    path.chmod(0o644)
    path.parent.chmod(0o777)  # a folder the user can write lets them replace the file
    with pytest.raises(PolicyFileError, match="folder"):
        load_policy(path)


def test_owner_rule() -> None:
    assert writable_problem(0o100644, owner=1000, euid=1000) == "is owned by the current user"
    assert writable_problem(0o100644, owner=0, euid=1000) is None
    assert writable_problem(0o100644, owner=0, euid=0) is None
    assert writable_problem(0o100664, owner=0, euid=1000) == "is writable by group or others"
    assert writable_problem(0o041777, owner=0, euid=1000, is_dir=True) is None  # /tmp-like, sticky, root's


def test_a_configured_but_missing_policy_never_falls_open(tmp_path, monkeypatch) -> None:
    set_machine_policy(tmp_path / "gone.toml")
    with pytest.raises(PolicyFileError, match="file not found"):
        load_policy()


def test_policy_file_comes_from_the_machine_config_only(tmp_path, machine_dir) -> None:
    write_machine_file('[policy]\nfile = "policy/policy.toml"\n')
    assert policy_file() == machine_dir / "policy" / "policy.toml"
    user = Path(os.environ["MOSAIC_HOME"]) / "practices.toml"
    user.write_text('[policy]\nfile = "/tmp/mine.toml"\n')
    with pytest.raises(PolicyFileError, match="machine-wide"):
        policy_file()


def test_restricted_and_self_needs_break_glass_and_carries_both_flags() -> None:
    own = "9434765919"
    policy = parse_policy(policy_text(restricted={"riverside": [own]}, profile=f'nhs_number = "{own}"'))
    asked = policy.decide("jbloggs", "riverside", own)
    assert asked.needs == "break-glass"
    assert set(asked.flags) == {"break-glass", "self-or-family"}  # the dialog warns about both
    opened = policy.decide("jbloggs", "riverside", own, purpose="Own record, urgent", break_glass=True)
    assert opened.allowed and set(opened.flags) == {"break-glass", "self-or-family"}


def test_restricted_patients_are_told_only_where_the_practice_says_so() -> None:
    policy = parse_policy(policy_text(restricted={"riverside": ["9434765919"], "oakwood": ["9990000018"]})
                          + '\n[practices.millbrook]\nrestricted = ["9990000026"]\nnotify_restricted = true\n')
    assert policy.withholds_notice("9434765919") and policy.withholds_notice("9990000018")
    assert not policy.withholds_notice("9990000026")  # millbrook tells its restricted patients
    assert not policy.withholds_notice("9990000034")  # not restricted anywhere
    with pytest.raises(PolicyFileError, match="line 3: 'notify_restricted' must be true or false"):
        parse_policy('[practices.riverside]\nrestricted = []\nnotify_restricted = "yes"\n')


def test_an_empty_sections_list_is_refused_never_read_as_all() -> None:
    """`sections = []` once gave the role every section (while `practices = []` gives none): refused, at its line."""
    with pytest.raises(PolicyFileError, match=r"p\.toml, line 4: .*at least one section"):
        parse_policy(policy_text(sections="[]"), "p.toml")
    # the other lists: empty means none (practices, reasons, restricted, consented), never all
    assert parse_policy(policy_text(practices="[]"), "p.toml").roles["clinician"].practices == frozenset()


def test_a_study_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(PolicyFileError, match="study id"):
        parse_policy('[studies."s1\\n"]\nconsented = []\n', "p.toml")


def test_control_characters_in_the_policy_are_refused() -> None:
    text = policy_text().replace('"Direct care"', '"Direct care\\u001b[2J"')
    with pytest.raises(PolicyFileError, match=r"p\.toml, line 6: .*control characters"):
        parse_policy(text, "p.toml")


def test_a_policy_error_never_carries_the_file_s_control_characters() -> None:
    text = policy_text().replace("reason_required = false", '"j\\u001b[2J" = false')
    with pytest.raises(PolicyFileError) as raised:
        parse_policy(text, "p.toml")
    assert "\x1b" not in str(raised.value) and "j\\u001b[2J" in str(raised.value)


@pytest.mark.parametrize("table", ['[roles."gp\\u001b[2J"]\npractices = ["*"]\n',
                                   '[practices."river\\u001b[2J"]\nrestricted = []\n'])
def test_control_characters_in_a_policy_table_name_are_refused(table: str) -> None:
    with pytest.raises(PolicyFileError, match="control characters") as raised:
        parse_policy(policy_text() + "\n" + table, "p.toml")
    assert "\x1b" not in str(raised.value)
