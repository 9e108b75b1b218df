"""Demo practices that speak GP Connect Access Record: Structured (STU3), over real loopback HTTP.

The JWT is built here by hand, as the GP Connect specification defines it, so these tests pin the
provider's rules independently of Mosaic's own client adapter.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.core.config import load_directory, load_gp_connect_settings
from app.core.nhs_number import check_digit
from app.demo.gpconnect_api import SPINE_ERROR_SYSTEM
from app.demo.gpconnect_records import LIST_WARNING_URL, SECTIONS
from app.demo.network import DEMO_CONSUMER_ASID, DEMO_CONSUMER_ODS, DemoNetwork
from app.demo.records import ODS_SYSTEM

STRUCTURED = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
METADATA = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
CONSUMER_ASID = "200000000359"
CODES = {key: code for key, (code, _, _) in SECTIONS.items()}
TOP_LEVEL = set(CODES.values())

ALL_SECTIONS: list[dict[str, Any]] = [
    {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": True}]},
    {"name": "includeMedication", "part": [{"name": "includePrescriptionIssues", "valueBoolean": True}]},
    {"name": "includeProblems"},
    {"name": "includeConsultations", "part": [{"name": "includeNumberOfMostRecent", "valuePositiveInt": 3}]},
    {"name": "includeImmunisations"},
    {"name": "includeInvestigations"},
    {"name": "includeUncategorisedData"},
]


@pytest.fixture(scope="module")
def network() -> Iterator[DemoNetwork]:
    net = DemoNetwork.start(practices=3, patients=150, gp_connect=(1,))
    try:
        yield net
    finally:
        net.stop()


@pytest.fixture()
def gpc(network: DemoNetwork) -> Any:
    server = network.servers[1]
    assert server.gpconnect is not None
    yield server
    server.faults.reset()


# -- helpers -----------------------------------------------------------------------------------

def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_for(audience: str, /, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://mosaic.example.nhs.uk", "sub": "user-1", "aud": audience, "iat": now, "exp": now + 300,
        "reason_for_request": "directcare", "requested_scope": "patient/*.read",
        "requesting_device": {"resourceType": "Device", "identifier": [{"system": "https://mosaic.example",
                                                                        "value": "mosaic"}],
                              "model": "Mosaic", "version": "1.0"},
        "requesting_organization": {"resourceType": "Organization", "name": "Test PCN",
                                    "identifier": [{"system": ODS_SYSTEM, "value": "Y99999"}]},
        "requesting_practitioner": {
            "resourceType": "Practitioner", "id": "user-1",
            "name": [{"family": "Jones", "given": ["Sam"], "prefix": ["Dr"]}],
            "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "G12345678"},
                           {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "UNK"}]},
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def token(claims: dict[str, Any], header: dict[str, Any] | None = None, signature: str = "") -> str:
    return f"{_b64(header or {'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.{signature}"


def headers_for(server: Any, interaction: str = STRUCTURED, **changes: str | None) -> dict[str, str]:
    h = {"Ssp-TraceID": str(uuid.uuid4()), "Ssp-From": CONSUMER_ASID, "Ssp-To": server.asid,
         "Ssp-InteractionID": interaction, "Authorization": "Bearer " + token(claims_for(server.base_url)),
         "Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            h.pop(key, None)
        else:
            h[key] = value
    return h


def params(nhs_number: str, sections: list[dict[str, Any]] | None = None, system: str = NHS) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "patientNHSNumber", "valueIdentifier": {"system": system, "value": nhs_number}},
        *(ALL_SECTIONS if sections is None else sections)]}


def post(server: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.post(f"{server.base_url}/Patient/$gpc.getstructuredrecord", json=body,
                      headers=headers or headers_for(server), timeout=10)


def spine_code(response: httpx2.Response) -> str:
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    coding = outcome["issue"][0]["details"]["coding"][0]
    assert coding["system"] == SPINE_ERROR_SYSTEM
    return coding["code"]


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def section_lists(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Top-level section Lists by SNOMED code."""
    out = {}
    for item in resources(bundle, "List"):
        code = item["code"]["coding"][0]["code"]
        if code in TOP_LEVEL:
            out[code] = item
    return out


