"""FHIR R4 JSON -> core model: every Synthea resource, known values, and the odd things servers send."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from adapters.fhir_r4.mapping import (
    SECTION_OF,
    MalformedResource,
    ResourceIndex,
    choose_name,
    format_number,
    map_entry,
    map_patient,
    map_resources,
    name_parts,
)
from app.core.model import SectionName
from tests.conftest import SYNTHEA_DIR

ALL_FILES = sorted(SYNTHEA_DIR.glob("*.json"))
PATIENT_FILES = [f for f in ALL_FILES if "Information" not in f.name]


@cache
def bundle(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def synthea(prefix: str) -> Path:
    (path,) = [f for f in PATIENT_FILES if f.name.startswith(prefix)]
    return path


def resources(path: Path) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle(path)["entry"]]


def index_of(path: Path) -> ResourceIndex:
    return ResourceIndex((e.get("fullUrl"), e["resource"]) for e in bundle(path)["entry"])


def entry_by_id(path: Path, resource_id: str) -> Any:
    (resource,) = [r for r in resources(path) if r["id"] == resource_id]
    return map_entry(resource, index_of(path))


@pytest.mark.shared_data
def test_the_synthea_data_is_all_there() -> None:
    assert len(ALL_FILES) == 10 and len(PATIENT_FILES) == 8


# --- every file, every resource -----------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name.split("_")[0])
def test_every_section_resource_maps_one_to_one(path: Path) -> None:
    found = resources(path)
    expected = Counter(SECTION_OF[r["resourceType"]] for r in found if r["resourceType"] in SECTION_OF)
    # a DiagnosticReport heads its results in the observations section
    expected[SectionName.OBSERVATIONS] += sum(r["resourceType"] == "DiagnosticReport" for r in found)
    expected = +expected
    mapped = map_resources(found, index_of(path))
    assert not mapped.skipped
    assert {s: len(e) for s, e in mapped.entries.items() if e} == dict(expected)
    for section, entries in mapped.entries.items():
        whens = [e.when for e in entries]
        assert whens == sorted(whens, reverse=True), f"{section} not newest first"
        for e in entries:
            assert e.text.strip() and e.when and e.status and e.resource_id
            assert SECTION_OF.get(e.resource_type or "", SectionName.OBSERVATIONS) is section
            assert e.coding is not None and e.coding.code


@pytest.mark.shared_data
@pytest.mark.parametrize("path", PATIENT_FILES, ids=lambda p: p.name.split("_")[0])
def test_every_patient_maps_with_name_birth_date_sex_and_postcode(path: Path) -> None:
    (patient,) = [r for r in resources(path) if r["resourceType"] == "Patient"]
    summary = map_patient(patient, "demo-1")
    given, family = path.name.split("_")[:2]
    assert (summary.family, summary.given) == (family, (given,))
    assert summary.birth_date == date.fromisoformat(patient["birthDate"])
    assert summary.sex == patient["gender"] and summary.sex in ("male", "female")
    assert summary.postcode == patient["address"][0]["postalCode"]
    assert summary.local_id == patient["id"] and summary.practice_id == "demo-1"
    assert summary.nhs_number is None  # Synthea patients are American: no NHS number


@pytest.mark.shared_data
def test_non_clinical_resources_are_ignored_not_errors() -> None:
    found = resources(synthea("Cody_Larson"))
    others = Counter(r["resourceType"] for r in found if r["resourceType"] not in SECTION_OF)
    assert {"Claim", "ExplanationOfBenefit", "CarePlan", "Procedure", "DiagnosticReport"} <= set(others)
    assert all(map_entry(r) is None for r in found if r["resourceType"] not in SECTION_OF)
    hospitals = map_resources(resources(SYNTHEA_DIR / "hospitalInformation1559319163815.json"))
    assert not any(hospitals.entries.values()) and not hospitals.skipped


# --- known values ---------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_marsha_hayes_known_facts() -> None:
    path = synthea("Marsha_Hayes")
    summary = map_patient(resources(path)[0], "p")
    assert summary.birth_date == date(1980, 7, 30) and summary.sex == "female" and summary.postcode == "02458"

    sprain = entry_by_id(path, "a27887de-c13a-4c75-a049-ac0284bee28a")
    assert (sprain.text, sprain.when, sprain.status) == ("Sprain of ankle", "2021-01-26T08:59:28+00:00", "resolved")
    assert sprain.detail == "Resolved 09-Feb-2021"
    assert sprain.coding.system == "http://snomed.info/sct"

    latex = entry_by_id(path, "48a9b32f-532b-4c42-a701-f295fc096683")
    assert (latex.text, latex.status, latex.detail) == ("Latex allergy", "active", "criticality low")
    assert latex.when == "1984-08-24T08:59:28+00:00"

    visit = entry_by_id(path, "289cbe1c-ff66-4466-9d3c-f021d725e284")
    assert visit.text == "Encounter for symptom" and visit.when == "1984-08-05T08:59:28+00:00"
    # reason, then the serviceProvider and participant named from the resources they reference
    assert visit.detail == ("Reason: Perennial allergic rhinitis with seasonal variation; "
                            "NEWTON-WELLESLEY HOSPITAL; Dr. Rebecca Labadie")

    mapped = map_resources(resources(path), index_of(path))
    problems = [e.text for e in mapped.entries[SectionName.PROBLEMS]]
    assert problems[0] == "Sprain of ankle"  # the newest
    assert len(mapped.entries[SectionName.ALLERGIES]) == 6


@pytest.mark.shared_data
def test_blood_pressure_renders_systolic_over_diastolic() -> None:
    # Synthea lists the diastolic component first (72.2458...) and the systolic second (135.4132...).
    bp = entry_by_id(synthea("Buster_Hoeger"), "37663719-c702-4588-964e-27d987ab94ed")
    assert (bp.text, bp.detail, bp.when) == ("Blood Pressure", "135/72 mmHg", "2013-12-11T13:55:57+00:00")
    bps = [e for e in map_resources(resources(synthea("Cody_Larson"))).entries[SectionName.OBSERVATIONS]
           if e.text == "Blood Pressure"]
    assert bps and all(e.detail and e.detail.endswith(" mmHg") and "/" in e.detail for e in bps)


@pytest.mark.shared_data
def test_observation_values_quantity_and_coded() -> None:
    path = synthea("Buster_Hoeger")
    observations = map_resources(resources(path)).entries[SectionName.OBSERVATIONS]
    smoking = [e for e in observations if e.text == "Tobacco smoking status NHIS"]
    assert smoking and {e.detail for e in smoking} == {"Never smoker"}
    heights = [e for e in observations if e.text == "Body Height"]
    assert heights[0].detail == "185.8 cm"  # newest first; 185.8... cm rounded for reading


@pytest.mark.shared_data
def test_medication_request_with_structured_dosage() -> None:
    path = synthea("Cody_Larson")
    statin = entry_by_id(path, "e84e6d86-3bfd-4f5e-aade-7159b20df761")
    assert (statin.text, statin.status, statin.when) == ("Simvistatin 10 MG", "active",
                                                          "2020-07-03T15:08:18+00:00")
    assert statin.detail == "1, once a day"
    assert statin.coding.code == "316672"


@pytest.mark.shared_data
def test_immunisations_for_cody() -> None:
    imms = map_resources(resources(synthea("Cody_Larson"))).entries[SectionName.IMMUNISATIONS]
    assert len(imms) == 13
    assert (imms[0].text, imms[0].when, imms[0].status) == (
        "Influenza, seasonal, injectable, preservative free", "2020-08-17T15:08:18+00:00", "completed")
    assert imms[-1].when == "2011-06-27T15:08:18+00:00"


@pytest.mark.shared_data
def test_liz_conn_official_name_beats_maiden() -> None:
    summary = map_patient(resources(synthea("Liz_Conn"))[0], "p")
    assert summary.family == "Conn"


# --- hand-written edge cases -------------------------------------------------------------------

def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", **fields}


def test_patient_without_a_name() -> None:
    s = map_patient(patient(), "x")
    assert (s.family, s.given, s.birth_date, s.sex, s.postcode, s.nhs_number) == ("", (), None, None, None, None)


@pytest.mark.parametrize(("text", "family", "given"), [
    ("SMITH, Jane Mary (Mrs)", "SMITH", ("Jane", "Mary")),
    ("Jane Smith", "Smith", ("Jane",)),
    ("Prince", "Prince", ()),
])
def test_text_only_names(text: str, family: str, given: tuple[str, ...]) -> None:
    s = map_patient(patient(name=[{"text": text}]), "x")
    assert (s.family, s.given) == (family, given)


def test_official_name_chosen_though_listed_last_and_old_names_last() -> None:
    names = [
        {"use": "nickname", "given": ["Jo"]},
        {"use": "maiden", "family": "Brown", "given": ["Joanna"]},
        {"family": "Green", "given": ["Joanna"], "period": {"end": "2001-01-01"}},
        {"use": "official", "family": "White", "given": ["Joanna", "May"]},
    ]
    s = map_patient(patient(name=names), "x")
    assert (s.family, s.given) == ("White", ("Joanna", "May"))
    assert name_parts(choose_name(names[:2]) or {}) == ("", ("Jo",))  # nickname beats maiden


def test_family_missing_or_given_missing() -> None:
    assert map_patient(patient(name=[{"given": ["Ann"]}]), "x").family == ""
    assert map_patient(patient(name=[{"family": "Lee"}]), "x").given == ()


@pytest.mark.parametrize(("value", "expected"), [
    ("1975-03-12", date(1975, 3, 12)), ("1975", None), ("1975-03", None), ("1975-02-30", None), (None, None),
])
def test_partial_or_invalid_birth_dates(value: str | None, expected: date | None) -> None:
    assert map_patient(patient(birthDate=value), "x").birth_date == expected


def test_nhs_number_from_either_system_valid_only() -> None:
    new = patient(identifier=[{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "943 476 5919"}])
    old = patient(identifier=[{"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9434765919"}])
    bad = patient(identifier=[{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}])
    other = patient(identifier=[{"system": "urn:local", "value": "9434765919"}])
    assert [map_patient(p, "x").nhs_number for p in (new, old, bad, other)] == ["9434765919", "9434765919",
                                                                                None, None]


def test_postcode_prefers_current_home_address() -> None:
    addresses = [
        {"use": "work", "postalCode": "LS1 4AP"},
        {"use": "home", "postalCode": "ls2  9jt", "period": {"end": "2010-05-01"}},
        {"use": "home", "postalCode": "ls6 2qx"},
    ]
    assert map_patient(patient(address=addresses), "x").postcode == "LS6 2QX"


def test_patient_with_extensions_and_unknown_gender() -> None:
    p = patient(gender="not-a-code", extension=[{"url": "http://example.org/x", "valueString": "y"}],
                name=[{"family": "Ng", "given": ["Al"], "extension": [{"url": "u", "valueCode": "c"}]}])
    s = map_patient(p, "x")
    assert s.sex is None and s.family == "Ng"


def test_a_non_patient_is_malformed() -> None:
    with pytest.raises(MalformedResource):
        map_patient({"resourceType": "Observation", "id": "1"}, "x")


def test_code_without_display_or_text() -> None:
    cond = {"resourceType": "Condition", "id": "c1",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]}}
    e = map_entry(cond)
    assert e.text == "Code 38341003" and e.coding.code == "38341003" and e.when is None and e.status is None


def test_condition_fallbacks_stu3_status_and_no_code() -> None:
    cond = {"resourceType": "Condition", "id": "c2", "clinicalStatus": "active",
            "verificationStatus": {"coding": [{"code": "provisional"}]},
            "onsetPeriod": {"start": "2019-03"}, "extension": [{"url": "x", "valueBoolean": True}]}
    e = map_entry(cond)
    assert (e.text, e.status, e.when) == ("Problem (not named)", "active (provisional)", "2019-03")
    only_string = map_entry({"resourceType": "Condition", "id": "c3", "onsetString": "childhood",
                             "code": {"text": "Asthma"}})
    assert only_string.when == "childhood"


def test_several_codings_prefer_snomed_and_a_display() -> None:
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"coding": [{"system": "http://read.info/readv2", "code": "246.."},
                               {"system": "http://snomed.info/sct", "code": "75367002",
                                "display": "Blood pressure"}]},
           "valueCodeableConcept": {"coding": [{"system": "urn:x", "code": "N", "display": "Normal"}]},
           "effectiveDateTime": "2020-01-02"}
    e = map_entry(obs)
    assert e.text == "Blood pressure" and e.coding.code == "75367002" and e.detail == "Normal"


@pytest.mark.parametrize(("value", "detail"), [
    ({"valueString": "Positive"}, "Positive"),
    ({"valueBoolean": False}, "No"),
    ({"valueInteger": 7}, "7"),
    ({"valueQuantity": {"value": 5.0, "unit": "mmol/L", "comparator": "<"}}, "<5 mmol/L"),
    ({"valueQuantity": {"value": 36.85, "code": "Cel"}}, "36.85 °C"),
    ({"valueRange": {"low": {"value": 1}, "high": {"value": 3, "unit": "g"}}}, "1 to 3 g"),
    ({"dataAbsentReason": {"text": "Patient refused"}}, "No value (Patient refused)"),
    ({"valueQuantity": {"value": 8.1, "unit": "%"}, "interpretation": [{"text": "High"}]}, "8.1 % (High)"),
    ({"component": [{"code": {"text": "Left"}, "valueQuantity": {"value": 6, "unit": "/6"}},
                    {"code": {"text": "Right"}, "valueString": "6/9"}]}, "Left: 6 /6; Right: 6/9"),
    ({}, None),
])
def test_observation_value_kinds(value: dict[str, Any], detail: str | None) -> None:
    obs = {"resourceType": "Observation", "id": "o", "code": {"text": "Test"}, "issued": "2021-02-03T04:05:06Z",
           **value}
    e = map_entry(obs)
    assert e.detail == detail and e.when == "2021-02-03T04:05:06Z"


def test_blood_pressure_with_snomed_component_codes() -> None:
    obs = {"resourceType": "Observation", "id": "bp", "code": {"text": "BP"},
           "component": [
               {"code": {"coding": [{"system": "http://snomed.info/sct", "code": "1091811000000102"}]},
                "valueQuantity": {"value": 80, "unit": "mm[Hg]"}},
               {"code": {"coding": [{"system": "http://snomed.info/sct", "code": "72313002"}]},
                "valueQuantity": {"value": 120, "unit": "mm[Hg]"}}]}
    assert map_entry(obs).detail == "120/80 mmHg"


def test_contained_medication_and_referenced_medication() -> None:
    contained = {"resourceType": "MedicationRequest", "id": "m1", "status": "active",
                 "contained": [{"resourceType": "Medication", "id": "med",
                                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "322236009",
                                                     "display": "Paracetamol 500mg tablets"}]}}],
                 "medicationReference": {"reference": "#med"},
                 "dosageInstruction": [{"text": "Two tablets four times a day"}], "authoredOn": "2022-05"}
    e = map_entry(contained)
    assert (e.text, e.detail, e.when, e.coding.code) == ("Paracetamol 500mg tablets",
                                                         "Two tablets four times a day", "2022-05", "322236009")
    referenced = {"resourceType": "MedicationStatement", "id": "s1", "status": "active",
                  "medicationReference": {"reference": "https://server.example/fhir/Medication/42/_history/3"},
                  "effectivePeriod": {"start": "2020-01-01"}, "dosage": [{"text": "One daily"}]}
    index = ResourceIndex([(None, {"resourceType": "Medication", "id": "42", "code": {"text": "Aspirin 75mg"}})])
    e = map_entry(referenced, index)
    assert (e.text, e.when, e.detail) == ("Aspirin 75mg", "2020-01-01", "One daily")
    display_only = {"resourceType": "MedicationRequest", "id": "m2",
                    "medicationReference": {"reference": "Medication/404", "display": "Amoxicillin 500mg"}}
    assert map_entry(display_only, index).text == "Amoxicillin 500mg"


def test_allergy_with_reactions_and_no_code() -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a1", "criticality": "high",
               "clinicalStatus": {"coding": [{"code": "active"}]},
               "reaction": [{"substance": {"text": "Penicillin"},
                             "manifestation": [{"text": "Hives"}, {"coding": [{"display": "Wheeze"}]}]}],
               "onsetDateTime": "2005"}
    e = map_entry(allergy)
    assert (e.text, e.detail, e.when, e.status) == ("Penicillin", "Hives, Wheeze; criticality high", "2005", "active")


def test_encounter_from_class_only_and_participant_display() -> None:
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
           "participant": [{"individual": {"display": "Dr A Patel"}}],
           "serviceProvider": {"display": "Leeds Road Surgery"}, "period": {"start": "2023-04-05T09:00:00Z"}}
    e = map_entry(enc)
    assert (e.text, e.detail, e.when) == ("Virtual", "Leeds Road Surgery; Dr A Patel", "2023-04-05T09:00:00Z")


def test_immunisation_not_done_and_occurrence_string() -> None:
    imm = {"resourceType": "Immunization", "id": "i1", "status": "not-done",
           "vaccineCode": {"text": "MMR"}, "occurrenceString": "at school",
           "statusReason": {"text": "Parent declined"}}
    e = map_entry(imm)
    assert (e.text, e.when, e.detail) == ("MMR", "at school", "Not given: Parent declined")


def test_a_malformed_resource_is_skipped_and_counted_not_fatal() -> None:
    good = {"resourceType": "Condition", "id": "ok", "code": {"text": "Asthma"}, "onsetDateTime": "2001"}
    bad_code = {"resourceType": "Condition", "id": "bad1", "code": "asthma"}
    bad_coding = {"resourceType": "Observation", "id": "bad2", "code": {"coding": "8480-6"}}
    bad_quantity = {"resourceType": "Observation", "id": "bad3", "code": {"text": "x"},
                    "valueQuantity": {"value": "high"}}
    mapped = map_resources([good, bad_code, bad_coding, bad_quantity, "not a resource", None,
                            {"resourceType": "Claim"}])
    assert [e.resource_id for e in mapped.entries[SectionName.PROBLEMS]] == ["ok"]
    assert mapped.skipped == Counter({SectionName.PROBLEMS: 1, SectionName.OBSERVATIONS: 2})


def test_undated_and_text_dates_sort_last() -> None:
    rows = [{"resourceType": "Condition", "id": i, "code": {"text": i}, **extra} for i, extra in [
        ("a", {"onsetString": "childhood"}), ("b", {"onsetDateTime": "2001"}), ("c", {}),
        ("d", {"onsetDateTime": "2019-05-01"})]]
    order = [e.resource_id for e in map_resources(rows).entries[SectionName.PROBLEMS]]
    assert order[:2] == ["d", "b"] and set(order[2:]) == {"a", "c"}


@pytest.mark.parametrize(("value", "text"), [(155.11789096477264, "155.1"), (72.2458, "72.25"), (3, "3"),
                                             (120.0, "120"), (0.012345, "0.0123")])
def test_numbers_read_like_a_clinician_writes_them(value: float, text: str) -> None:
    assert format_number(value) == text
