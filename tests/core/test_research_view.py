"""The research view: pseudonymised patients for a research role, checked on every surface that shows text.

A research role sees a patient without a recorded research consent with no name, NHS number, address,
contact details, practice-local id or free text, the year of birth only, and a stable pseudonym per
study. The checks collect every string a surface produces (summaries, records, CLI text and JSON, audit
listings and exports, log records) and look for each identifier of the patient in it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend

from adapters.fhir_r4.consent import research_consent
from app.cli import main
from app.cli.render import render_record
from app.core import os_account
from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.display import display_name, format_born, format_date, format_patient_nhs_number
from app.core.model import (
    Coding,
    Entry,
    PatientContact,
    PatientRecord,
    PatientSummary,
    Section,
    SectionName,
)
from app.core.nhs_number import format_nhs_number
from app.core.policy import PolicyError, PolicyFileError, load_policy, parse_policy
from app.core.query import parse_query
from app.core.research import (
    PSEUDONYM,
    WITHHELD_TEXT,
    ResearchKeyMissing,
    pseudonym,
    pseudonymise_entry,
    pseudonymise_record,
    pseudonymise_summary,
    study_key,
)
from app.core.serialise import record_json
from app.core.service import MosaicCore, PatientNotFound
from app.demo.consent import research_consent_demo
from app.demo.population import DemoPatient
from app.demo.records import condition_codes
from tests.core.test_policy import write_policy

LOGIN = "rsmith"
USER = AuditUser(login=LOGIN, display_name="R Smith", role="researcher")
KEY = "a-study-key-of-more-than-16-characters"
OTHER_KEY = "another-study-key-quite-long-enough"


def research_policy(*, study: str = "diab", consented: tuple[str, ...] | list[str] = (), role: str = "researcher",
                    research: bool = True) -> str:
    return f"""
[roles.researcher]
practices = ["*"]
research = {str(research).lower()}
study = "{study}"

[roles.clinician]
practices = ["*"]

[studies.diab]
consented = {json.dumps(list(consented))}

[studies.asthma]
consented = []