def ordinary_patient(server: Any) -> Any:
    """A registered patient without dissent or warnings, with a few problems and encounters."""
    api = server.gpconnect
    return next(p for p in server.population if p.nhs_number not in api.dissenting
                and p.nhs_number not in api.warnings and len(server.population.record(p)["Encounter"]) >= 2)


# -- the practice ------------------------------------------------------------------------------

def test_practice_describes_a_gp_connect_endpoint(network: DemoNetwork, tmp_path: Path) -> None:
    practices = network.practices
    assert [p.adapter for p in practices] == ["fhir-r4", "gp-connect", "fhir-r4"]
    gpc = practices[1]
    assert gpc.auth == "none" and gpc.asid is not None and len(gpc.asid) == 12 and gpc.asid.isdigit()
    assert gpc.base_url.endswith("/gpconnect/fhir")
    assert practices[0].asid is None
    path = network.write_config(tmp_path / "practices.toml")
    loaded = {p.id: p for p in load_directory(path)}
    assert loaded[gpc.id].adapter == "gp-connect" and loaded[gpc.id].asid == gpc.asid
    assert loaded[gpc.id].auth == "none" and loaded[gpc.id].base_url == gpc.base_url
    assert loaded[gpc.id].consumer_asid == DEMO_CONSUMER_ASID  # [gp_connect]: Mosaic's own identity
    settings = load_gp_connect_settings(path)
    assert (settings.asid, settings.ods_code) == (DEMO_CONSUMER_ASID, DEMO_CONSUMER_ODS)
    env = (tmp_path / "practices.toml.env").read_text()
    assert gpc.id.upper() not in env  # no secret for a GP Connect practice


def test_default_network_has_no_gp_connect_practices() -> None:
    with DemoNetwork.start(practices=2, patients=10) as net:
        assert all(p.adapter == "fhir-r4" and p.asid is None for p in net.practices)
    with pytest.raises(ValueError):
        DemoNetwork.start(practices=2, patients=10, gp_connect=(2,))


def test_fhir_r4_is_off_at_a_gp_connect_practice(gpc: Any) -> None:
    assert httpx2.get(f"{gpc.url}/fhir/metadata", timeout=5).status_code == 404
    assert httpx2.get(f"{gpc.url}/fhir/Patient", params={"family": "a"}, timeout=5).status_code == 404


def test_metadata(gpc: Any) -> None:
    response = httpx2.get(f"{gpc.base_url}/metadata", headers=headers_for(gpc, METADATA), timeout=5)
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "3.0.1"
    assert statement["software"]["name"] == "Mosaic demo GP Connect"
    assert statement["rest"][0]["operation"][0]["name"] == "gpc.getstructuredrecord"
    # headers are checked here too
    bare = httpx2.get(f"{gpc.base_url}/metadata", timeout=5)
    assert bare.status_code == 400 and spine_code(bare) == "BAD_REQUEST"
    wrong = httpx2.get(f"{gpc.base_url}/metadata", headers=headers_for(gpc, STRUCTURED), timeout=5)
    assert wrong.status_code == 400 and spine_code(wrong) == "BAD_REQUEST"


# -- the structured record ---------------------------------------------------------------------

