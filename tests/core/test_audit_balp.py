"""Journal entries as IHE BALP-shaped FHIR R4 AuditEvents: concrete shapes, valid JSON, no nulls."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from app.core.audit.balp import AUDIT_ENTRY_SYSTEM, audit_event, entry_identifier, query_text
from app.core.audit.model import Action, AuditUser, JournalEntry, Outcome
from app.core.model import Practice

PRACTICE = Practice(id="riverside", name="Riverside Surgery", ods_code="Y01234", adapter="fhir-r4",
                    base_url="https://fhir.riverside.example:8443/R4")
USER = AuditUser(login="jsmith", display_name="Dr Jane Smith", role="Salaried GP",
                 professional_ids={"sds_user_id": "555123456789", "sds_role_profile_id": "555000111222"})
WHEN = datetime(2026, 3, 12, 9, 30, 15, 250000, tzinfo=UTC)
ENTRY_ID = "8b0f8f0e-3c55-4a4e-9d5c-2f7f1f0b6a11"


def read_entry(**changes: Any) -> JournalEntry:
    values: dict[str, Any] = dict(
        action=Action.READ, user=USER, practice_id="riverside", practice_ods="Y01234", patient_local_id="p123",
        patient_nhs_number="9434765919", sections=("problems", "medications"), purpose="TREAT",
        workstation="PCN-WS-07", app_version="0.1.0", entry_id=ENTRY_ID, recorded_at=WHEN)
    values.update(changes)
    return JournalEntry(**values)


def coding(element: dict[str, Any]) -> tuple[str, str]:
    c = element["coding"][0] if "coding" in element else element
    return c["system"], c["code"]


def agent(event: dict[str, Any], code: str) -> dict[str, Any]:
    return next(a for a in event["agent"] if coding(a["type"])[1] == code)


def entities(event: dict[str, Any], type_code: str) -> list[dict[str, Any]]:
    return [e for e in event["entity"] if e["type"]["code"] == type_code]


def walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *[x for v in value.values() for x in walk(v)]]
    if isinstance(value, list):
        return [value, *[x for v in value for x in walk(v)]]
    return [value]


def assert_clean_fhir_json(event: dict[str, Any]) -> None:
    text = json.dumps(event, allow_nan=False)
    assert json.loads(text) == event
    for node in walk(event):
        assert node is not None and node != "" and node != [] and node != {}, f"empty value in {text}"


def test_patient_read_has_balp_patientread_shape() -> None:
    event = audit_event(read_entry(), PRACTICE, PRACTICE.base_url)
    assert_clean_fhir_json(event)
    assert event["resourceType"] == "AuditEvent"
    assert event["meta"]["profile"] == ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"]
    assert coding(event["type"]) == ("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest")
    assert [coding(s) for s in event["subtype"]] == [("http://hl7.org/fhir/restful-interaction", "read")]
    assert event["action"] == "R"
    assert event["recorded"] == "2026-03-12T09:30:15.250+00:00"
    assert event["outcome"] == "0" and "outcomeDesc" not in event

    user = agent(event, "IRCP")
    assert coding(user["type"]) == ("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")
    assert user["who"]["identifier"]["value"] == "jsmith"
    assert user["name"] == user["who"]["display"] == "Dr Jane Smith"
    assert user["requestor"] is True
    assert user["altId"] == "555123456789"
    assert user["role"][0] == {"text": "Salaried GP"}
    assert user["role"][1]["coding"][0] == {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id",
                                            "code": "555000111222"}
    assert user["purposeOfUse"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                                 "code": "TREAT", "display": "treatment"}], "text": "TREAT"}]

    client = agent(event, "110153")
    assert coding(client["type"]) == ("http://dicom.nema.org/resources/ontology/DCM", "110153")
    assert client["requestor"] is False
    assert client["network"] == {"address": "PCN-WS-07", "type": "1"}

    server = agent(event, "110152")
    assert server["who"]["identifier"] == {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y01234"}
    assert server["who"]["display"] == "Riverside Surgery"
    assert server["network"] == {"address": "fhir.riverside.example", "type": "1"}
    assert server["requestor"] is False

    assert event["source"]["observer"] == {"display": "Mosaic 0.1.0 on PCN-WS-07"}
    assert event["source"]["site"] == "Y01234"
    assert [coding(t) for t in event["source"]["type"]] == [
        ("http://terminology.hl7.org/CodeSystem/security-source-type", "4")]

    [patient] = entities(event, "1")
    assert patient["role"]["code"] == "1"
    assert patient["what"] == {"reference": "Patient/p123",
                               "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}}
    data = entities(event, "2")
    assert [(d["role"]["code"], d["name"], d["description"]) for d in data] == [
        ("4", "problems", "Problems"), ("4", "medications", "Medications")]
    assert all(d["what"]["display"] for d in data)


def test_entry_id_is_an_entity_identifier_for_conditional_create() -> None:
    entry = read_entry()
    event = audit_event(entry, PRACTICE, PRACTICE.base_url)
    assert entry_identifier(entry) == (AUDIT_ENTRY_SYSTEM, f"urn:uuid:{ENTRY_ID}")
    ids = [e["what"]["identifier"] for e in event["entity"] if "identifier" in e.get("what", {})]
    assert {"system": AUDIT_ENTRY_SYSTEM, "value": f"urn:uuid:{ENTRY_ID}"} in ids
    # the same entry always makes the same event: a retry sends identical content
    assert audit_event(entry, PRACTICE, PRACTICE.base_url) == event


def test_search_has_balp_patientquery_shape_with_base64_query() -> None:
    entry = read_entry(action=Action.SEARCH, sections=(), purpose="Discharge follow-up",
                       details={"query": {"family": "Smith ", "birth_date": "1975-03-12", "given": None},
                                "results": 2})
    event = audit_event(entry, PRACTICE, "http://127.0.0.1:8080/fhir")
    assert_clean_fhir_json(event)
    assert event["meta"]["profile"] == ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery"]
    assert [coding(s) for s in event["subtype"]] == [("http://hl7.org/fhir/restful-interaction", "search-type")]
    assert event["action"] == "E"
    [query] = [e for e in event["entity"] if e.get("role", {}).get("code") == "24"]
    assert query["type"]["code"] == "2"
    # the FHIR search the adapter sent, not Mosaic's own field names
    assert base64.b64decode(query["query"]).decode() == "birthdate=eq1975-03-12&family=Smith"
    assert query["description"] == "birthdate=eq1975-03-12&family=Smith"
    assert "what" not in query  # BALP: entity[query].what 0..0
    assert agent(event, "110152")["network"] == {"address": "127.0.0.1", "type": "2"}
    # free-text purpose stays text
    assert agent(event, "IRCP")["purposeOfUse"] == [{"text": "Discharge follow-up"}]


def test_search_without_a_patient_is_a_plain_query() -> None:
    entry = read_entry(action=Action.SEARCH, patient_local_id=None, patient_nhs_number=None, sections=(),
                       purpose=None, details={"query": "family=Smith"})
    event = audit_event(entry, PRACTICE, PRACTICE.base_url)
    assert_clean_fhir_json(event)
    assert event["meta"]["profile"] == ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query"]
    assert entities(event, "1") == []
    assert "purposeOfUse" not in agent(event, "IRCP")


def test_nhs_number_search_names_the_patient_by_identifier() -> None:
    entry = read_entry(action=Action.SEARCH, patient_local_id=None, patient_nhs_number="943 476 5919", sections=(),
                       details={"query": {"nhs_number": "943 476 5919"}, "results": 1})
    event = audit_event(entry, PRACTICE, PRACTICE.base_url)
    [patient] = entities(event, "1")
    assert patient["what"] == {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}}
    [query] = [e for e in event["entity"] if e.get("role", {}).get("code") == "24"]
    assert base64.b64decode(query["query"]).decode() == \
        "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9434765919"


def test_query_text_falls_back_to_what_names_the_patient() -> None:
    assert query_text(read_entry(action=Action.SEARCH)) == \
        "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9434765919"
    assert query_text(read_entry(action=Action.SEARCH, patient_nhs_number=None)) == "_id=p123"


def test_failures_carry_outcome_and_description_and_claim_no_profile() -> None:
    failed = audit_event(read_entry(outcome=Outcome.FAILURE, outcome_detail="Riverside Surgery did not answer",
                                    sections=()), PRACTICE, PRACTICE.base_url)
    assert_clean_fhir_json(failed)
    assert failed["outcome"] == "8"
    assert failed["outcomeDesc"] == "Riverside Surgery did not answer"
    assert "meta" not in failed
    denied = audit_event(read_entry(outcome=Outcome.DENIED, outcome_detail=None), PRACTICE, PRACTICE.base_url)
    assert denied["outcome"] == "4" and denied["outcomeDesc"] == "Minor failure"


def test_break_glass_is_a_read_for_emergency_treatment() -> None:
    event = audit_event(read_entry(action=Action.BREAK_GLASS, purpose="Collapsed in reception"), PRACTICE,
                        PRACTICE.base_url)
    assert event["action"] == "R"
    [purpose] = agent(event, "IRCP")["purposeOfUse"]
    assert purpose["coding"][0]["code"] == "ETREAT"
    assert purpose["text"] == "Collapsed in reception"


def test_minimal_entry_without_practice_or_optional_fields_is_still_clean() -> None:
    entry = JournalEntry(action=Action.READ, user=AuditUser(login="u1", display_name="U One"), workstation="ws",
                         recorded_at=WHEN, entry_id=ENTRY_ID)
    event = audit_event(entry, None, "http://10.0.0.5/fhir")
    assert_clean_fhir_json(event)
    server = agent(event, "110152")
    assert "identifier" not in server["who"] and server["who"]["display"] == "10.0.0.5"
    assert event["source"]["observer"] == {"display": "Mosaic on ws"}
    assert "site" not in event["source"]


def test_unknown_section_names_are_kept_as_given() -> None:
    event = audit_event(read_entry(sections=("documents",)), PRACTICE, PRACTICE.base_url)
    [data] = entities(event, "2")
    assert data["description"] == "documents" and data["what"]["display"] == "documents"