[users.{LOGIN}]
role = "{role}"
"""


class EmptyKeyring(KeyringBackend):
    """A keyring holding no study key, so a key can only come from the environment in these tests. It keeps
    only what the audit journal stores there (its own key and records), without which nothing is shown."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.journal: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.journal.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if not username.startswith("audit-journal"):
            raise NotImplementedError
        self.journal[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def empty_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(EmptyKeyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def study_key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MOSAIC_SECRET_STUDY_DIAB", KEY)
    monkeypatch.setenv("MOSAIC_SECRET_STUDY_ASTHMA", OTHER_KEY)
    return KEY


# --- what identifies a patient, and finding it in text -----------------------------------------------

def identifiers(p: DemoPatient) -> list[str]:
    """Every identifier of the demo patient, in the forms a surface could print them."""
    found = [p.family, *p.given, p.postcode, p.postcode.replace(" ", ""), p.phone, p.phone.replace(" ", ""),
             p.local_id, *p.address]
    if p.nhs_number:
        found += [p.nhs_number, format_nhs_number(p.nhs_number)]
    if p.birth_date:
        found += [p.birth_date.isoformat(), format_date(p.birth_date), p.birth_date.strftime("%d/%m/%Y")]
    return [x for x in found if x]


def leaks(text: str, p: DemoPatient) -> list[str]:
    """The patient's identifiers found in `text` (names as whole words, case-insensitively)."""
    found = []
    for ident in identifiers(p):
        if ident in (p.family, *p.given):
            if re.search(rf"\b{re.escape(ident)}\b", text, re.IGNORECASE):
                found.append(ident)
        elif ident in text:
            found.append(ident)
    return found


def strings(value: Any) -> Iterator[str]:
    """Every string inside a value: dataclasses, mappings, sequences, dates (as ISO text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, date):
        yield value.isoformat()
    elif value is not None and not isinstance(value, bool | int | float):
        yield str(value)


def text_of(*values: Any) -> str:
    return "\n".join(s for v in values for s in strings(v))


def app_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record Mosaic itself wrote. The demo practices' own servers (mosaic.demo.*) log as a
    practice's server would, and run in this process only because the tests start them here."""
    return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                     if not r.name.startswith("mosaic.demo"))


def a_plain_patient(server, *, consent: bool = False) -> DemoPatient:
    """A generated patient with an NHS number, whose names appear in no clinical term of its record (so a
    name found in the output is a leak, not a coincidence), with or without a demo research Consent."""
    for p in server.population:
        if not p.nhs_number or p.resource is not None or research_consent_demo(p) is not consent:
            continue
        terms = json.dumps(server.population.record(p))
        if not any(re.search(rf"\b{re.escape(n)}\b", terms, re.IGNORECASE) for n in (p.family, *p.given)):
            return p
    raise AssertionError("no suitable demo patient")


async def research_core(network, tmp_path: Path, policy_text: str, user: AuditUser = USER) -> MosaicCore:
    path = write_policy(tmp_path, policy_text)
    core = MosaicCore(network.practices, journal=Journal.open(tmp_path / f"j-{user.login}.sqlite"), user=user,
                      policy=load_policy(path), notify=None)
    await core.sign_in()
    return core


def fhir_server(network, everything: bool = True):
    return next(s for s in network.servers
                if s.practice.adapter == "fhir-r4" and s.api.supports_everything is everything)


def age_of(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def criteria_for(server, p: DemoPatient, *, practice: bool = True) -> str:
    """Study criteria the patient meets at this practice: one of its coded conditions and its own age, as a
    researcher would type them (`practice:` narrows the search to this practice)."""
    code = sorted(condition_codes(p, server.population.spec, server.population.reference_date))[0]
    age = age_of(p.birth_date, date.today())
    return f"condition:{code} age:{age}-{age}" + (f" practice:{server.practice.id}" if practice else "")


def expected_pseudonym(p: DemoPatient, study: str = "diab", key: str = KEY) -> str:
    return pseudonym(key.encode(), study, nhs_number=p.nhs_number)


async def find_by_criteria(core: MosaicCore, server, p: DemoPatient, study: str = "diab", **kwargs: Any):
    """The criteria search's outcome and the patient's summary in it (by its expected pseudonym, or identified)."""
    outcome = await core.search(parse_query(criteria_for(server, p)), **kwargs)
    wanted = expected_pseudonym(p, study, KEY if study == "diab" else OTHER_KEY)
    summary = next(s for s in outcome.patients if s.practice_id == server.practice.id
                   and (s.pseudonym == wanted or (s.pseudonym is None and s.nhs_number == p.nhs_number)))
    return outcome, summary


# --- the pseudonym ------------------------------------------------------------------------------------

def test_pseudonym_is_keyed_stable_readable_and_per_study() -> None:
    key = KEY.encode()
    first = pseudonym(key, "diab", nhs_number="943 476 5919")
    assert PSEUDONYM.match(first) and first == pseudonym(key, "diab", nhs_number="9434765919")
    assert first != pseudonym(key, "asthma", nhs_number="9434765919")  # per study
    assert first != pseudonym(OTHER_KEY.encode(), "diab", nhs_number="9434765919")  # keyed
    assert first != pseudonym(key, "diab", nhs_number="9990000018")
    local = pseudonym(key, "diab", practice_id="riverside", local_id="abc123")
    assert local != pseudonym(key, "diab", practice_id="oakwood", local_id="abc123")
    with pytest.raises(ValueError):
        pseudonym(key, "diab")


def test_the_key_is_a_secret_and_there_is_no_unkeyed_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ResearchKeyMissing) as missing:
        study_key("diab")
    assert "MOSAIC_SECRET_STUDY_DIAB" in str(missing.value) and "study-diab" in str(missing.value)
    monkeypatch.setenv("MOSAIC_SECRET_STUDY_DIAB", "short")
    with pytest.raises(ResearchKeyMissing, match="shorter than 16"):
        study_key("diab")
    monkeypatch.setenv("MOSAIC_SECRET_STUDY_DIAB", KEY)
    assert study_key("diab") == KEY.encode()


def test_reduction_keeps_codes_dates_and_status_and_drops_everything_else() -> None:
    patient = PatientSummary("riverside", "abc123", "9434765919", "Smith", ("Jane",), date(1975, 3, 12), "female",
                             "LS1 4AB")
    reduced = pseudonymise_summary(patient, "R-AAAA-BBBB-CCCC")
    assert (reduced.local_id, reduced.pseudonym, reduced.birth_year, reduced.sex) == (
        "R-AAAA-BBBB-CCCC", "R-AAAA-BBBB-CCCC", 1975, "female")
    assert (reduced.nhs_number, reduced.family, reduced.given, reduced.birth_date, reduced.postcode) == (
        None, "", (), None, None)
    coded = Entry("Asthma, told by Jane's mother", when="2020-01-02", status="active", detail="Dr Who, Leeds",
                  coding=Coding("http://snomed.info/sct", "195967001", "Asthma"), resource_type="Condition",
                  resource_id="abc123-c0")
    assert pseudonymise_entry(coded) == Entry("Asthma", when="2020-01-02", status="active",
                                              coding=coded.coding, resource_type="Condition")
    free = Entry("Lives with Jane Smith at 1 High St", when="2021", resource_type="Observation", resource_id="x")
    assert pseudonymise_entry(free) == Entry(WITHHELD_TEXT, when="2021", resource_type="Observation")
    retrieved = datetime(2026, 1, 1, tzinfo=UTC)
    record = PatientRecord(patient, {SectionName.PROBLEMS: Section.loaded(SectionName.PROBLEMS, [coded, free])},
                           retrieved, 1, ("Problems: 2 entries could not be read and are not shown.",),
                           contact=PatientContact(phone="07700 900123", email="jane@example.org"))
    shown = pseudonymise_record(record, "R-AAAA-BBBB-CCCC")
    assert shown.contact is None and shown.retrieved_at == retrieved
    assert shown.warnings[1].startswith("Problems: 2 entries")
    text = text_of(shown)
    for ident in ("Jane", "Smith", "9434765919", "1975-03-12", "LS1 4AB", "07700", "jane@example", "abc123",
                  "Dr Who", "High St"):
        assert ident not in text, ident


# --- the policy ---------------------------------------------------------------------------------------

def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith(needle))


