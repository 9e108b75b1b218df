"""The GP Connect adapter against a small loopback GP Connect server that checks every request.

The server validates the Spine headers and the JWT as a provider would, records what it saw, and
answers with the real example bundles from ../shared/data/gpconnect-stu3 or with OperationOutcomes.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import app
from adapters.base import AdapterError, adapter_for
from adapters.gp_connect import GpConnectAdapter
from adapters.gp_connect.errors import PROXY_ERRORS, SPINE_ERRORS
from app.core.audit.model import AuditUser
from app.core.config import load_directory
from app.core.model import PatientQuery, Practice, Requester, SectionName
from tests.conftest import GPCONNECT_DIR

OUR_ASID = "200000000359"
PRACTICE_ASID = "918999198738"
NHS = "9999999999"
SPINE = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1"

pytestmark = pytest.mark.shared_data


def _b64decode(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class GpcServer:
    """A loopback GP Connect provider. `reply` decides the answer; every request is validated and kept."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.reply: tuple[int, Any] | None = None
        self.bundle_file = "consultations_response1.json"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json;charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                seen = {"method": method, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                outer.requests.append(seen)
                outer.validate(seen)
                if outer.reply is not None:
                    self._answer(*outer.reply)
                elif method == "GET" and self.path == "/gpc/metadata":
                    self._answer(200, {"resourceType": "CapabilityStatement", "fhirVersion": "3.0.1",
                                       "software": {"name": "EMIS Web", "version": "1.5.0"}})
                elif method == "POST" and self.path == "/gpc/Patient/$gpc.getstructuredrecord":
                    self._answer(200, json.loads((GPCONNECT_DIR / outer.bundle_file).read_text()))
                else:
                    self._answer(404, {"resourceType": "OperationOutcome", "issue": []})

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/gpc"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def validate(self, seen: dict[str, Any]) -> None:
        h = {k.lower(): v for k, v in seen["headers"].items()}
        try:
            uuid.UUID(h["ssp-traceid"])
            assert h["ssp-from"] == OUR_ASID and h["ssp-to"] == PRACTICE_ASID
            assert h["accept"].startswith("application/fhir+json")
            header, claims, signature = h["authorization"].removeprefix("Bearer ").split(".")
            assert signature == ""
            assert _b64decode(header) == {"alg": "none", "typ": "JWT"}
            c = _b64decode(claims)
            assert c["aud"] == self.base and c["exp"] - c["iat"] == 300
            assert c["reason_for_request"] == "directcare"
            assert c["sub"] == c["requesting_practitioner"]["id"]
        except (KeyError, ValueError, AssertionError) as exc:
            self.problems.append(f"{seen['method']} {seen['path']}: {exc!r}")

    def claims(self, i: int = -1) -> dict[str, Any]:
        auth = {k.lower(): v for k, v in self.requests[i]["headers"].items()}["authorization"]
        return _b64decode(auth.removeprefix("Bearer ").split(".")[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[GpcServer]:
    s = GpcServer()
    yield s
    s.close()
    assert not s.problems, s.problems


def _practice(base: str, **kw: Any) -> Practice:
    return Practice(id="emis1", name="Riverside Surgery", ods_code="A12345", adapter="gp-connect", base_url=base,
                    asid=PRACTICE_ASID, consumer_asid=OUR_ASID, consumer_ods="Y01234", **kw)


@pytest.fixture
async def adapter(server: GpcServer) -> Any:
    a = GpConnectAdapter(_practice(server.base), None)
    yield a
    await a.close()


async def test_connect_reads_stu3_metadata_with_metadata_interaction(adapter, server):
    info = await adapter.connect()
    assert info.fhir_version == "3.0.1" and info.software == "EMIS Web 1.5.0" and info.round_trip_ms > 0
    h = server.requests[0]["headers"]
    assert h["Ssp-InteractionID"] == "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
    assert server.claims()["requested_scope"] == "organization/*.read"
    assert info.extra["trace_id"] == h["Ssp-TraceID"]


async def test_connect_refuses_an_r4_server(adapter, server):
    server.reply = (200, {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"})
    with pytest.raises(AdapterError) as info:
        await adapter.connect()
    assert info.value.kind == "config" and "STU3" in info.value.message


async def test_every_request_has_fresh_trace_id_and_jwt_with_the_required_claims(adapter, server):
    one = await adapter.fetch_record(NHS)
    two = await adapter.fetch_record(NHS)
    first, second = server.requests
    assert first["headers"]["Ssp-TraceID"] != second["headers"]["Ssp-TraceID"]
    assert first["headers"]["Authorization"] != second["headers"]["Authorization"] or \
        server.claims(0)["iat"] == server.claims(1)["iat"]  # same second: same claims, still built afresh
    assert (one.trace_id, two.trace_id) == (first["headers"]["Ssp-TraceID"], second["headers"]["Ssp-TraceID"])
    h = first["headers"]
    assert h["Ssp-InteractionID"] == "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
    assert h["Content-Type"] == "application/fhir+json"
    c = server.claims(0)
    assert c["iss"] == "https://mosaic-gp.uk"
    assert c["aud"] == server.base
    assert c["exp"] - c["iat"] == 300
    assert c["requested_scope"] == "patient/*.read" and c["reason_for_request"] == "directcare"
    device = c["requesting_device"]
    assert device["resourceType"] == "Device" and device["model"] == "Mosaic"
    assert device["version"] == app.__version__ and device["identifier"][0]["value"] == "mosaic"
    org = c["requesting_organization"]
    assert org["resourceType"] == "Organization"
    assert org["identifier"] == [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y01234"}]
    who = c["requesting_practitioner"]
    ids = {i["system"]: i["value"] for i in who["identifier"]}
    assert ids["https://fhir.nhs.uk/Id/sds-user-id"] == "UNK"  # before sign-in: the OS login, ids unknown
    assert ids["https://fhir.nhs.uk/Id/sds-role-profile-id"] == "UNK"
    assert c["sub"] == who["id"] and who["name"][0]["family"]


async def test_set_requester_puts_the_signed_in_person_in_the_jwt(adapter, server):
    adapter.set_requester(Requester(user_id="jsmith", family="Smith", given=("Jane",), sds_user_id="G13579135",
                                    sds_role_profile_id="PT1234", org_ods="Y05678"))
    await adapter.fetch_record(NHS)
    c = server.claims()
    who = c["requesting_practitioner"]
    assert c["sub"] == "jsmith" == who["id"]
    assert who["name"] == [{"family": "Smith", "given": ["Jane"]}]
    ids = {i["system"]: i["value"] for i in who["identifier"]}
    assert ids["https://fhir.nhs.uk/Id/sds-user-id"] == "G13579135"
    assert ids["https://fhir.nhs.uk/Id/sds-role-profile-id"] == "PT1234"
    assert c["requesting_organization"]["identifier"][0]["value"] == "Y05678"
    # the core's signed-in user (AuditUser) works too; a missing role profile is UNK, never invented
    adapter.set_requester(AuditUser(login="pbrown", display_name="Priya Brown",
                                    professional_ids={"sds_user_id": "555000111222"}))
    await adapter.fetch_record(NHS)
    who = server.claims()["requesting_practitioner"]
    ids = {i["system"]: i["value"] for i in who["identifier"]}
    assert who["id"] == "pbrown" and who["name"] == [{"family": "Brown", "given": ["Priya"]}]
    assert ids["https://fhir.nhs.uk/Id/sds-role-profile-id"] == "UNK"
    assert server.claims()["requesting_organization"]["identifier"][0]["value"] == "Y01234"  # from config


async def test_parameters_body_asks_for_every_clinical_area(adapter, server):
    await adapter.fetch_record("999 999 9999")
    body = server.requests[0]["body"]
    assert body["resourceType"] == "Parameters"
    params = {p["name"]: p for p in body["parameter"]}
    assert params["patientNHSNumber"]["valueIdentifier"] == {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                                             "value": NHS}
    assert params["includeAllergies"]["part"] == [{"name": "includeResolvedAllergies", "valueBoolean": True}]
    assert params["includeMedication"]["part"] == [{"name": "includePrescriptionIssues", "valueBoolean": True}]
    assert params["includeConsultations"]["part"] == [{"name": "includeNumberOfMostRecent", "valueInteger": 20}]
    for name in ("includeProblems", "includeImmunisations", "includeInvestigations", "includeUncategorisedData"):
        assert name in params
    assert len(params) == 8


async def test_fetch_record_end_to_end(adapter, server):
    record = await adapter.fetch_record(NHS)
    assert record.round_trips == 1 and len(server.requests) == 1
    assert record.patient.local_id == NHS and record.patient.family == "Jackson"
    s = record.sections
    assert len(s[SectionName.PROBLEMS].entries) == 4 and s[SectionName.PROBLEMS].status == "loaded"
    assert len(s[SectionName.ENCOUNTERS].entries) == 3
    assert len(s[SectionName.MEDICATIONS].entries) == 5
    # the consultations example has no allergy or immunisation List: those sections failed, never "none"
    assert s[SectionName.ALLERGIES].status == "failed"
    assert s[SectionName.IMMUNISATIONS].status == "failed"


async def test_not_implemented_parameters_make_sections_unsupported(adapter, server):
    server.bundle_file = "consultations_forwards_response1.json"
    record = await adapter.fetch_record(NHS)
    assert record.sections[SectionName.PROBLEMS].status == "unsupported"
    assert record.sections[SectionName.ENCOUNTERS].status == "unsupported"
    assert record.sections[SectionName.ALLERGIES].status == "loaded"
    assert len(record.sections[SectionName.MEDICATIONS].entries) == 2


async def test_search_by_nhs_number_asks_for_no_clinical_area(adapter, server):
    found = await adapter.search(PatientQuery(nhs_number="999 999 9999"))
    assert [(p.local_id, p.nhs_number, p.family) for p in found] == [(NHS, NHS, "Jackson")]
    assert [p["name"] for p in server.requests[0]["body"]["parameter"]] == ["patientNHSNumber"]
    assert GpConnectAdapter.supports_demographic_search is False


async def test_search_by_name_or_date_returns_nothing_without_asking(adapter, server):
    assert await adapter.search(PatientQuery(family="Jackson")) == []
    assert await adapter.search(PatientQuery(nhs_number="1234567890")) == []  # fails Modulus 11
    assert server.requests == []


async def test_search_patient_not_found_is_an_empty_result(adapter, server):
    server.reply = (404, _outcome("PATIENT_NOT_FOUND"))
    assert await adapter.search(PatientQuery(nhs_number=NHS)) == []


def _outcome(code: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"]},
            "issue": [{"severity": "error", "code": "processing",
                       "details": {"coding": [{"system": SPINE, "code": code, "display": code}]},
                       "diagnostics": "internal details a user should not see"}]}


_STATUS = {"PATIENT_NOT_FOUND": 404, "NO_RECORD_FOUND": 404, "ORGANISATION_NOT_FOUND": 404,
           "PRACTITIONER_NOT_FOUND": 404, "INTERNAL_SERVER_ERROR": 500, "NOT_IMPLEMENTED": 501,
           "INVALID_RESOURCE": 422, "INVALID_PARAMETER": 422, "REFERENCE_NOT_FOUND": 422}


@pytest.mark.parametrize("code", sorted(SPINE_ERRORS))
async def test_every_spine_error_code_is_a_plain_message(adapter, server, code):
    status = _STATUS.get(code, 403 if code.startswith(("NO_", "NON_", "ACCESS")) else 400)
    server.reply = (status, _outcome(code))
    with pytest.raises(AdapterError) as info:
        await adapter.fetch_record(NHS)
    kind, template = SPINE_ERRORS[code]
    assert info.value.message == template.format(practice="Riverside Surgery")
    assert info.value.kind == kind and getattr(info.value, "status", None) == status
    assert "Riverside Surgery" in info.value.message and "internal details" not in info.value.message


async def test_no_patient_consent_says_what_to_do(adapter, server):
    server.reply = (403, _outcome("NO_PATIENT_CONSENT"))
    with pytest.raises(AdapterError) as info:
        await adapter.fetch_record(NHS)
    assert "has not consented" in info.value.message and "practice's own system" in info.value.message


@pytest.mark.parametrize("status", sorted(PROXY_ERRORS))
async def test_spine_proxy_gateway_errors(adapter, server, status):
    server.reply = (status, {"resourceType": "OperationOutcome",
                             "issue": [{"severity": "error", "code": "transient", "diagnostics": "down"}]})
    with pytest.raises(AdapterError) as info:
        await adapter.fetch_record(NHS)
    assert info.value.message == PROXY_ERRORS[status][1].format(practice="Riverside Surgery")
    assert f"HTTP {status}" in info.value.message


async def test_missing_asids_are_a_config_error_before_any_request(server):
    a = GpConnectAdapter(Practice(id="x", name="X Surgery", ods_code="A1", adapter="gp-connect",
                                  base_url=server.base), None)
    with pytest.raises(AdapterError) as info:
        await a.fetch_record(NHS)
    assert info.value.kind == "config" and "asid" in info.value.message
    assert server.requests == []
    await a.close()


async def test_config_keys_reach_the_adapter(tmp_path, server):
    file = tmp_path / "practices.toml"
    file.write_text(f"""
[gp_connect]
asid = "{OUR_ASID}"
ods_code = "y01234"

[[practice]]
id = "emis1"
name = "Riverside Surgery"
ods_code = "A12345"
adapter = "gp-connect"
base_url = "{server.base}"
asid = "{PRACTICE_ASID}"
""")
    (practice,) = load_directory(file)
    assert (practice.asid, practice.consumer_asid, practice.consumer_ods) == (PRACTICE_ASID, OUR_ASID, "Y01234")
    a = adapter_for(practice, None)
    assert isinstance(a, GpConnectAdapter)
    record = await a.fetch_record(NHS)
    assert record.patient.nhs_number == NHS
    await a.close()


def test_gp_connect_table_is_validated(tmp_path):
    from app.core.config import ConfigError, load_gp_connect_settings

    file = tmp_path / "p.toml"
    file.write_text('[gp_connect]\nasid = "12"\n')
    with pytest.raises(ConfigError, match="12-digit"):
        load_gp_connect_settings(file)
    file.write_text('[gp_connect]\nfoo = "x"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_gp_connect_settings(file)
