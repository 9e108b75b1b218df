"""Issue 10, class 7: the research view re-identified.

A research role never links a direct identifier to the pseudonym of a patient without research consent: it
finds patients by study criteria (a coded condition, an age band, practices) instead of by name, NHS number or
date of birth, which are refused before anything is asked; it opens only what its own searches handed out;
a practice's error text (which may quote a patient) reaches it as a sentence naming the practice; and no
NHS number, name, address or date of birth of such a patient is in any window text, CLI output (text and
--json), audit listing or export, error text, log, or the bytes of the journal file the researcher owns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import keyring
import pytest

from app.cli import main
from app.core import os_account
from app.core.audit.journal import Journal, default_path
from app.core.audit.model import AuditUser
from app.core.display import format_date
from app.core.model import PatientQuery
from app.core.nhs_number import format_nhs_number
from app.core.policy import PolicyError, load_policy
from app.core.query import parse_query
from app.core.secrets import env_name
from app.core.service import MosaicCore, PatientNotFound
from app.demo.clinical_codes import SNOMED
from app.demo.fhir_json import outcome
from app.demo.network import DemoNetwork
from app.demo.population import DemoPatient
from tests.core.test_policy import write_policy
from tests.core.test_research_view import (
    KEY,
    LOGIN,
    a_plain_patient,
    app_logs,
    criteria_for,
    expected_pseudonym,
    leaks,
    research_policy,
    text_of,
)

USER = AuditUser(login=LOGIN, display_name="Research Fellow", role="researcher")  # no patient's name in it
REFUSED = "find patients by study criteria"


def direct_identifiers(text: str, p: DemoPatient) -> list[str]:
    """NHS number, name, address, postcode, phone, date of birth of `p` in `text` (the practice's own record id
    may be in the journal: it travels upstream for the practice's audit, and identifies nobody outside it)."""
    return [found for found in leaks(text, p) if found != p.local_id]


def file_text(path: Path) -> str:
    """The bytes of a SQLite file and its WAL, as text (identifiers are stored as UTF-8)."""
    return "\n".join(f.read_bytes().decode("utf-8", "replace")
                     for f in (path, path.with_name(path.name + "-wal")) if f.exists())


@pytest.fixture(scope="module")
def mixed_network() -> Iterator[DemoNetwork]:
    """Five practices, the 2nd and 4th on GP Connect (as EMIS and SystmOne practices are)."""
    network = DemoNetwork.start(practices=5, patients=200, gp_connect=(1, 3))
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def researcher(mixed_network: DemoNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DemoNetwork:
    """The OS account is a researcher of study 'diab' under the machine's policy; the study key in the keyring."""
    for practice_id, secret in mixed_network.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    keyring.set_password("mosaic", "study-diab", KEY)
    write_policy(tmp_path, research_policy(), monkeypatch)
    monkeypatch.setattr(os_account, "os_login", lambda: LOGIN)
    return mixed_network


def fhir_servers(network: DemoNetwork) -> list[Any]:
    return [s for s in network.servers if s.practice.adapter == "fhir-r4"]


async def research_core(network: DemoNetwork, journal: Path) -> MosaicCore:
    core = MosaicCore(network.practices, journal=Journal.open(journal), user=USER, policy=load_policy(), notify=None)
    await core.sign_in()
    return core


async def test_a_name_nhs_number_or_birth_date_never_gives_a_pseudonym(researcher, tmp_path, demo_requests) -> None:
    network = researcher
    server = fhir_servers(network)[0]
    gp_connect = next(s for s in network.servers if s.practice.adapter == "gp-connect")
    p = a_plain_patient(server)
    core = await research_core(network, tmp_path / "journal.sqlite")
    try:
        asked = demo_requests(*network.servers)
        for query in (PatientQuery(nhs_number=p.nhs_number), PatientQuery(family=p.family, given=p.given[0]),
                      PatientQuery(family=p.family, birth_date=p.birth_date), PatientQuery(birth_date=p.birth_date),
                      parse_query(format_nhs_number(p.nhs_number))):
            with pytest.raises(PolicyError, match=REFUSED) as refused:
                await core.search(query)
            assert expected_pseudonym(p) not in str(refused.value)
        with pytest.raises(PolicyError, match=REFUSED):
            await core.resolve_patient(server.practice.id, p.nhs_number)  # mosaic show PRACTICE NHS-NUMBER
        for practice_id, given in ((server.practice.id, p.local_id), (gp_connect.practice.id, p.nhs_number)):
            with pytest.raises(PatientNotFound):  # an id typed in (GP Connect's is the NHS number) is never opened
                await core.open_record(practice_id, given)
        assert asked.asked() == [], [str(r) for r in asked.asked()]  # refused before any request left
    finally:
        await core.close()
    assert direct_identifiers(file_text(tmp_path / "journal.sqlite"), p) == []


async def test_criteria_search_finds_patients_across_fhir_practices_and_gp_connect_says_it_cannot(
        researcher, tmp_path) -> None:
    network = researcher
    query = parse_query("condition:38341003 age:45-85")  # hypertension
    core = await research_core(network, tmp_path / "journal.sqlite")
    try:
        result = await core.search(query)
    finally:
        await core.close()
    by_practice = {r.practice_id: r for r in result.results}
    assert set(by_practice) == {s.practice.id for s in network.servers}
    after, latest = query.birth_range(date.today())
    for server in network.servers:
        answer = by_practice[server.practice.id]
        if server.practice.adapter == "gp-connect":  # "not provided", never "0 patients"
            assert answer.patients == () and answer.error is None and not answer.queried
            assert "not provided by this practice's system" in (answer.note or "")
            continue
        pop = server.population
        meets = pop.match_condition(SNOMED, "38341003") & pop.match_birth_range(after, latest)
        expected = {expected_pseudonym(pop.at(i)) for i in meets}
        assert expected and {s.pseudonym for s in answer.patients} == expected, server.practice.id
        for s in answer.patients:  # pseudonym, year of birth, sex and practice: nothing else
            assert (s.nhs_number, s.family, s.given, s.birth_date, s.postcode) == (None, "", (), None, None)
            assert s.local_id == s.pseudonym and s.practice_id == server.practice.id
            assert s.birth_year is not None and after.year <= s.birth_year <= latest.year

    narrowed = parse_query(f"condition:38341003 age:45-85 practice:{fhir_servers(network)[1].practice.id}")
    core = await research_core(network, tmp_path / "journal.sqlite")
    try:
        only = await core.search(narrowed)
        assert [r.practice_id for r in only.results] == [fhir_servers(network)[1].practice.id]
    finally:
        await core.close()


async def test_a_practice_error_quoting_a_patient_never_reaches_the_researcher(
        researcher, tmp_path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    network = researcher
    server = fhir_servers(network)[0]
    p = a_plain_patient(server)
    quoting = (f"Record of {p.given[0]} {p.family}, NHS number {format_nhs_number(p.nhs_number)}, born "
               f"{p.birth_date.isoformat()}, {p.postcode}, is locked by another user")
    core = await research_core(network, tmp_path / "journal.sqlite")
    try:
        found = await core.search(parse_query(criteria_for(server, p)))
        summary = next(s for s in found.patients if s.pseudonym == expected_pseudonym(p))
        answer = server.api.dispatch

        def failing(request: Any) -> Any:  # a practice that quotes the patient in its error (HTTP 500 and 409)
            if request.path.endswith("/metadata") or "AuditEvent" in request.path or "oauth" in request.path:
                return answer(request)
            return outcome(409 if "Patient/" in request.path else 500, "conflict", quoting)

        monkeypatch.setattr(server.api, "dispatch", failing)
        searched = await core.search(parse_query(criteria_for(server, p)))
        error = next(r for r in searched.results if r.practice_id == server.practice.id).error
        assert error and server.practice.name in error and direct_identifiers(error, p) == []
        with pytest.raises(Exception) as failed:
            await core.open_record(server.practice.id, summary.pseudonym)
        assert server.practice.name in str(failed.value) and direct_identifiers(str(failed.value), p) == []
        history = await core.access_history()
        assert direct_identifiers(text_of(history), p) == []
    finally:
        await core.close()
    assert direct_identifiers(app_logs(caplog), p) == []
    assert direct_identifiers(file_text(tmp_path / "journal.sqlite"), p) == []


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Exit status, standard output, and both together."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.out + "\n" + out.err


def test_no_identifier_in_cli_output_audit_listings_or_the_journal_file(
        researcher, tmp_path, monkeypatch, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    network = researcher
    server = fhir_servers(network)[0]
    p = a_plain_patient(server)
    restricted = next(q for q in fhir_servers(network)[1].population if q.nhs_number and q.resource is None
                      and q.nhs_number != p.nhs_number)
    other = fhir_servers(network)[1]
    policy = research_policy() + f'\n[practices.{other.practice.id}]\nrestricted = ["{restricted.nhs_number}"]\n'
    write_policy(tmp_path, policy, monkeypatch)
    config = network.write_config(tmp_path / "mine.toml")  # the user's own --config: changes nothing here
    pid, pseudo = server.practice.id, expected_pseudonym(p)
    said: list[str] = []

    for refused in (("search", p.family, format_date(p.birth_date)), ("search", "--json", p.nhs_number),
                    ("show", "--json", pid, p.nhs_number), ("show", pid, p.local_id)):
        code, _out, both = run_cli(capsys, "--config", str(config), *refused)
        assert code != 0 and pseudo not in both, (refused, both)
        said.append(both)
    code, out, both = run_cli(capsys, "--config", str(config), "search", "--json",
                              criteria_for(server, p, practice=False))
    assert code == 0 and pseudo in {json.loads(line).get("pseudonym") for line in out.splitlines()}
    said.append(both)
    for extra in (("--json",), ()):
        code, out, both = run_cli(capsys, "--config", str(config), "show", *extra, "--criteria",
                                  criteria_for(server, p), pid, pseudo)
        assert code == 0 and pseudo in out, both
        said.append(both)
    code, _out, both = run_cli(capsys, "--config", str(config), "show", "--criteria", criteria_for(other, restricted),
                               other.practice.id, expected_pseudonym(restricted))  # restricted: denied, journaled
    assert code == 1 and "break-glass" in both
    said.append(both)

    for listing in (("audit", "list"), ("audit", "list", "--json"), ("audit", "flagged"),
                    ("audit", "flagged", "--json"), ("audit", "export", "--format", "csv"),
                    ("audit", "export", "--format", "fhir")):
        code, out, both = run_cli(capsys, "--config", str(config), *listing)
        assert code == 0 and out, listing
        said.append(both)
    assert pseudo in said[-6] and expected_pseudonym(restricted) in said[-4]

    for patient in (p, restricted):
        assert [x for text in said for x in direct_identifiers(text, patient)] == []
        assert direct_identifiers(app_logs(caplog), patient) == []
        assert direct_identifiers(file_text(default_path()), patient) == []  # the researcher's own journal file