@pytest.mark.parametrize(("change", "needle", "message"), [
    (lambda t: t.replace('study = "diab"\n', ""), "research = true", "must name its study"),
    (lambda t: t.replace('study = "diab"', 'study = "nope"'), 'study = "nope"', "no [studies.*] table defines"),
    (lambda t: t.replace("consented = []", 'consented = ["9434765918"]'), 'consented = ["9434765918"]',
     "is not a valid NHS number"),
    (lambda t: t.replace("[studies.asthma]\n", "[studies.asthma]\nconsent = []\n"), "consent = []",
     "unknown key 'consent'"),
    (lambda t: t.replace('practices = ["*"]\n\n[studies', 'practices = ["*"]\nstudy = "asthma"\n\n[studies'),
     'study = "asthma"', "only for research roles"),
])
def test_policy_errors_name_the_line(change, needle, message) -> None:
    text = change(research_policy())
    assert text != research_policy()
    with pytest.raises(PolicyFileError) as raised:
        parse_policy(text, "policy.toml")
    assert message in str(raised.value)
    assert raised.value.line == line_of(text, needle), str(raised.value)


def test_policy_reads_studies_and_the_research_role() -> None:
    policy = parse_policy(research_policy(consented=["943 476 5919"]))
    study = policy.study_of(LOGIN)
    assert study is not None and study.id == "diab" and study.consented == frozenset({"9434765919"})
    assert parse_policy(research_policy(role="clinician")).study_of(LOGIN) is None


# --- FHIR Consent ---------------------------------------------------------------------------------------

def consent(status: str = "active", scope: str = "research", provision: str | None = "permit") -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Consent", "status": status, "scope": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope}]}}
    if provision is not None:
        resource["provision"] = {"type": provision}
    return resource


