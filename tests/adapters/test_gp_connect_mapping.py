"""Every GP Connect STU3 example response in ../shared/data/gpconnect-stu3, parsed and mapped."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from adapters.gp_connect.mapping import (
    LIST_WARNING_URL,
    BundleIndex,
    bundle_resources,
    map_structured_bundle,
)
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
    assert n(S.OBSERVATIONS) == counts["Observation"] - imm_observations + counts["DiagnosticReport"]
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


def test_investigations_with_values_and_units():
    record = map_structured_bundle(_load("pathology_response1.json"), "p1")
    obs = {e.text: e for e in record.entries[S.OBSERVATIONS]}
    assert obs["Diagnostic studies report"].resource_type == "DiagnosticReport"
    assert obs["Haemoglobin estimation"].detail.startswith("142 g/dL")
    assert obs["FBC - Full blood count"].detail == "18 results"
    psa = map_structured_bundle(_load("pathology_response2.json"), "p1").entries[S.OBSERVATIONS]
    assert any(e.text == "Prostate specific antigen level" and e.detail.startswith("5.9 ug/L") for e in psa)


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