def test_full_record_is_a_structured_bundle(gpc: Any) -> None:
    patient = ordinary_patient(gpc)
    response = post(gpc, params(patient.nhs_number))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert bundle["meta"]["profile"] == ["https://fhir.nhs.uk/STU3/StructureDefinition/"
                                         "GPConnect-StructuredRecord-Bundle-1"]
    [pat] = resources(bundle, "Patient")
    assert pat["meta"]["profile"] == ["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"]
    assert {"system": NHS, "value": patient.nhs_number}.items() <= pat["identifier"][0].items()
    assert pat["name"][0]["family"] == patient.family and pat["birthDate"] == patient.birth_date.isoformat()
    [org] = resources(bundle, "Organization")
    assert org["identifier"][0] == {"system": ODS_SYSTEM, "value": gpc.spec.ods_code}
    assert resources(bundle, "Practitioner")
    lists = section_lists(bundle)
    assert set(lists) == TOP_LEVEL
    # every reference inside the bundle resolves inside the bundle
    have = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    for item in resources(bundle, "List"):
        for entry in item.get("entry", []):
            assert entry["item"]["reference"] in have
    # the same data as the practice's synthetic record (what a FHIR R4 practice would serve)
    record = gpc.population.record(patient)
    r4_problems = {c["code"]["coding"][0]["code"] for c in record["Condition"]}
    assert {c["code"]["coding"][0]["code"] for c in resources(bundle, "Condition")} == r4_problems
    assert len(lists[CODES["problems"]]["entry"]) == len(record["Condition"])
    assert len(lists[CODES["medications"]].get("entry", [])) == len(record["MedicationRequest"])
    assert len(lists[CODES["immunisations"]].get("entry", [])) == len(record["Immunization"])
    consultations = lists[CODES["consultations"]]["entry"]
    assert len(consultations) == min(3, len(record["Encounter"]))
    assert all(e["item"]["reference"].startswith("Encounter/") for e in consultations)
    requests = resources(bundle, "MedicationRequest")
    plans = [r for r in requests if r["intent"] == "plan"]
    assert len(plans) == len(record["MedicationRequest"])
    assert any(r["intent"] == "order" and r["basedOn"] for r in requests)  # prescription issues
    assert all(s["medicationReference"]["reference"].startswith("Medication/")
               for s in resources(bundle, "MedicationStatement"))


def test_bundle_carries_death_registration_reports_and_notes(gpc: Any) -> None:
    """The issue 11 shapes, as GP Connect providers send them (see ../shared/data/gpconnect-stu3)."""
    population = gpc.population
    dead = next(p for p in population if isinstance(p.deceased, date) and p.nhs_number not in gpc.gpconnect.dissenting)
    [pat] = resources(post(gpc, params(dead.nhs_number)).json(), "Patient")
    assert pat["deceasedDateTime"] == dead.deceased.isoformat()
    details = next(e for e in pat["extension"] if e["url"].endswith("Extension-CareConnect-GPC-RegistrationDetails-1"))
    parts = {x["url"]: x for x in details["extension"]}
    assert parts["registrationType"]["valueCodeableConcept"]["coding"][0]["code"] == dead.registration_type
    assert parts["registrationPeriod"]["valuePeriod"]["start"] == dead.registered_since.isoformat()

    def lab_patient(p: Any) -> bool:
        return p.nhs_number not in gpc.gpconnect.dissenting and any(
            len(r["result"]) > 1 for r in population.record(p)["DiagnosticReport"])
    patient = next(p for p in population if lab_patient(p))
    bundle = post(gpc, params(patient.nhs_number)).json()
    by_id = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in bundle["entry"]}
    reports = resources(bundle, "DiagnosticReport")
    assert reports and all(r["code"]["coding"][0]["code"] == "721981007" for r in reports)  # the generic code
    grouped = [by_id[r["result"][0]["reference"]] for r in reports if len(r["result"]) == 1
               and by_id[r["result"][0]["reference"]].get("related", [{}])[0].get("type") == "has-member"]
    assert grouped, "a report of several values holds a test group"
    group = grouped[0]
    r4_names = {r["code"]["text"] for r in population.record(patient)["DiagnosticReport"]}
    assert group["code"]["text"] in r4_names and "valueQuantity" not in group
    values = [by_id[m["target"]["reference"]] for m in group["related"]]
    assert all(v["valueQuantity"] and v["referenceRange"] and v["related"][0]["type"] == "derived-from"
               for v in values)
    # consultation notes: free text in Comment note observations under History / Examination / Plan
    notes = [o for o in resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == "37331000000100"]
    assert notes and all(o["comment"] for o in notes)
    headings = {lst["title"] for lst in resources(bundle, "List")
                if lst["code"]["coding"][0]["code"] == "24781000000107"}
    assert headings <= {"History", "Examination", "Plan"} and "History" in headings


