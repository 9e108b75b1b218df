"""Every GP Connect STU3 example response in ../shared/data/gpconnect-stu3, parsed and mapped."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import date
from typing import Any

import pytest

from adapters.gp_connect.mapping import (
    LIST_WARNING_URL,
    BundleIndex,
    bundle_resources,
    map_structured_bundle,
)
from app.core.model import Measurement, Registration
from app.core.model import SectionName as S
from tests.conftest import GPCONNECT_DIR

FILES = sorted(p.name for p in GPCONNECT_DIR.glob("*.json"))

pytestmark = pytest.mark.shared_data


def _load(name: str) -> dict[str, Any]:
    return json.loads((GPCONNECT_DIR / name).read_text(encoding="utf-8"))


def _counts(bundle: dict[str, Any]) -> Counter[str]:
    return Counter(r.get("resourceType") for _u, r in bundle_resources(bundle))


def _texts(record: Any, section: S) -> list[str]:
    return [e.text for e in record.entries[section] or []]


def _listed_ids(bundle: dict[str, Any]) -> set[str]:
    """Ids of the resources a List entry names (by reference)."""
    return {e["item"]["reference"].split("/", 1)[-1] for _u, r in bundle_resources(bundle)
            if r.get("resourceType") == "List" for e in r.get("entry", []) if "reference" in e.get("item", {})}


def test_all_the_examples_are_here():
    assert len(FILES) == 21  # the data README says 20; the folder holds 21 files, all parsed here


@pytest.mark.parametrize("name", FILES)
def test_every_example_maps_with_counts_matching_the_bundle(name):
    bundle = _load(name)
    record = map_structured_bundle(bundle, "p1")
    counts = _counts(bundle)
    assert record.patient is not None and record.patient.practice_id == "p1"
    assert not any(record.skipped.values()), record.skipped
    resolved_contained = sum(1 for _u, r in bundle_resources(bundle) if r.get("resourceType") == "List"
                             for c in r.get("contained", []) if c.get("resourceType") == "AllergyIntolerance")
    imm_observations = sum(1 for e in record.entries[S.IMMUNISATIONS] or [] if e.resource_type == "Observation")

    def n(section: S) -> int:
        return len(record.entries[section] or [])

    assert n(S.ALLERGIES) == counts["AllergyIntolerance"] + resolved_contained
    assert n(S.MEDICATIONS) == counts["MedicationStatement"]  # every plan in the examples has a statement
    assert n(S.PROBLEMS) == counts["Condition"]
    assert n(S.ENCOUNTERS) == counts["Encounter"]
    assert n(S.IMMUNISATIONS) == counts["Immunization"] + imm_observations
    # a consultation's comment notes are read in its notes; a test group's name is its members' report title
    listed = _listed_ids(bundle)
    comment_notes = sum(1 for _u, r in bundle_resources(bundle) if r.get("resourceType") == "Observation"
                        and r["code"]["coding"][0]["code"] == "37331000000100" and r["id"] in listed)
    groups = sum(1 for _u, r in bundle_resources(bundle) if r.get("resourceType") == "Observation"
                 and any(x.get("type") == "has-member" for x in r.get("related", [])))
    assert n(S.OBSERVATIONS) == (counts["Observation"] - imm_observations - comment_notes - groups
                                 + counts["DiagnosticReport"])
    assert record.warnings == []  # none of the examples carries a List warning


def test_patient_from_the_examples():
    record = map_structured_bundle(_load("meds_response.json"), "p1")
    p = record.patient
    assert (p.local_id, p.nhs_number, p.family, p.given, p.sex, p.postcode) == \
        ("9999999999", "9999999999", "Jackson", ("Jane",), "female", "LS1 5HT")
    assert p.birth_date.isoformat() == "1952-05-31"
    # the pathology example's NHS number fails Modulus 11: the number asked for becomes the local id
    p = map_structured_bundle(_load("pathology_response1.json"), "p1", nhs_number_asked="9690937286").patient
    assert p.family == "REARDON" and p.nhs_number is None and p.local_id == "9690937286"


def test_allergies_active_and_resolved():
    record = map_structured_bundle(_load("allergies_response1.json"), "p1")
    by_text = {e.text: e for e in record.entries[S.ALLERGIES]}
    assert {t: e.status for t, e in by_text.items()} == {
        "Nut allergy": "active", "Allergy to paracetemol": "active", "Amoxicillin 250mg capsules": "active",
        "Aspirin 75mg dispersible tablet": "resolved"}
    resolved = by_text["Aspirin 75mg dispersible tablet"]
    assert "Ended 01-Mar-2018" in resolved.detail and "Vomiting" in resolved.detail
    assert resolved.when.startswith("2011-05-07")
    nut = by_text["Nut allergy"]
    assert nut.coding.code == "256349002" and "criticality high" in nut.detail


def test_no_known_allergies_and_an_empty_list():
    assert _texts(map_structured_bundle(_load("allergies_response2.json"), "p1"), S.ALLERGIES) == ["No known allergy"]
    empty = map_structured_bundle(_load("allergies_response3.json"), "p1")
    assert empty.entries[S.ALLERGIES] == []  # loaded, nothing recorded (List.emptyReason)
    assert empty.entries[S.MEDICATIONS] is None  # not answered at all


def test_medications_statements_with_issues_summarised():
    record = map_structured_bundle(_load("meds_response.json"), "p1")
    meds = record.entries[S.MEDICATIONS]
    assert [m.text for m in meds] == ["Aspirin 75mg dispersible tablets", "Amoxicillin 250mg capsules",
                                      "Amoxicillin 250mg capsules"]
    aspirin = meds[0]
    assert (aspirin.status, aspirin.when, aspirin.resource_type) == ("active", "2016-08-11", "MedicationStatement")
    assert aspirin.detail == "TAKE ONE DAILY; Repeat; last issued 11-Sep-2016, 2 issues"
    assert meds[1].detail == "TAKE ONE DAILY; Acute; last issued 10-May-2016, 1 issue"


def test_consultations_problems_and_odd_ids():
    bundle = _load("consultations_response1.json")
    record = map_structured_bundle(bundle, "p1")
    problems = {e.text: e for e in record.entries[S.PROBLEMS]}
    assert set(problems) >= {"Anxiety with depression", "Swollen legs"}
    assert problems["Anxiety with depression"].status == "active"
    assert problems["Anxiety with depression"].detail == "Major significance"
    encounters = record.entries[S.ENCOUNTERS]
    assert [e.when[:10] for e in encounters] == ["2019-06-01", "2019-05-01", "2019-03-28"]
    assert all(e.text == "Surgery Consultation" and "Miss Nichole Gilbert" in e.detail for e in encounters)
    assert "Anxiety with Depression (History, Examination, Social, Plan)" in encounters[0].detail
    assert "Knee Pain (History, Examination, Plan)" in encounters[2].detail
    meds = record.entries[S.MEDICATIONS]
    assert Counter(m.text for m in meds) == {"Citalopram 20mg tablets": 3, "Amlodipine 10mg tablets": 1,
                                             "Paracetamol 500mg tablets": 1}
    # an id that carries its own type prefix still resolves by the plain reference
    index = BundleIndex()
    for url, r in bundle_resources(bundle):
        index.add(r, url)
    odd = index("MedicationRequest/Consultation1-Topic3-flat-Medication-Order-1")
    assert odd is not None and odd["id"] == "MedicationRequest/Consultation1-Topic3-flat-Medication-Order-1"
    assert index("Consultation1-Topic1-Category-History-Observation-1")["resourceType"] == "Observation"
    alcohol = [e.detail for e in record.entries[S.OBSERVATIONS] if e.text == "Alcohol units consumed per week"]
    assert any(d.startswith("2 units/week") for d in alcohol) and any(d.startswith("0 units/week") for d in alcohol)


def test_not_implemented_parameters_are_reported():
    record = map_structured_bundle(_load("consultations_forwards_response1.json"), "p1")
    assert record.not_implemented == {"includeConsultations", "includeProblems"}


def test_immunisations_given_not_given_and_dissent():
    two = map_structured_bundle(_load("immunizations_response2.json"), "p1").entries[S.IMMUNISATIONS]
    assert [(e.text, e.status, e.when) for e in two] == [
        ("Hepatitis A vaccination not done", "not given", "2019-09-28"),
        ("First hepatitis A vaccination", "completed", "2019-06-28")]
    assert "batch AAJN11K" in two[1].detail
    dissent = map_structured_bundle(_load("immunizations_response3.json"), "p1")
    assert _texts(dissent, S.IMMUNISATIONS) == ["No consent for any immunization"]
    assert dissent.entries[S.OBSERVATIONS] == []


def test_investigations_grouped_by_report_with_values_ranges_and_flags():
    record = map_structured_bundle(_load("pathology_response1.json"), "p1")
    entries = record.entries[S.OBSERVATIONS]
    report = next(e for e in entries if e.resource_type == "DiagnosticReport")
    # titled by its test group, not the generic "Diagnostic studies report"; the group is no line of its own
    assert (report.text, report.report, report.report_id) == ("FBC - Full blood count", "FBC - Full blood count",
                                                              "efae5859-28df-4e7d-be91-6df56d8215e4")
    assert report.detail == "18 results; GREENTOWN GENERAL HOSPITAL"
    values = [e for e in entries if e.resource_type == "Observation"]
    assert len(values) == 18 and len(entries) == 19
    assert all(e.report_id == report.report_id and e.report == "FBC - Full blood count" for e in values)
    assert all(e.when == "2019-04-03T12:00:00+00:00" for e in values)  # undated results take the report's date
    obs = {e.text: e for e in values}
    hb = obs["Haemoglobin estimation"]
    assert hb.detail.startswith("142 g/dL")
    assert hb.measurements == (Measurement("Haemoglobin estimation", 142.0, "g/dL", low=115.0, high=150.0,
                                           code="1022431000000105"),)
    # a range the laboratory wrote in words is kept as written, not parsed
    rbc = obs["Red blood cell count"].measurements[0]
    assert (rbc.low, rbc.high, rbc.range_text, rbc.flag) == (None, None, "less than 3.8 to 5", None)

    psa_record = map_structured_bundle(_load("pathology_response2.json"), "p1").entries[S.OBSERVATIONS]
    psa = next(e for e in psa_record if e.resource_type == "Observation")
    assert psa.text == "Prostate specific antigen level" and psa.detail.startswith("5.9 ug/L")
    # no interpretation sent: 5.9 above the range 0-4 is flagged high from the range
    assert psa.measurements == (Measurement("Prostate specific antigen level", 5.9, "ug/L", low=0.0, high=4.0,
                                            flag="H", code="1030791000000100"),)
    assert psa.report == "Prostate specific antigen level"  # a one-result report is titled by its result


def test_interpretation_as_sent_wins_and_components_are_values_of_their_own():
    bundle = copy.deepcopy(_load("pathology_response2.json"))
    psa = next(r for _u, r in bundle_resources(bundle) if r["resourceType"] == "Observation")
    psa["interpretation"] = {"coding": [{"system": "http://hl7.org/fhir/v2/0078", "code": "HH"}]}
    psa["valueQuantity"] = {"value": 5, "comparator": "<", "unit": "ug/L"}
    entry = next(e for e in map_structured_bundle(bundle, "p1").entries[S.OBSERVATIONS]
                 if e.resource_type == "Observation")
    # a value with a comparator is not a point on a chart: kept as text, with the sender's flag
    assert entry.measurements[0].value is None and entry.measurements[0].text == "<5 ug/L"
    assert entry.measurements[0].flag == "HH"
    record = map_structured_bundle(_load("consultations_response1.json"), "p1")
    bp = next(e for e in record.entries[S.OBSERVATIONS] if e.text == "O/E - blood pressure reading")
    assert [(m.name, m.value, m.unit, m.code) for m in bp.measurements] == [
        ("O/E Systolic BP reading", 130.0, "mmHg", "163030003"),
        ("O/E Diastolic BP reading", 72.0, "mmHg", "163031004")]
    temperature = next(e for e in record.entries[S.OBSERVATIONS] if e.text == "Temperature")
    assert temperature.measurements[0].unit == "°C"  # the UCUM code Cel, not the sender's "C"


def test_uncategorised_observations():
    record = map_structured_bundle(_load("uncategorised_response1.json"), "p1")
    assert [(e.text, e.detail) for e in record.entries[S.OBSERVATIONS]][:1] == [("Temperature", "36.7 C")]


def test_bare_resource_entries_are_tolerated():
    bundle = _load("diaryentries_response1.json")
    kinds = [r["resourceType"] for _u, r in bundle_resources(bundle)]
    assert kinds.count("ProcedureRequest") == 2  # pasted into `entry` without a `resource` wrapper


@pytest.mark.parametrize(("code", "sentence"), [
    ("confidential-items", "Medications: items excluded due to confidentiality and/or patient preferences."),
    ("data-in-transit", "Medications: the patient's record transfer from their previous GP practice is not yet"),
    ("data-awaiting-filing", "Medications: some data is awaiting filing at the practice"),
])
def test_list_warnings_become_sentences_naming_the_section(code, sentence):
    bundle = copy.deepcopy(_load("meds_response.json"))
    for _u, r in bundle_resources(bundle):
        if r["resourceType"] == "List":
            r.setdefault("extension", []).append({"url": LIST_WARNING_URL, "valueCode": code})
    record = map_structured_bundle(bundle, "p1")
    assert len(record.warnings) == 1 and record.warnings[0].startswith(sentence)
    # a section the request did not ask for shows no warning
    assert map_structured_bundle(bundle, "p1", requested={S.ALLERGIES}).warnings == []


def test_sections_not_requested_stay_unanswered():
    record = map_structured_bundle(_load("consultations_response1.json"), "p1", requested={S.PROBLEMS})
    assert len(record.entries[S.PROBLEMS]) == 4
    assert all(record.entries[s] is None for s in S if s is not S.PROBLEMS)


def _patient_resource(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(r for _u, r in bundle_resources(bundle) if r["resourceType"] == "Patient")


def test_address_and_registration_from_the_examples():
    p = map_structured_bundle(_load("meds_response.json"), "p1").patient
    assert p.address.one_line() == "Cable Place, Roundhay, Leeds, West Yorkshire, LS1 5HT"
    # the practice is the managingOrganization, the GP the generalPractitioner, since the registration period
    assert p.registration == Registration(practice_ods="O001", practice_name="The Trevelyan Practice",
                                          gp="Miss Nichole Gilbert", kind=None, since=date(1962, 7, 13))
    assert p.deceased is False and not p.is_deceased
    # generalPractitioner as a lone object rather than a list reads the same
    assert map_structured_bundle(_load("problems_response2.json"), "p1").patient.registration.gp == \
        "Miss Nichole Gilbert"
    # a Patient with none of it says nothing, rather than guessing
    bare = map_structured_bundle(_load("pathology_response1.json"), "p1").patient
    assert (bare.address, bare.registration, bare.deceased) == (None, None, False)


def test_registration_type_branch_and_death():
    bundle = copy.deepcopy(_load("immunizations_response1.json"))
    location = next(r for _u, r in bundle_resources(bundle) if r["resourceType"] == "Location")
    patient = _patient_resource(bundle)
    details = patient["extension"][0]["extension"]
    details.append({"url": "registrationType", "valueCodeableConcept": {"coding": [
        {"system": "https://fhir.nhs.uk/CareConnect-RegistrationType-1", "code": "T"}]}})
    # as published in an example: the branch inside a second RegistrationDetails extension within the first
    details.append({"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1",
                    "extension": [{"url": "preferredBranchSurgery",
                                   "valueReference": {"reference": f"Location/{location['id']}"}}]})
    patient["deceasedDateTime"] = "2024-02-29T08:00:00+00:00"
    p = map_structured_bundle(bundle, "p1").patient
    assert (p.registration.kind, p.registration.branch) == ("Temporary", location["name"])
    assert p.deceased == date(2024, 2, 29) and p.is_deceased
    patient.pop("deceasedDateTime")
    patient["deceasedBoolean"] = True
    assert map_structured_bundle(bundle, "p1").patient.deceased is True
    patient["deceasedDateTime"] = "2024"  # a year only: deceased, the date unknown
    patient.pop("deceasedBoolean")
    assert map_structured_bundle(bundle, "p1").patient.deceased is True


def test_problems_split_active_and_past():
    bundle = copy.deepcopy(_load("consultations_response1.json"))
    conditions = [r for _u, r in bundle_resources(bundle) if r["resourceType"] == "Condition"]
    conditions[1]["clinicalStatus"] = "inactive"
    conditions[2]["abatementDateTime"] = "2019-05-01"
    problems = {e.text: e for e in map_structured_bundle(bundle, "p1").entries[S.PROBLEMS]}
    assert {t: e.group for t, e in problems.items()} == {
        "Anxiety with depression": "active", "Swollen legs": "past", "Upper respiratory infection": "past",
        "Postviral cough": "active"}
    assert problems["Upper respiratory infection"].detail == "Ended 01-May-2019"


def test_medications_split_repeat_acute_and_past():
    bundle = copy.deepcopy(_load("meds_response.json"))
    record = map_structured_bundle(bundle, "p1", today=date(2016, 10, 1))
    assert [(m.text, m.group) for m in record.entries[S.MEDICATIONS]] == [
        ("Aspirin 75mg dispersible tablets", "repeat"), ("Amoxicillin 250mg capsules", "past"),
        ("Amoxicillin 250mg capsules", "past")]
    # an acute course still running is current; a repeat whose period has ended, or that was stopped, is past
    statements = {r["id"]: r for _u, r in bundle_resources(bundle) if r["resourceType"] == "MedicationStatement"}
    amoxicillin = statements["6bff710a-0bdc-4c9b-b98b-40db0a107edc"]
    amoxicillin["status"] = "active"
    amoxicillin["effectivePeriod"] = {"start": "2016-09-25", "end": "2016-10-02"}
    aspirin = statements["791ceb40-db0a-491d-ab0f-22f5a08509fd"]
    aspirin["effectivePeriod"]["end"] = "2016-09-30"
    groups = {m.resource_id: m.group for m in map_structured_bundle(bundle, "p1", today=date(2016, 10, 1))
              .entries[S.MEDICATIONS]}
    assert groups["6bff710a-0bdc-4c9b-b98b-40db0a107edc"] == "acute"
    assert groups["791ceb40-db0a-491d-ab0f-22f5a08509fd"] == "past"
    aspirin["effectivePeriod"].pop("end")
    aspirin["status"] = "stopped"
    plan = next(r for _u, r in bundle_resources(bundle) if r.get("id") == "8e078d04-8312-433a-b6b4-46bf52542b0c")
    plan["extension"][-1]["valueCodeableConcept"]["coding"][0]["code"] = "repeat-dispensing"
    entries = map_structured_bundle(bundle, "p1", today=date(2016, 10, 1)).entries[S.MEDICATIONS]
    assert {m.resource_id: m.group for m in entries}["791ceb40-db0a-491d-ab0f-22f5a08509fd"] == "past"
    aspirin["status"] = "active"
    entries = map_structured_bundle(bundle, "p1", today=date(2016, 10, 1)).entries[S.MEDICATIONS]
    assert {m.resource_id: m.group for m in entries}["791ceb40-db0a-491d-ab0f-22f5a08509fd"] == "repeat"


def test_allergies_carry_reaction_and_severity():
    allergies = {e.text: e for e in map_structured_bundle(_load("allergies_response1.json"), "p1")
                 .entries[S.ALLERGIES]}
    assert (allergies["Nut allergy"].reaction, allergies["Nut allergy"].severity) == ("Anaphalactic shock", "severe")
    assert (allergies["Amoxicillin 250mg capsules"].reaction,
            allergies["Amoxicillin 250mg capsules"].severity) == ("O/E - itchy rash", "mild")
    assert allergies["Aspirin 75mg dispersible tablet"].status == "resolved"
    assert (allergies["Allergy to paracetemol"].reaction, allergies["Allergy to paracetemol"].severity) == (None, None)
    # no reaction severity sent: the criticality stands in
    bundle = copy.deepcopy(_load("allergies_response1.json"))
    nut = next(r for _u, r in bundle_resources(bundle) if r.get("resourceType") == "AllergyIntolerance"
               and r["code"]["coding"][0]["code"] == "256349002")
    nut["reaction"][0].pop("severity")
    nut_entry = next(e for e in map_structured_bundle(bundle, "p1").entries[S.ALLERGIES] if e.text == "Nut allergy")
    assert nut_entry.severity == "high"


def test_consultations_carry_their_notes_by_topic_and_heading():
    record = map_structured_bundle(_load("consultations_response1.json"), "p1")
    latest, middle, first = record.entries[S.ENCOUNTERS]
    assert middle.notes.splitlines() == [
        "Anxiety with Depression",
        "History: Overall doing better. Mood improving. Still gets bad days. Energy levels ok. Motivation improving. "
        "Started to go walking twice a week. First counsellor appointment due in two weeks.",
        "Examination: MSE looks brighter. Not anxious. No DSH/hallucinations/abnormal thoughts",
        "Social: Alcohol units consumed per week 2 units/week",
        # the plan and its issue read alike: said once
        "Plan: Citalopram 20mg tablets, TAKE ONE DAILY; Review in 4 weeks or earlier if problems",
        "Upper respiratory tract infection",
        "History: Patient reports the condition has cleared but develops cough when lies down to sleep.",
        "Plan: Recommend that before sleep, patient has a hot drink. Sleep with head in elevated position."]
    # what the provider could not send is said, not dropped
    assert "Referral items are not supported by the provider system" in first.notes
    assert "Test request items are not supported by the provider system" in first.notes
    assert "Examination: Temperature 36.7 C — Patient looks flushed;" in first.notes
    assert "Pathology report items are not supported by the provider system" in latest.notes
    # the comment notes are in the notes, not listed again as results
    assert not any(e.text == "Comment note" for e in record.entries[S.OBSERVATIONS])
    # without the consultations asked for, comment notes are not dropped anywhere
    alone = map_structured_bundle(_load("consultations_response1.json"), "p1", requested={S.OBSERVATIONS})
    assert any(e.text == "Comment note" for e in alone.entries[S.OBSERVATIONS])


def test_a_malformed_detail_never_sinks_the_record():
    bundle = copy.deepcopy(_load("consultations_response1.json"))
    patient = _patient_resource(bundle)
    patient["extension"] = [{"url": patient["extension"][0]["url"], "extension": "not a list"}]
    consultation = next(r for _u, r in bundle_resources(bundle) if r["resourceType"] == "List"
                        and r["code"]["coding"][0]["code"] == "325851000000107")
    consultation["entry"] = "not a list"
    record = map_structured_bundle(bundle, "p1")
    # the banner's extras are unknown, never guessed; the patient is still the one asked for
    assert record.patient.local_id == "9999999999" and record.patient.registration is None
    # the consultations are listed, and the missing notes are said, not silently dropped
    assert len(record.entries[S.ENCOUNTERS]) == 3 and all(e.notes is None for e in record.entries[S.ENCOUNTERS])
    assert "Consultations and encounters: the notes could not be read and are not shown." in record.warnings
    assert any(e.text == "Comment note" for e in record.entries[S.OBSERVATIONS])  # the text is still there
    pathology = copy.deepcopy(_load("pathology_response1.json"))
    report = next(r for _u, r in bundle_resources(pathology) if r["resourceType"] == "DiagnosticReport")
    report["result"] = "not a list"
    entries = map_structured_bundle(pathology, "p1").entries[S.OBSERVATIONS]
    assert sum(1 for e in entries if e.resource_type == "Observation") == 19  # each result on its own
    assert not any(e.report_id for e in entries if e.resource_type == "Observation")