def test_consent_mapping() -> None:
    assert research_consent([consent()]) is True
    assert research_consent([consent(provision=None)]) is True
    assert research_consent([consent(status="rejected")]) is False
    assert research_consent([consent(status="inactive")]) is False
    assert research_consent([consent(provision="deny")]) is False
    assert research_consent([consent(), consent(provision="deny")]) is False  # a refusal wins
    assert research_consent([consent(scope="patient-privacy")]) is None
    assert research_consent([consent(scope="treatment"), {"resourceType": "Patient"}]) is None
    assert research_consent([]) is None
    wrong_system = consent()
    wrong_system["scope"]["coding"][0]["system"] = "http://example.org/scope"
    assert research_consent([wrong_system]) is None


# --- the core against the demo practices ---------------------------------------------------------------

async def test_non_consented_patient_is_pseudonymised_everywhere_the_core_hands_back(
        secrets_env, tmp_path, study_key_env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server = fhir_server(secrets_env)
    p = a_plain_patient(server)
    core = await research_core(secrets_env, tmp_path, research_policy())
    try:
        results: list[Any] = []
        outcome, summary = await find_by_criteria(core, server, p, on_result=results.append)
        assert {r.practice_id for r in outcome.results} == {server.practice.id}  # practice: narrows the search
        assert summary.pseudonym and PSEUDONYM.match(summary.pseudonym) and summary.local_id == summary.pseudonym
        assert summary.birth_year == p.birth_date.year and summary.sex == p.sex
        with pytest.raises(PolicyError, match="find patients by study criteria"):
            await core.resolve_patient(server.practice.id, p.nhs_number)
        record = await core.open_record(server.practice.id, summary.pseudonym)  # the core maps it back
        assert record.patient == summary and record.research_consent is not True
        assert record.contact is None and record.warnings[0].startswith("Research view — pseudonymised")
        entries = [e for s in record.sections.values() for e in s.entries]
        assert entries and all(e.detail is None and e.resource_id is None for e in entries)
        assert all(e.coding or e.text == WITHHELD_TEXT for e in entries)
        practice = server.practice
        history = await core.access_history(practice_id=practice.id)
        surfaces = text_of(outcome.patients, results, record, record_json(record), history) + "\n" + "\n".join((
            render_record(record, practice), display_name(summary), format_born(summary),
            format_patient_nhs_number(summary), app_logs(caplog)))
        assert leaks(surfaces, p) == []
        assert display_name(summary) == f"Research participant {summary.pseudonym}"
        assert format_born(summary) == str(p.birth_date.year)
        assert summary.pseudonym in text_of(history)
    finally:
        await core.close()
    journal = Journal.open(tmp_path / f"j-{LOGIN}.sqlite", read_only=True)
    try:  # the researcher's own journal: the practice's record id (for its audit) and the pseudonym, no NHS number
        reads = [e for e in journal.query(practice_id=server.practice.id) if str(e.action) == "read"]
        assert reads and reads[0].patient_nhs_number is None and reads[0].patient_local_id == p.local_id
        assert reads[0].details["pseudonym"] == summary.pseudonym
    finally:
        journal.close()


async def test_pseudonym_is_stable_across_cores_and_differs_per_study(secrets_env, tmp_path, study_key_env) -> None:
    server = fhir_server(secrets_env, everything=False)
    p = a_plain_patient(server)
    seen = []
    for n, study in enumerate(("diab", "diab", "asthma")):
        folder = tmp_path / str(n)
        folder.mkdir()
        core = await research_core(secrets_env, folder, research_policy(study=study))
        try:
            outcome = await core.search(parse_query(criteria_for(server, p)))
            mine = [s for s in outcome.patients if s.practice_id == server.practice.id]
            assert mine and all(s.pseudonym for s in outcome.patients)
            seen.append({s.pseudonym for s in mine})
            again = await core.search(parse_query(criteria_for(server, p, practice=False)))
            assert {s.pseudonym for s in again.patients if s.practice_id == server.practice.id} == seen[-1]
        finally:
            await core.close()
    assert seen[0] == seen[1] and not seen[0] & seen[2]


async def test_consent_in_the_policy_list_shows_the_patient_identified(secrets_env, tmp_path, study_key_env) -> None:
    server = fhir_server(secrets_env)
    p = a_plain_patient(server)
    core = await research_core(secrets_env, tmp_path, research_policy(consented=[p.nhs_number]))
    try:
        _outcome, summary = await find_by_criteria(core, server, p)
        assert summary.pseudonym is None and summary.nhs_number == p.nhs_number and summary.local_id == p.local_id
        record = await core.open_record(server.practice.id, summary.local_id)
        assert record.patient.family == p.family and "Research consent recorded" in record.warnings[0]
    finally:
        await core.close()


@pytest.mark.parametrize("everything", [True, False], ids=["everything", "per-type"])
async def test_a_research_consent_from_the_practice_shows_the_record_identified(
        secrets_env, tmp_path, study_key_env, everything: bool) -> None:
    server = fhir_server(secrets_env, everything)
    p = a_plain_patient(server, consent=True)
    core = await research_core(secrets_env, tmp_path, research_policy())
    try:
        _outcome, summary = await find_by_criteria(core, server, p)
        assert summary.pseudonym  # a search cannot know the practice's Consent: pseudonymised until opened
        record = await core.open_record(server.practice.id, summary.pseudonym)
        assert record.research_consent is True and record.round_trips == 1
        assert record.patient.nhs_number == p.nhs_number and record.patient.pseudonym is None
    finally:
        await core.close()


async def test_without_the_study_key_no_non_consented_patient_is_shown(secrets_env, tmp_path,
                                                                    demo_requests) -> None:
    server = fhir_server(secrets_env)
    p = a_plain_patient(server)
    consented = a_plain_patient(fhir_server(secrets_env, everything=False))
    core = await research_core(secrets_env, tmp_path, research_policy(consented=[consented.nhs_number]))
    try:
        outcome = await core.search(parse_query(criteria_for(server, p)))
        result = next(r for r in outcome.results if r.practice_id == server.practice.id)
        assert result.patients == () and "MOSAIC_SECRET_STUDY_DIAB" in (result.note or "")
        assert leaks(text_of(outcome.results), p) == []
        core._remember([p.summary(server.practice.id)])  # as if a search had named the patient
        asked = demo_requests(server)  # the searches' AuditEvents and health checks are not counted
        with pytest.raises(PatientNotFound):  # a record id typed in is never opened in the research view
            await core.open_record(server.practice.id, p.local_id)
        assert asked.asked() == []  # refused before any request
        other = fhir_server(secrets_env, everything=False)
        _found, shown = await find_by_criteria(core, other, consented)
        assert shown.pseudonym is None and shown.local_id == consented.local_id
        record = await core.open_record(other.practice.id, shown.local_id)  # consented: no key needed
        assert record.patient.family == consented.family
        history = await core.access_history()
        assert all(e.patient_nhs_number is None for e in history)
        assert leaks(text_of(history), p) == [] and leaks(text_of(history), consented) == []
    finally:
        await core.close()


async def test_an_unknown_pseudonym_never_reaches_the_practice(secrets_env, tmp_path, study_key_env,
                                                              demo_requests) -> None:
    server = fhir_server(secrets_env)
    core = await research_core(secrets_env, tmp_path, research_policy())
    try:
        asked = demo_requests(server)
        with pytest.raises(PatientNotFound, match="search for the patient again"):
            await core.open_record(server.practice.id, "R-0000-0000-0000")
        assert asked.asked() == []
    finally:
        await core.close()


async def test_a_non_research_role_is_unchanged(secrets_env, tmp_path, study_key_env) -> None:
    server = fhir_server(secrets_env)
    p = a_plain_patient(server)
    core = await research_core(secrets_env, tmp_path, research_policy(role="clinician"))
    try:
        assert core.research_view() is None
        local = await core.resolve_patient(server.practice.id, p.nhs_number)
        assert local == p.local_id
        record = await core.open_record(server.practice.id, local)
        assert record.patient == p.summary(server.practice.id)
    finally:
        await core.close()


# --- the CLI, as a researcher -------------------------------------------------------------------------------

@pytest.fixture
def cli(network, tmp_path, monkeypatch):
    config = network.write_config(tmp_path / "demo.toml")
    monkeypatch.setattr(os_account, "os_login", lambda: LOGIN)  # in-process: the OS account Mosaic sees
    return config


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """Exit status, and standard output then standard error."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + "\n" + out.err


def run_json(capsys, *args: str) -> tuple[int, Any, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, json.loads(out.out), out.out + "\n" + out.err


def test_a_researcher_at_the_cli_finds_patients_by_criteria_and_never_sees_an_identifier(
        cli, network, tmp_path, monkeypatch, capsys, study_key_env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    write_policy(tmp_path, research_policy(), monkeypatch)
    server = fhir_server(network)
    p = a_plain_patient(server)
    pid = server.practice.id
    pseudo = expected_pseudonym(p)

    for asked in (("show", "--json", pid, p.nhs_number), ("search", "--json", p.family, format_date(p.birth_date)),
                  ("search", p.nhs_number), ("show", pid, p.local_id)):
        code, said = run_cli(capsys, "--config", str(cli), *asked)
        assert code == 1 and leaks(said, p) == [] and pseudo not in said, (asked, said)
        assert "find patients by study criteria" in said or "not handed out" in said, said

    code, found = run_cli(capsys, "--config", str(cli), "search", "--json", criteria_for(server, p, practice=False))
    rows = [json.loads(line) for line in found.splitlines() if line.startswith("{")]
    mine = [r for r in rows if r.get("practice") == pid and "id" in r]
    assert code == 0 and pseudo in {r["pseudonym"] for r in mine}
    assert all(r["nhs_number"] is None and r["family"] == "" and r["postcode"] is None for r in rows if "id" in r)
    assert leaks(found, p) == []

    code, data, shown = run_json(capsys, "--config", str(cli), "show", "--json", "--criteria",
                                 criteria_for(server, p), pid, pseudo)
    assert code == 0, shown
    assert data["patient"]["pseudonym"] == pseudo and data["patient"]["id"] == pseudo
    assert data["patient"]["birth_year"] == p.birth_date.year and data["patient"]["nhs_number"] is None
    assert leaks(shown, p) == []
    code, text = run_cli(capsys, "--config", str(cli), "show", "--criteria", criteria_for(server, p), pid, pseudo)
    assert code == 0 and f"Research participant {pseudo}" in text and f"Born {p.birth_date.year}" in text
    assert "NHS No. withheld (research view)" in text and "Research view — pseudonymised" in text
    assert leaks(text, p) == []

    code, listed = run_cli(capsys, "audit", "list")
    assert code == 0 and pseudo in listed and leaks(listed, p) == []
    code, listed_json = run_cli(capsys, "audit", "list", "--json")
    assert code == 0 and pseudo in listed_json and leaks(listed_json, p) == []
    code, csv_text = run_cli(capsys, "audit", "export", "--format", "csv")
    assert code == 0 and pseudo in csv_text and leaks(csv_text, p) == []
    code, bundle = run_cli(capsys, "--config", str(cli), "audit", "export", "--format", "fhir")
    assert code == 0 and leaks(bundle, p) == []
    queries = re.findall(r'"query": "([A-Za-z0-9+/=]+)"', bundle)
    assert queries and leaks("\n".join(base64.b64decode(q).decode() for q in queries), p) == []
    assert app_logs(caplog) and leaks(app_logs(caplog), p) == []

    # the same login as a clinician: the journal never held the NHS number of this research access
    write_policy(tmp_path, research_policy(role="clinician"), monkeypatch)
    code, audited = run_cli(capsys, "audit", "list", "--json")
    assert code == 0 and p.local_id in audited, audited
    for line in audited.splitlines():
        assert p.nhs_number not in line, line


def test_the_cli_without_a_study_key_says_what_to_set(cli, network, tmp_path, monkeypatch, capsys) -> None:
    write_policy(tmp_path, research_policy(), monkeypatch)
    server = fhir_server(network)
    p = a_plain_patient(server)
    code, text = run_cli(capsys, "--config", str(cli), "search", criteria_for(server, p))
    assert code == 0 and "MOSAIC_SECRET_STUDY_DIAB" in text and leaks(text, p) == []
    code, listed = run_cli(capsys, "audit", "list")
    assert code == 0 and leaks(listed, p) == []