def test_only_the_requested_sections_come_back(gpc: Any) -> None:
    patient = ordinary_patient(gpc)
    sections = [{"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": False}]},
                {"name": "includeProblems"}]
    bundle = post(gpc, params(patient.nhs_number, sections)).json()
    assert set(section_lists(bundle)) == {CODES["allergies"], CODES["problems"]}
    assert not resources(bundle, "MedicationStatement") and not resources(bundle, "Encounter")
    only_patient = post(gpc, params(patient.nhs_number, [])).json()
    assert section_lists(only_patient) == {}
    assert {e["resource"]["resourceType"] for e in only_patient["entry"]} <= {"Patient", "Organization",
                                                                              "Practitioner", "Location"}
    recent = [{"name": "includeConsultations", "part": [{"name": "includeNumberOfMostRecent", "valueInteger": 1}]}]
    bundle = post(gpc, params(patient.nhs_number, recent)).json()  # valueInteger is accepted too
    assert len(section_lists(bundle)[CODES["consultations"]]["entry"]) == 1
    meds = [{"name": "includeMedication", "part": [{"name": "includePrescriptionIssues", "valueBoolean": False}]}]
    bundle = post(gpc, params(patient.nhs_number, meds)).json()
    assert all(r["intent"] == "plan" for r in resources(bundle, "MedicationRequest"))


def test_empty_section_says_no_content_recorded(gpc: Any) -> None:
    patient = next(p for p in gpc.population if not gpc.population.record(p)["AllergyIntolerance"]
                   and p.nhs_number not in gpc.gpconnect.dissenting)
    sections = [{"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": True}]}]
    lists = section_lists(post(gpc, params(patient.nhs_number, sections)).json())
    for code in (CODES["allergies"], CODES["resolved-allergies"]):
        assert "entry" not in lists[code]
        assert lists[code]["emptyReason"]["coding"][0]["code"] == "no-content-recorded"


# -- refusals ----------------------------------------------------------------------------------

def _bad_jwt(server: Any, **changes: Any) -> str:
    return "Bearer " + token(claims_for(server.base_url, **changes))


BAD_HEADERS: list[tuple[str, Any]] = [
    ("no trace id", lambda s: headers_for(s, Ssp_TraceID=None)),
    ("trace id not a uuid", lambda s: headers_for(s, Ssp_TraceID="trace-1")),
    ("no Ssp-From", lambda s: headers_for(s, Ssp_From=None)),
    ("Ssp-From not an ASID", lambda s: headers_for(s, Ssp_From="12345")),
    ("no Ssp-To", lambda s: headers_for(s, Ssp_To=None)),
    ("Ssp-To another ASID", lambda s: headers_for(s, Ssp_To="918999100000")),
    ("no interaction id", lambda s: headers_for(s, Ssp_InteractionID=None)),
    ("metadata interaction id", lambda s: headers_for(s, METADATA)),
    ("no Authorization", lambda s: headers_for(s, Authorization=None)),
    ("Basic, not Bearer", lambda s: headers_for(s, Authorization="Basic bW9zYWljOng=")),
    ("not a JWT", lambda s: headers_for(s, Authorization="Bearer abc")),
    ("signed", lambda s: headers_for(s, Authorization="Bearer " + token(claims_for(s.base_url), signature="c2ln"))),
    ("alg HS256", lambda s: headers_for(s, Authorization="Bearer " + token(
        claims_for(s.base_url), {"alg": "HS256", "typ": "JWT"}))),
    ("wrong aud", lambda s: headers_for(s, Authorization=_bad_jwt(s, aud="http://127.0.0.1:1/fhir"))),
    ("no iss", lambda s: headers_for(s, Authorization=_bad_jwt(s, iss=None))),
    ("exp not iat + 300", lambda s: headers_for(s, Authorization=_bad_jwt(s, exp=int(time.time()) + 3600))),
    ("expired", lambda s: headers_for(s, Authorization=_bad_jwt(s, iat=int(time.time()) - 1000,
                                                                 exp=int(time.time()) - 700))),
    ("issued in the future", lambda s: headers_for(s, Authorization=_bad_jwt(s, iat=int(time.time()) + 1000,
                                                                              exp=int(time.time()) + 1300))),
    ("reason not directcare", lambda s: headers_for(s, Authorization=_bad_jwt(s, reason_for_request="secondary"))),
    ("organisation scope", lambda s: headers_for(s, Authorization=_bad_jwt(s, requested_scope="organization/*.read"))),
    ("no device", lambda s: headers_for(s, Authorization=_bad_jwt(s, requesting_device=None))),
    ("device not a Device", lambda s: headers_for(s, Authorization=_bad_jwt(
        s, requesting_device={"resourceType": "Organization"}))),
    ("organisation without ODS code", lambda s: headers_for(s, Authorization=_bad_jwt(
        s, requesting_organization={"resourceType": "Organization", "name": "X"}))),
    ("sub is not the practitioner", lambda s: headers_for(s, Authorization=_bad_jwt(s, sub="someone-else"))),
    ("practitioner without role profile", lambda s: headers_for(s, Authorization=_bad_jwt(
        s, requesting_practitioner={"resourceType": "Practitioner", "id": "user-1", "identifier": [
            {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "G1"}]}))),
]


