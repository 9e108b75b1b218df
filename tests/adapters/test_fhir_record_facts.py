"""FHIR R4 -> the record facts a clinician reads first (issue 11): death, address and registration on the patient;
problems active/past; medications repeat/acute/past; results with values, ranges, flags and their report;
consultation notes; an allergy's reaction and severity. Known values, the odd shapes servers send, and Synthea."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from adapters.fhir_r4.mapping import (
    ResourceIndex,
    map_entry,
    map_patient,
    map_resources,
    medication_group,
    problem_group,
)
from app.core.model import Address, Measurement, Registration, SectionName
from tests.adapters.test_fhir_mapping import PATIENT_FILES, index_of, resources

REG_URL = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith", "given": ["Jo"]}], **fields}


# --- the patient ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "expected"), [
    ({"deceasedDateTime": "2024-01-03T10:00:00+00:00"}, date(2024, 1, 3)),
    ({"deceasedDateTime": "2024-01-03"}, date(2024, 1, 3)),
    ({"deceasedDateTime": "2024"}, True),  # a year alone: deceased, the date not known
    ({"deceasedBoolean": True}, True),
    ({"deceasedBoolean": False}, False),
    ({}, False),
])
def test_death_is_the_date_when_given_else_true(fields: dict[str, Any], expected: object) -> None:
    summary = map_patient(patient(**fields), "x")
    assert summary.deceased == expected and summary.is_deceased is (expected is not False)


def test_the_home_address_is_chosen_and_an_ended_one_is_not() -> None:
    addresses = [
        {"use": "work", "line": ["1 Office Park"], "city": "Leeds", "postalCode": "LS1 1AA"},
        {"use": "home", "line": ["9 Old Road"], "city": "York", "postalCode": "YO1 1AA",
         "period": {"end": "2001-01-01"}},
        {"use": "home", "line": ["Flat 2", "3 High Street"], "city": "Bradford", "district": "West Yorkshire",
         "postalCode": "bd1  2ab"},
    ]
    summary = map_patient(patient(address=addresses), "x")
    assert summary.address == Address(("Flat 2", "3 High Street"), "Bradford", "West Yorkshire", "BD1 2AB")
    assert summary.postcode == "BD1 2AB"
    only_text = map_patient(patient(address=[{"text": "4 Mill Lane, Otley, LS21 3AB"}]), "x")
    assert only_text.address is not None and only_text.address.one_line() == "4 Mill Lane, Otley, LS21 3AB"
    assert map_patient(patient(), "x").address is None


def test_registration_from_displays_and_the_registration_details_extension() -> None:
    resource = patient(
        generalPractitioner=[{"type": "Organization", "identifier": {"system": ODS, "value": "Y12345"},
                              "display": "Riverside Surgery"},
                             {"reference": "Practitioner/gp1", "display": "Dr A Smith"}],
        extension=[{"url": REG_URL, "extension": [
            {"url": "registrationPeriod", "valuePeriod": {"start": "2015-02-04T00:00:00+00:00"}},
            {"url": "registrationType", "valueCodeableConcept": {"coding": [{"code": "T"}]}}]}])
    assert map_patient(resource, "x").registration == Registration("Y12345", "Riverside Surgery", "Dr A Smith",
                                                                    "Temporary", date(2015, 2, 4))


def test_registration_names_come_from_resources_in_the_same_reply() -> None:
    """$everything brings the practice and the GP: a reference without a display is named from them."""
    gp = {"resourceType": "Practitioner", "id": "gp1", "name": [{"family": "Patel", "given": ["Anjali"],
                                                                 "prefix": ["Dr"]}]}
    org = {"resourceType": "Organization", "id": "o1", "name": "Hillview Family Practice",
           "identifier": [{"system": ODS, "value": "Y90001"}]}
    resource = patient(generalPractitioner=[{"reference": "Practitioner/gp1"}],
                       managingOrganization={"reference": "Organization/o1"})
    index = ResourceIndex((None, r) for r in (gp, org))
    reg = map_patient(resource, "x", index).registration
    assert reg == Registration("Y90001", "Hillview Family Practice", "Dr Anjali Patel", None, None)
    assert map_patient(resource, "x").registration is None  # not at hand: nothing invented, nothing fetched


# --- groups --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "ended", "group"), [
    ("active", False, "active"), ("recurrence", False, "active"), ("relapse", False, "active"),
    ("inactive", False, "past"), ("remission", False, "past"), ("resolved", True, "past"),
    (None, True, "past"), (None, False, None), ("unknown-code", False, None),
])
def test_problem_groups(status: str | None, ended: bool, group: str | None) -> None:
    assert problem_group(status, ended) == group


def condition(status: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": "c", "code": {"text": "Asthma"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": status}]}}


def test_a_condition_carries_its_group() -> None:
    assert map_entry(condition("active")).group == "active"  # type: ignore[union-attr]
    assert map_entry(condition("remission")).group == "past"  # type: ignore[union-attr]
    stu3 = {"resourceType": "Condition", "id": "c", "code": {"text": "Asthma"}, "clinicalStatus": "resolved"}
    assert map_entry(stu3).group == "past"  # type: ignore[union-attr]


def request(status: str, course: str | None = None, **more: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "MedicationRequest", "id": "m", "status": status, "intent": "order",
                                "medicationCodeableConcept": {"text": "Ramipril 5mg capsules"}, **more}
    if course:
        resource["courseOfTherapyType"] = {"coding": [{"code": course}]}
    return resource


@pytest.mark.parametrize(("resource", "group"), [
    (request("active", "continuous"), "repeat"),
    (request("active", "continuous-repeat-dispensing"), "repeat"),  # UK Core
    (request("active", "acute"), "acute"),
    (request("active", extension=[{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-"
                                          "PrescriptionType-1",
                                   "valueCodeableConcept": {"coding": [{"code": "repeat"}]}}]), "repeat"),
    (request("stopped", "continuous"), "past"),
    (request("completed", "acute"), "past"),
    (request("cancelled", "continuous"), "past"),
    (request("entered-in-error", "acute"), "past"),
    (request("active", "continuous", dispenseRequest={"validityPeriod": {"end": "2001-05-01"}}), "past"),
    (request("active"), None),  # the sender does not say
])
def test_medication_groups(resource: dict[str, Any], group: str | None) -> None:
    assert map_entry(resource).group == group  # type: ignore[union-attr]


def test_a_statement_whose_period_has_ended_is_past() -> None:
    statement = {"resourceType": "MedicationStatement", "id": "s", "status": "active",
                 "medicationCodeableConcept": {"text": "Sertraline 50mg tablets"},
                 "effectivePeriod": {"start": "2019-01-01", "end": "2020-01-01"}}
    assert map_entry(statement).group == "past"  # type: ignore[union-attr]
    assert medication_group("active", "continuous", "2999-01-01") == "repeat"


# --- allergies -----------------------------------------------------------------------------------

def test_an_allergy_carries_its_reactions_and_the_gravest_severity() -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a", "code": {"text": "Penicillin"}, "criticality": "high",
               "reaction": [{"manifestation": [{"text": "Urticaria"}], "severity": "moderate"},
                            {"manifestation": [{"text": "Angioedema"}, {"text": "Urticaria"}], "severity": "severe"}]}
    entry = map_entry(allergy)
    assert entry is not None and (entry.reaction, entry.severity) == ("Urticaria, Angioedema", "severe")
    del allergy["reaction"]
    entry = map_entry(allergy)
    assert entry is not None and (entry.reaction, entry.severity) == (None, "high risk")


# --- results -------------------------------------------------------------------------------------

def result(value: Any, *, low: float | None = None, high: float | None = None, flag: str | None = None,
           rid: str = "o1", **more: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation", "id": rid, "status": "final",
                                "code": {"coding": [{"system": "http://loinc.org", "code": "14647-2"}],
                                         "text": "Total cholesterol"}, "effectiveDateTime": "2024-05-01", **more}
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                     "code": "mmol/L"}
    bounds = {k: {"value": v, "unit": "mmol/L"} for k, v in (("low", low), ("high", high)) if v is not None}
    if bounds:
        resource["referenceRange"] = [bounds]
    if flag:
        resource["interpretation"] = [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag}]}]
    return resource


@pytest.mark.parametrize(("value", "flag", "expected"), [
    (6.4, None, "H"),  # no interpretation sent: worked out from the range
    (2.1, None, "L"),
    (4.2, None, None),
    (4.2, "H", "H"),  # the sender's flag stands
    (4.2, "N", "N"),
])
def test_a_value_with_its_range_and_flag(value: float, flag: str | None, expected: str | None) -> None:
    entry = map_entry(result(value, low=2.5, high=5.0, flag=flag))
    assert entry is not None
    assert entry.measurements == (Measurement("Total cholesterol", value, "mmol/L", None, 2.5, 5.0, None, expected,
                                              "14647-2"),)


def test_values_that_are_not_numbers_and_ranges_in_words() -> None:
    bound = result(None, valueQuantity={"value": 5, "comparator": "<", "unit": "mmol/L"})
    (m,) = map_entry(bound).measurements  # type: ignore[union-attr]
    assert (m.value, m.text, m.flag) == (None, "<5 mmol/L", None)
    words = result(None, valueString="Positive", referenceRange=[{"text": "Negative"}],
                   interpretation=[{"text": "Abnormal"}])
    (m,) = map_entry(words).measurements  # type: ignore[union-attr]
    assert (m.text, m.range_text, m.flag) == ("Positive", "Negative", "A")
    coded = result(None, valueCodeableConcept={"text": "Never smoked tobacco"})
    assert map_entry(coded).measurements[0].text == "Never smoked tobacco"  # type: ignore[union-attr]


def test_blood_pressure_components_are_two_values_with_their_codes() -> None:
    bp = {"resourceType": "Observation", "id": "bp", "status": "final", "code": {"text": "Blood pressure"},
          "component": [
              {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}], "text": "Systolic"},
               "valueQuantity": {"value": 162, "unit": "mmHg", "code": "mm[Hg]"},
               "referenceRange": [{"high": {"value": 140}}]},
              {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}], "text": "Diastolic"},
               "valueQuantity": {"value": 84, "unit": "mmHg", "code": "mm[Hg]"}}]}
    entry = map_entry(bp)
    assert entry is not None and entry.detail == "162/84 mmHg"
    assert [(m.name, m.value, m.unit, m.code, m.flag) for m in entry.measurements] == [
        ("Systolic", 162, "mmHg", "8480-6", "H"), ("Diastolic", 84, "mmHg", "8462-4", None)]


def test_results_carry_their_report_and_the_report_heads_them() -> None:
    panel = result(None, rid="panel", code={"text": "Lipid panel"}, hasMember=[{"reference": "Observation/hdl"}])
    hdl = result(1.3, rid="hdl", low=1.0)
    total = result(6.4, rid="tc", high=5.0)
    undated = result(4.0, rid="ldl")
    del undated["effectiveDateTime"]
    report = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "Lipid profile"},
              "effectiveDateTime": "2024-05-01", "conclusion": "Raised cholesterol",
              "result": [{"reference": "Observation/tc"}, {"reference": "Observation/panel"},
                         {"reference": "Observation/ldl"}]}
    loose = result(5.5, rid="loose")
    everything = [report, total, panel, hdl, undated, loose]
    mapped = map_resources(everything, ResourceIndex((None, r) for r in everything))
    by_id = {e.resource_id: e for e in mapped.entries[SectionName.OBSERVATIONS]}
    assert {k: (e.report, e.report_id) for k, e in by_id.items()} == {
        "r1": ("Lipid profile", "r1"), "tc": ("Lipid profile", "r1"), "panel": ("Lipid profile", "r1"),
        "hdl": ("Lipid profile", "r1"), "ldl": ("Lipid profile", "r1"), "loose": (None, None)}
    heading = by_id["r1"]
    assert heading.resource_type == "DiagnosticReport" and "4 results" in (heading.detail or "")
    assert "Raised cholesterol" in (heading.detail or "")
    assert by_id["ldl"].when == "2024-05-01"  # an undated result takes its report's date
    assert by_id["tc"].measurements[0].flag == "H"


# --- consultation notes --------------------------------------------------------------------------

def test_consultation_notes_come_from_the_compositions_that_point_at_the_encounter() -> None:
    visit = {"resourceType": "Encounter", "id": "e1", "status": "finished", "type": [{"text": "Consultation"}],
             "period": {"start": "2024-03-01T09:00:00Z"}}
    other = {"resourceType": "Encounter", "id": "e2", "status": "finished", "type": [{"text": "Telephone"}],
             "period": {"start": "2024-04-01T09:00:00Z"}}
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>Cough for 5 days.</p><p>No fever &amp; eating well.</p></div>'
    note = {"resourceType": "Composition", "id": "n1", "status": "final", "date": "2024-03-01",
            "encounter": {"reference": "Encounter/e1"},
            "section": [{"title": "History", "text": {"status": "generated", "div": div}},
                        {"title": "Plan", "text": {"div": "<div><b>Review</b> in 2 weeks<script>x()</script></div>"},
                         "section": [{"title": "Safety net", "text": {"div": "<div>Return if worse</div>"}}]}]}
    wrong = {**note, "id": "n2", "status": "entered-in-error", "encounter": {"reference": "Encounter/e2"}}
    everything = [visit, other, note, wrong]
    mapped = map_resources(everything, ResourceIndex((None, r) for r in everything))
    notes = {e.resource_id: e.notes for e in mapped.entries[SectionName.ENCOUNTERS]}
    assert notes == {"e1": "History: Cough for 5 days.\nNo fever & eating well.\nPlan: Review in 2 weeks\n"
                           "Safety net: Return if worse", "e2": None}


def test_unreadable_notes_never_sink_the_consultations() -> None:
    visit = {"resourceType": "Encounter", "id": "e1", "status": "finished", "type": [{"text": "Consultation"}]}
    broken = {"resourceType": "Composition", "id": "n1", "encounter": {"reference": "Encounter/e1"},
              "section": "not a list"}
    mapped = map_resources([visit, broken], ResourceIndex((None, r) for r in (visit, broken)))
    assert [e.notes for e in mapped.entries[SectionName.ENCOUNTERS]] == [None] and not mapped.skipped


# --- Synthea --------------------------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.parametrize("path", PATIENT_FILES, ids=lambda p: p.name.split("_")[0])
def test_synthea_results_are_grouped_by_their_reports(path: Any) -> None:
    found = resources(path)
    mapped = map_resources(found, index_of(path))
    observations = mapped.entries[SectionName.OBSERVATIONS]
    reports = [r for r in found if r["resourceType"] == "DiagnosticReport"]
    named = {ref["reference"] for r in reports for ref in r.get("result", [])}
    in_reports = [e for e in observations if e.resource_type == "Observation" and e.report_id]
    assert len(in_reports) == len({n for n in named})  # every result a report names, and only those
    assert {e.report_id for e in in_reports} <= {r["id"] for r in reports}
    assert all(e.measurements for e in observations if e.resource_type == "Observation"
               and any(k.startswith("value") for k in json.loads(json.dumps(_resource(found, e.resource_id)))))
    problems = mapped.entries[SectionName.PROBLEMS]
    assert {e.group for e in problems} <= {"active", "past"} and all(e.group for e in problems)
    for e in mapped.entries[SectionName.MEDICATIONS]:
        assert e.group == ("past" if e.status in ("stopped", "completed") else None)


def _resource(found: list[dict[str, Any]], rid: str | None) -> dict[str, Any]:
    return next(r for r in found if r.get("id") == rid)


# --- the adapter, against the demo practices ----------------------------------------------------------

def _adapter(network: Any, server: Any) -> Any:
    from adapters.fhir_r4 import FhirR4Adapter

    return FhirR4Adapter(server.practice, network.secrets[server.practice.id])


def _with_notes_and_reports(server: Any) -> Any:
    pop = server.population
    return next(p for p in pop if p.deceased is False and pop.resources(p, "DiagnosticReport")
                and pop.resources(p, "Composition"))


@pytest.mark.parametrize("everything", [True, False], ids=["everything", "per-type"])
async def test_a_demo_record_brings_its_reports_notes_and_registration_in_one_round(
        demo_network: Any, everything: bool) -> None:
    server = next(s for s in demo_network.servers if s.gpconnect is None and s.api.supports_everything is everything)
    patient = _with_notes_and_reports(server)
    adapter = _adapter(demo_network, server)
    try:
        await adapter.connect()
        record = await adapter.fetch_record(patient.local_id)
    finally:
        await adapter.close()
    assert record.round_trips == 1 and not record.warnings
    summary = record.patient
    assert summary.registration is not None and summary.registration.practice_ods == server.spec.ods_code
    assert summary.registration.gp == patient.usual_gp and summary.registration.kind in ("Regular", "Temporary")
    assert summary.address is not None and summary.address.postcode == patient.postcode
    resources = server.population.record(patient)
    observations = record.sections[SectionName.OBSERVATIONS].entries
    reported = {e.resource_id for e in observations if e.resource_type == "Observation" and e.report_id}
    assert reported == {ref["reference"].split("/")[1] for r in resources["DiagnosticReport"] for ref in r["result"]}
    noted = {e.resource_id for e in record.sections[SectionName.ENCOUNTERS].entries if e.notes}
    assert noted == {c["encounter"]["reference"].split("/")[1] for c in resources["Composition"]}


async def test_a_failed_report_search_fails_the_results_section(demo_network: Any) -> None:
    server = next(s for s in demo_network.servers if s.gpconnect is None and not s.api.supports_everything)
    patient = _with_notes_and_reports(server)
    adapter = _adapter(demo_network, server)
    try:
        with server.faults.override(mode="http-500", match="/fhir/DiagnosticReport"):
            record = await adapter.fetch_record(patient.local_id)
    finally:
        await adapter.close()
    assert record.sections[SectionName.OBSERVATIONS].status == "failed"
    assert record.sections[SectionName.PROBLEMS].status == "loaded"


async def test_a_reply_about_someone_else_is_refused(demo_network: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that ignores `patient=` and sends another person's problems: the record is not shown."""
    from adapters.base import AdapterError

    server = next(s for s in demo_network.servers if s.gpconnect is None and not s.api.supports_everything)
    pop = server.population
    asked, other = list(pop)[:2]
    real = pop.resources

    def someone_elses(patient: Any, rtype: str) -> list[dict[str, Any]]:
        return real(other if rtype == "Condition" else patient, rtype)

    monkeypatch.setattr(pop, "resources", someone_elses)
    adapter = _adapter(demo_network, server)
    try:
        with pytest.raises(AdapterError, match="different patient"):
            await adapter.fetch_record(asked.local_id)
    finally:
        await adapter.close()
