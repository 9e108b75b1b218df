"""The GP Connect adapter reading the demo's GP Connect practice over loopback: a record as a clinician reads it
(death, registration, grouped problems and medicines, results by report with ranges and flags, consultation
notes), the same person as the FHIR R4 practice serves, and a shared patient's records disagreeing only where
the demo made them (records.diverge), as the timeline's Differences list shows."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from adapters.base import adapter_for
from app.core.model import PatientRecord, Practice
from app.core.model import SectionName as S
from app.core.timeline import differences
from app.demo.network import DemoNetwork


@pytest.fixture(scope="module")
def network() -> Iterator[DemoNetwork]:
    net = DemoNetwork.start(practices=3, patients=150, gp_connect=(1,))
    try:
        yield net
    finally:
        net.stop()


def _fetch(network: DemoNetwork, practice: Practice, local_id: str) -> PatientRecord:
    async def run() -> PatientRecord:
        adapter = adapter_for(practice, network.secrets.get(practice.id))
        try:
            return await adapter.fetch_record(local_id)
        finally:
            await adapter.close()
    return asyncio.run(run())


def _gpc(network: DemoNetwork) -> tuple[Practice, Any]:
    practice = network.practices[1]
    assert practice.adapter == "gp-connect"
    return practice, network.server(practice.id)


def _open(network: DemoNetwork, patient: Any) -> PatientRecord:
    practice, _ = _gpc(network)
    record = _fetch(network, practice, patient.nhs_number)
    assert record.patient.nhs_number == patient.nhs_number  # always the patient asked for
    return record


def _readable(server: Any) -> list[Any]:
    return [p for p in server.population if p.nhs_number not in server.gpconnect.dissenting]


def test_a_deceased_patient_with_registration_and_nothing_current(network: DemoNetwork) -> None:
    _, server = _gpc(network)
    dead = [p for p in _readable(server) if p.deceased is not False]
    assert dead
    for patient in dead:
        record = _open(network, patient)
        assert record.patient.deceased == patient.deceased and record.patient.is_deceased
        expected = patient.registration()
        got = record.patient.registration
        assert (got.practice_ods, got.practice_name, got.gp, got.kind, got.since) == (
            expected.practice_ods, expected.practice_name, expected.gp, expected.kind, expected.since)
        assert record.patient.address.one_line() == patient.home_address().one_line()
        # repeats were stopped at death: nothing is current
        assert {e.group for e in record.sections[S.MEDICATIONS].entries} <= {"past"}
        if isinstance(patient.deceased, date):
            died = patient.deceased.isoformat()
            assert all((e.when or "")[:10] <= died for s in record.sections.values() for e in s.entries)


def test_problems_and_medicines_grouped_as_the_r4_record_has_them(network: DemoNetwork) -> None:
    _, server = _gpc(network)
    seen: Counter[str] = Counter()
    for patient in [p for p in _readable(server) if p.deceased is False][:25]:
        record = _open(network, patient)
        r4 = server.population.record(patient)
        active = {c["code"]["coding"][0]["code"] for c in r4["Condition"]
                  if c["clinicalStatus"]["coding"][0]["code"] == "active"}
        for entry in record.sections[S.PROBLEMS].entries:
            assert entry.group == ("active" if entry.coding.code in active else "past"), entry
            # the practice's significance (GPC- extension) is said: the demo's past problems are minor ones
            assert (entry.detail or "").startswith("Major" if entry.group == "active" else "Minor"), entry
        by_start = {(m["medicationCodeableConcept"]["text"], m["authoredOn"]): m for m in r4["MedicationRequest"]}
        for entry in record.sections[S.MEDICATIONS].entries:
            request = by_start[(entry.text, entry.when)]
            course = request["courseOfTherapyType"]["coding"][0]["code"]
            if request["status"] != "active":
                expected = "past"
            else:
                expected = "repeat" if course.startswith("continuous") else "acute"
            assert entry.group == expected, (entry, request["status"], course)
            seen[expected] += 1
    assert set(seen) == {"repeat", "acute", "past"}, seen  # the demo shows all three


def test_results_grouped_by_report_with_ranges_and_flags(network: DemoNetwork) -> None:
    _, server = _gpc(network)
    patient = next(p for p in _readable(server) if len(server.population.record(p)["DiagnosticReport"]) >= 2)
    record = _open(network, patient)
    entries = record.sections[S.OBSERVATIONS].entries
    reports = {e.report_id: e for e in entries if e.resource_type == "DiagnosticReport"}
    r4_reports = server.population.record(patient)["DiagnosticReport"]
    assert len(reports) == len(r4_reports)
    # titled as the laboratory named it (the test group), not "Diagnostic studies report"
    assert {e.text for e in reports.values()} == {r["code"]["text"] for r in r4_reports}
    results = [e for e in entries if e.report_id and e.resource_type == "Observation"]
    assert len(results) == sum(len(r["result"]) for r in r4_reports)
    for entry in results:
        assert entry.report == reports[entry.report_id].text
        [value] = entry.measurements
        assert value.value is not None and value.unit and (value.low is not None or value.high is not None)
        if value.high is not None and value.value > value.high:
            assert value.flag == "H"
        elif value.low is not None and value.value < value.low:
            assert value.flag == "L"
        else:
            assert value.flag in (None, "N")
    bp = next((e for e in entries if e.text == "Blood pressure"), None)
    if bp is not None:
        assert [m.name for m in bp.measurements] == ["Systolic blood pressure", "Diastolic blood pressure"]


def test_consultations_carry_the_clinicians_notes(network: DemoNetwork) -> None:
    _, server = _gpc(network)
    patient = next(p for p in _readable(server) if len(server.population.record(p)["Composition"]) >= 2)
    record = _open(network, patient)
    r4 = server.population.record(patient)
    written = {n["encounter"]["reference"].removeprefix("Encounter/"): n for n in r4["Composition"]}
    with_notes = [e for e in record.sections[S.ENCOUNTERS].entries if e.resource_id in written]
    assert with_notes
    for entry in with_notes:
        lines = entry.notes.splitlines()
        for section in written[entry.resource_id]["section"]:
            assert any(line.startswith(f"{section['title']}: ") for line in lines), (section, lines)
    # the free text is in the notes, not listed again among the results
    assert not any(e.text == "Comment note" for e in record.sections[S.OBSERVATIONS].entries)


def test_a_shared_patients_records_disagree_only_where_the_demo_made_them(network: DemoNetwork) -> None:
    practice, _ = _gpc(network)
    practices = {p.id: p for p in network.practices}
    shared = [s for s in network.shared_patients if practice.id in (s.first[0], s.second[0])]
    assert {practice.id == s.first[0] for s in shared} == {True, False}  # first at either kind of practice
    for item in shared:
        records = []
        for practice_id, local_id in (item.first, item.second):
            at = practices[practice_id]
            record = _fetch(network, at, item.nhs_number if at.adapter == "gp-connect" else local_id)
            assert record.patient.nhs_number == item.nhs_number
            records.append((at, record))
        every = differences(records)
        # a GP Connect practice may say a section is incomplete (items withheld as confidential): named, not counted
        assert all(d.kind == "partial" for d in every[:-3]), every
        found = [d for d in every if d.kind not in ("partial", "not-compared")]
        assert Counter(d.kind for d in found) == {"allergy": 1, "medication": 1, "problem": 1}, found
        first = practices[item.first[0]].id
        for difference in found:  # recorded, current or active at the first practice; not at the second
            assert difference.states[0][0] == first
            assert difference.states[0][1] in ("recorded", "current repeat", "active"), difference


def test_a_patient_from_another_town_attends_a_branch_surgery(network: DemoNetwork) -> None:
    _, server = _gpc(network)
    readable = _readable(server)
    away = next(p for p in readable if p.city != server.spec.town)
    home = next(p for p in readable if p.city == server.spec.town)
    assert _open(network, away).patient.registration.branch == f"{server.spec.name}, {away.city} branch surgery"
    assert _open(network, home).patient.registration.branch is None