@pytest.mark.parametrize(("why", "make"), BAD_HEADERS, ids=[why for why, _ in BAD_HEADERS])
def test_bad_headers_and_jwts_are_refused(gpc: Any, why: str, make: Any) -> None:
    patient = ordinary_patient(gpc)
    response = post(gpc, params(patient.nhs_number), make(gpc))
    assert response.status_code == 400, why
    assert spine_code(response) == "BAD_REQUEST"


def test_unknown_and_invalid_nhs_numbers(gpc: Any, network: DemoNetwork) -> None:
    registered = {p.nhs_number for s in network.servers for p in s.population}
    unknown = next(n for n in (f"999{i:06d}" for i in range(1000, 99999))
                   if check_digit(n) is not None and f"{n}{check_digit(n)}" not in registered)
    response = post(gpc, params(f"{unknown}{check_digit(unknown)}"))
    assert response.status_code == 404 and spine_code(response) == "PATIENT_NOT_FOUND"
    good = ordinary_patient(gpc).nhs_number
    bad = good[:9] + str((int(good[9]) + 1) % 10)
    response = post(gpc, params(bad))
    assert response.status_code == 400 and spine_code(response) == "INVALID_NHS_NUMBER"
    response = post(gpc, params("12345"))
    assert response.status_code == 400 and spine_code(response) == "INVALID_NHS_NUMBER"
    response = post(gpc, params(good, system="https://example.org/mrn"))
    assert response.status_code == 400 and spine_code(response) == "INVALID_IDENTIFIER_SYSTEM"


def test_bad_parameters(gpc: Any) -> None:
    good = ordinary_patient(gpc).nhs_number
    cases = [
        params(good, [{"name": "includeAllergies"}]),  # includeResolvedAllergies is mandatory
        params(good, [{"name": "includeMedication"}]),  # includePrescriptionIssues is mandatory
        params(good, [{"name": "includeEverything"}]),
        params(good, [{"name": "includeProblems"}, {"name": "includeProblems"}]),
        params(good, [{"name": "includeConsultations", "part": [
            {"name": "includeNumberOfMostRecent", "valuePositiveInt": 0}]}]),
        {"resourceType": "Parameters", "parameter": []},  # no NHS number
    ]
    for body in cases:
        response = post(gpc, body)
        assert response.status_code == 422, body
        assert spine_code(response) == "INVALID_PARAMETER"
    response = post(gpc, {"resourceType": "Patient"})
    assert response.status_code == 422 and spine_code(response) == "INVALID_RESOURCE"


def test_dissenting_patient_is_refused(gpc: Any) -> None:
    api = gpc.gpconnect
    dissenting = sorted(api.dissenting)
    assert dissenting, "the seeded population should hold a few dissenting patients"
    response = post(gpc, params(dissenting[0]))
    assert response.status_code == 403 and spine_code(response) == "NO_PATIENT_CONSENT"


def test_refused_organisation(gpc: Any) -> None:
    api = gpc.gpconnect
    api.refused_organisations.add("Y99999")
    try:
        response = post(gpc, params(ordinary_patient(gpc).nhs_number))
    finally:
        api.refused_organisations.clear()
    assert response.status_code == 403 and spine_code(response) == "NO_ORGANISATION_CONSENT"


# -- warnings, sharing, audit ------------------------------------------------------------------

def test_warnings_on_the_chosen_patients(gpc: Any) -> None:
    api = gpc.gpconnect
    assert api.warnings, "some patients carry List warnings"
    found: set[str] = set()
    for nhs_number, codes in sorted(api.warnings.items()):
        if nhs_number in api.dissenting:
            continue
        bundle = post(gpc, params(nhs_number)).json()
        on_lists = {ext["valueCode"] for item in section_lists(bundle).values()
                    for ext in item.get("extension", []) if ext["url"] == LIST_WARNING_URL}
        assert on_lists == set(codes)
        found |= on_lists
        if found == {"confidential-items", "data-in-transit", "data-awaiting-filing"}:
            break
    assert "confidential-items" in found
    plain = post(gpc, params(ordinary_patient(gpc).nhs_number)).json()
    assert not any(item.get("extension") for item in section_lists(plain).values())


def test_shared_patients_open_at_both_kinds_of_practice(network: DemoNetwork, gpc: Any) -> None:
    shared = [s for s in network.shared_patients if gpc.spec.id in (s.first[0], s.second[0])]
    assert shared
    for item in shared:
        other_id = item.first[0] if item.second[0] == gpc.spec.id else item.second[0]
        other = network.server(other_id)
        assert other.practice.adapter == "fhir-r4"
        assert post(gpc, params(item.nhs_number)).status_code == 200
        assert other.population.by_nhs_number(item.nhs_number) is not None
    assert any(s.nhs_number in gpc.gpconnect.warnings for s in shared)  # the demo can show a warning


def test_every_trace_id_is_recorded(gpc: Any) -> None:
    h = headers_for(gpc)
    post(gpc, params(ordinary_patient(gpc).nhs_number), h)
    trace = gpc.gpconnect.trace(h["Ssp-TraceID"])
    assert trace is not None
    assert trace.interaction_id == STRUCTURED and trace.sub == "user-1" and trace.status == 200
    assert trace.from_asid == CONSUMER_ASID and trace.organisation == "Y99999" and trace.sds_user_id == "G12345678"
    bad = headers_for(gpc, Ssp_To="918999100000")
    post(gpc, params(ordinary_patient(gpc).nhs_number), bad)
    refused = gpc.gpconnect.trace(bad["Ssp-TraceID"])
    assert refused is not None and refused.status == 400 and refused.spine_code == "BAD_REQUEST"


# -- faults and latency ------------------------------------------------------------------------

def test_faults_and_latency_apply(gpc: Any) -> None:
    nhs_number = ordinary_patient(gpc).nhs_number
    with gpc.faults.override(latency_ms=250):
        started = time.monotonic()
        assert post(gpc, params(nhs_number, [])).status_code == 200
        assert time.monotonic() - started >= 0.25
    with gpc.faults.override(mode="http-500", times=1):
        response = post(gpc, params(nhs_number))
        assert response.status_code == 500 and spine_code(response) == "INTERNAL_SERVER_ERROR"
    with gpc.faults.override(mode="auth-fail", times=1):
        response = post(gpc, params(nhs_number))
        assert response.status_code == 403 and spine_code(response) == "ACCESS_DENIED"
    with gpc.faults.override(mode="malformed-json", times=1):
        response = post(gpc, params(nhs_number, []))
        with pytest.raises(ValueError):
            response.json()
    with gpc.faults.override(mode="down", times=1), pytest.raises(httpx2.TransportError):
        post(gpc, params(nhs_number, []))
    assert post(gpc, params(nhs_number, [])).status_code == 200


def test_config_accepts_only_a_twelve_digit_asid(tmp_path: Path) -> None:
    from app.core.config import ConfigError

    text = ('[[practice]]\nid = "oakwood"\nname = "Oakwood"\nods_code = "Y91038"\nadapter = "gp-connect"\n'
            'base_url = "https://gpc.oakwood.example.nhs.uk/fhir"\nasid = "{asid}"\n')
    good = tmp_path / "good.toml"
    good.write_text(text.format(asid="918999198993"), encoding="utf-8")
    assert load_directory(good)[0].asid == "918999198993"
    bad = tmp_path / "bad.toml"
    bad.write_text(text.format(asid="9189"), encoding="utf-8")
    with pytest.raises(ConfigError, match="asid"):
        load_directory(bad)
