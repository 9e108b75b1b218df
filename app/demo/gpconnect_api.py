"""GP Connect Access Record: Structured (FHIR STU3) as a demo practice provides it: a request in, a reply out.

Every request is checked as a GP Connect provider (behind the Spine Secure Proxy) checks it: the Ssp-*
headers and the consumer's JWT (alg "none", empty signature, the claims of the GP Connect
specification). Refusals are OperationOutcomes carrying Spine error codes. Each request's trace id is
kept in `traces`, the provider's side of the audit join.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from app import __version__
from app.core.nhs_number import NHS_NUMBER_SYSTEM, check_digit
from app.demo.fhir_api import Request
from app.demo.fhir_json import Reply, json_reply, now_iso
from app.demo.gpconnect_records import (
    Options,
    Period,
    StructuredRecordBuilder,
    patient_dissents,
    patient_warnings,
)
from app.demo.population import Population, hash_seed
from app.demo.records import ODS_SYSTEM

Resource = dict[str, Any]

PREFIX = "/gpconnect/fhir"
SOFTWARE_NAME = "Mosaic demo GP Connect"
SPINE_ERROR_SYSTEM = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1"
OUTCOME_PROFILE = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"
STRUCTURED_INTERACTION = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
METADATA_INTERACTIONS = frozenset({"urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
                                   "urn:nhs:names:services:gpconnect:structured:fhir:rest:read:metadata-1"})
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
SDS_ROLE_SYSTEM = "https://fhir.nhs.uk/Id/sds-role-profile-id"
JWT_LIFETIME_S = 300
CLOCK_SKEW_S = 60
_ASID = re.compile(r"\d{12}")

#: Spine error code -> (HTTP status, FHIR issue type, display)
SPINE_ERRORS: dict[str, tuple[int, str, str]] = {
    "BAD_REQUEST": (400, "invalid", "Bad request"),
    "INVALID_NHS_NUMBER": (400, "value", "NHS number invalid"),
    "INVALID_IDENTIFIER_SYSTEM": (400, "value", "Invalid identifier system"),
    "INVALID_RESOURCE": (422, "invalid", "Invalid validation of resource"),
    "INVALID_PARAMETER": (422, "invalid", "Submitted parameter is not valid."),
    "ACCESS_DENIED": (403, "forbidden", "Access denied"),
    "NO_PATIENT_CONSENT": (403, "forbidden", "Patient has not provided consent to share data"),
    "NO_ORGANISATION_CONSENT": (403, "forbidden", "Organisation has not provided consent to share data"),
    "PATIENT_NOT_FOUND": (404, "not-found", "Patient not found"),
    "NOT_IMPLEMENTED": (501, "not-supported", "Not implemented"),
    "INTERNAL_SERVER_ERROR": (500, "exception", "Internal server error"),
}

_SECTIONS = {"includeAllergies", "includeMedication", "includeProblems", "includeConsultations",
             "includeImmunisations", "includeInvestigations", "includeUncategorisedData"}
_PARTS: dict[str, dict[str, str]] = {  # parameter -> part name -> value[x]
    "includeAllergies": {"includeResolvedAllergies": "valueBoolean"},
    "includeMedication": {"includePrescriptionIssues": "valueBoolean", "medicationSearchFromDate": "valueDate"},
    "includeProblems": {"filterStatus": "valueCode", "filterSignificance": "valueCode"},
    "includeConsultations": {"consultationSearchPeriod": "valuePeriod",
                             "includeNumberOfMostRecent": "valueInteger|valuePositiveInt"},
    "includeImmunisations": {},
    "includeInvestigations": {},
    "includeUncategorisedData": {"uncategorisedDataSearchPeriod": "valuePeriod"},
}
_REQUIRED_PARTS = {"includeAllergies": "includeResolvedAllergies", "includeMedication": "includePrescriptionIssues"}


class SpineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def spine_outcome(code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    status, issue, display = SPINE_ERRORS[code]
    body = {"resourceType": "OperationOutcome", "id": str(uuid.uuid4()), "meta": {"profile": [OUTCOME_PROFILE]},
            "issue": [{"severity": "error", "code": issue,
                       "details": {"coding": [{"system": SPINE_ERROR_SYSTEM, "code": code, "display": display}]},
                       "diagnostics": message}]}
    return json_reply(status, body, headers)


@dataclass(frozen=True)
class GpcTrace:
    """One request as the provider saw it: enough to join its audit trail with the consumer's."""

    at: datetime
    trace_id: str | None
    interaction_id: str | None
    from_asid: str | None
    sub: str | None  # the requesting practitioner's id from the JWT
    sds_user_id: str | None
    organisation: str | None  # the requesting organisation's ODS code
    status: int
    spine_code: str | None = None  # the error returned, if any
    nhs_number_hash: str | None = None  # never the number itself


@dataclass
class _Caller:
    trace_id: str | None = None
    interaction_id: str | None = None
    from_asid: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)


class GpConnectApi:
    """The provider side of GP Connect for one demo practice (FHIR R4 is off for such a practice)."""

    def __init__(self, population: Population, base_url: str, asid: str) -> None:
        self.population = population
        self.base_url = base_url
        self.asid = asid
        self.traces: list[GpcTrace] = []
        #: NHS numbers of patients who dissent from GP Connect sharing (403 NO_PATIENT_CONSENT)
        self.dissenting: set[str] = set()
        #: NHS number -> List warning codes on their record here
        self.warnings: dict[str, tuple[str, ...]] = {}
        #: ODS codes of consumer organisations without a sharing agreement (403 NO_ORGANISATION_CONSENT)
        self.refused_organisations: set[str] = set()
        self._lock = threading.Lock()
        for patient in population:
            if patient.nhs_number:
                if patient_dissents(patient.nhs_number):
                    self.dissenting.add(patient.nhs_number)
                found = patient_warnings(patient.nhs_number)
                if found:
                    self.warnings[patient.nhs_number] = found

    # -- entry --------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        caller = _Caller(request.headers.get("ssp-traceid"), request.headers.get("ssp-interactionid"),
                         request.headers.get("ssp-from"))
        nhs_hash: list[str] = []
        try:
            if path == f"{PREFIX}/metadata":
                if request.method != "GET":
                    return self._record(caller, Reply(405, b"", headers={"Allow": "GET"}))
                self._check(request, caller, METADATA_INTERACTIONS, {"organization/*.read", "patient/*.read"})
                reply = json_reply(200, self.capability_statement())
            elif path == f"{PREFIX}/Patient/$gpc.getstructuredrecord":
                if request.method != "POST":
                    return self._record(caller, Reply(405, b"", headers={"Allow": "POST"}))
                self._check(request, caller, {STRUCTURED_INTERACTION}, {"patient/*.read"})
                reply = self.structured_record(request, caller, nhs_hash)
            elif path.startswith(PREFIX):
                raise SpineError("NOT_IMPLEMENTED", "This demo provider serves only gpc.getstructuredrecord "
                                                    "and metadata.")
            else:
                reply = json_reply(404, {"resourceType": "OperationOutcome", "issue": [{
                    "severity": "error", "code": "not-found",
                    "diagnostics": f"This practice speaks GP Connect only, at {PREFIX}."}]})
        except SpineError as exc:
            reply = spine_outcome(exc.code, str(exc))
            return self._record(caller, reply, exc.code, nhs_hash)
        return self._record(caller, reply, None, nhs_hash)

    def _record(self, caller: _Caller, reply: Reply, code: str | None = None,
                nhs_hash: list[str] | None = None) -> Reply:
        practitioner = caller.claims.get("requesting_practitioner")
        practitioner = practitioner if isinstance(practitioner, dict) else {}
        organisation = caller.claims.get("requesting_organization")
        organisation = organisation if isinstance(organisation, dict) else {}
        trace = GpcTrace(
            at=datetime.now(UTC), trace_id=caller.trace_id, interaction_id=caller.interaction_id,
            from_asid=caller.from_asid, sub=_str(caller.claims.get("sub")),
            sds_user_id=_identifier(practitioner, SDS_USER_SYSTEM), organisation=_identifier(organisation, ODS_SYSTEM),
            status=reply.status, spine_code=code, nhs_number_hash=nhs_hash[0] if nhs_hash else None)
        with self._lock:
            self.traces.append(trace)
        return reply

    def trace(self, trace_id: str) -> GpcTrace | None:
        with self._lock:
            return next((t for t in self.traces if t.trace_id == trace_id), None)

    # -- checks -------------------------------------------------------------------------------

    def _check(self, request: Request, caller: _Caller, interactions: set[str] | frozenset[str],
               scopes: set[str]) -> None:
        h = request.headers
        trace_id = h.get("ssp-traceid")
        if not trace_id:
            raise SpineError("BAD_REQUEST", "The Ssp-TraceID header is missing.")
        try:
            uuid.UUID(trace_id)
        except ValueError:
            raise SpineError("BAD_REQUEST", "Ssp-TraceID must be a UUID.") from None
        from_asid, to_asid = h.get("ssp-from"), h.get("ssp-to")
        if not from_asid or not _ASID.fullmatch(from_asid):
            raise SpineError("BAD_REQUEST", "Ssp-From must be the consumer's 12-digit ASID.")
        if not to_asid:
            raise SpineError("BAD_REQUEST", "The Ssp-To header is missing.")
        if to_asid != self.asid:
            raise SpineError("BAD_REQUEST", f"Ssp-To ({to_asid}) is not this provider's ASID.")
        interaction = h.get("ssp-interactionid")
        if not interaction:
            raise SpineError("BAD_REQUEST", "The Ssp-InteractionID header is missing.")
        if interaction not in interactions:
            raise SpineError("BAD_REQUEST", f"Ssp-InteractionID '{interaction}' does not match this request.")
        caller.claims = self._jwt(h.get("authorization"), scopes)

    def _jwt(self, authorization: str | None, scopes: set[str]) -> dict[str, Any]:
        if not authorization or authorization[:7].lower() != "bearer ":
            raise SpineError("BAD_REQUEST", "The Authorization header must carry 'Bearer <JWT>'.")
        parts = authorization[7:].strip().split(".")
        if len(parts) != 3:
            raise SpineError("BAD_REQUEST", "The bearer token is not a JWT (header.payload.signature).")
        if parts[2]:
            raise SpineError("BAD_REQUEST", "The JWT must be unsigned: alg 'none' and an empty signature.")
        header, claims = _b64json(parts[0], "header"), _b64json(parts[1], "payload")
        if header.get("alg") != "none":
            raise SpineError("BAD_REQUEST", "The JWT header must have alg 'none'.")
        if header.get("typ", "JWT") != "JWT":
            raise SpineError("BAD_REQUEST", "The JWT header typ must be 'JWT'.")
        for name in ("iss", "sub", "aud", "iat", "exp", "reason_for_request", "requested_scope",
                     "requesting_device", "requesting_organization", "requesting_practitioner"):
            if name not in claims:
                raise SpineError("BAD_REQUEST", f"The JWT has no '{name}' claim.")
        for name in ("iss", "sub"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise SpineError("BAD_REQUEST", f"The JWT '{name}' claim must be a non-empty string.")
        if str(claims["aud"]).rstrip("/") != self.base_url.rstrip("/"):
            raise SpineError("BAD_REQUEST", f"The JWT 'aud' must be this provider's endpoint ({self.base_url}).")
        iat, exp = claims["iat"], claims["exp"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            raise SpineError("BAD_REQUEST", "The JWT 'iat' and 'exp' must be whole seconds since 1970.")
        if exp - iat != JWT_LIFETIME_S:
            raise SpineError("BAD_REQUEST", "The JWT 'exp' must be 'iat' + 300 seconds.")
        now = time.time()
        if iat > now + CLOCK_SKEW_S:
            raise SpineError("BAD_REQUEST", "The JWT was issued in the future ('iat').")
        if exp <= now - CLOCK_SKEW_S:
            raise SpineError("BAD_REQUEST", "The JWT has expired ('exp').")
        if claims["reason_for_request"] != "directcare":
            raise SpineError("BAD_REQUEST", "The JWT 'reason_for_request' must be 'directcare'.")
        if claims["requested_scope"] not in scopes:
            raise SpineError("BAD_REQUEST", f"The JWT 'requested_scope' must be {' or '.join(sorted(scopes))}.")
        device = claims["requesting_device"]
        if not isinstance(device, dict) or device.get("resourceType") != "Device":
            raise SpineError("BAD_REQUEST", "The JWT 'requesting_device' must be a Device resource.")
        organisation = claims["requesting_organization"]
        if not isinstance(organisation, dict) or organisation.get("resourceType") != "Organization":
            raise SpineError("BAD_REQUEST", "The JWT 'requesting_organization' must be an Organization resource.")
        ods = _identifier(organisation, ODS_SYSTEM)
        if not ods:
            raise SpineError("BAD_REQUEST", "The JWT 'requesting_organization' needs an ODS code identifier.")
        practitioner = claims["requesting_practitioner"]
        if not isinstance(practitioner, dict) or practitioner.get("resourceType") != "Practitioner":
            raise SpineError("BAD_REQUEST", "The JWT 'requesting_practitioner' must be a Practitioner resource.")
        if practitioner.get("id") != claims["sub"]:
            raise SpineError("BAD_REQUEST", "The JWT 'sub' must be the requesting practitioner's id.")
        for system, what in ((SDS_USER_SYSTEM, "SDS user id"), (SDS_ROLE_SYSTEM, "SDS role profile id")):
            if not _identifier(practitioner, system):
                raise SpineError("BAD_REQUEST", f"The JWT 'requesting_practitioner' needs an {what} identifier "
                                                f"({system}; 'UNK' when not known).")
        if ods in self.refused_organisations:
            raise SpineError("NO_ORGANISATION_CONSENT", f"Organisation {ods} has no data sharing agreement "
                                                        "with this practice.")
        return claims

    # -- operations ---------------------------------------------------------------------------

    def structured_record(self, request: Request, caller: _Caller, nhs_hash: list[str]) -> Reply:
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise SpineError("INVALID_RESOURCE", "The request body is not valid JSON.") from None
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise SpineError("INVALID_RESOURCE", "The request body must be a Parameters resource.")
        params = body.get("parameter")
        if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
            raise SpineError("INVALID_RESOURCE", "Parameters.parameter must be a list of parameters.")
        seen: set[str] = set()
        nhs_number: str | None = None
        options: dict[str, Any] = {}
        for param in params:
            name = param.get("name")
            if name in seen:
                raise SpineError("INVALID_PARAMETER", f"The parameter '{name}' is given twice.")
            seen.add(str(name))
            if name == "patientNHSNumber":
                nhs_number = self._nhs_number(param)
            elif name in _SECTIONS:
                options.update(_section_options(name, param))
            else:
                raise SpineError("INVALID_PARAMETER", f"Unknown parameter '{name}'.")
        if nhs_number is None:
            raise SpineError("INVALID_PARAMETER", "The patientNHSNumber parameter is required.")
        nhs_hash.append(f"{hash_seed('trace', nhs_number):016x}")
        patient = self.population.by_nhs_number(nhs_number)
        if patient is None:
            raise SpineError("PATIENT_NOT_FOUND", "No patient with this NHS number is registered here.")
        if nhs_number in self.dissenting:
            raise SpineError("NO_PATIENT_CONSENT", "The patient has dissented from sharing their record.")
        builder = StructuredRecordBuilder(self.population, patient, Options(**options),
                                          self.warnings.get(nhs_number, ()))
        return json_reply(200, builder.build())

    def _nhs_number(self, param: dict[str, Any]) -> str:
        ident = param.get("valueIdentifier")
        if not isinstance(ident, dict):
            raise SpineError("INVALID_PARAMETER", "patientNHSNumber must be a valueIdentifier.")
        if ident.get("system") != NHS_NUMBER_SYSTEM:
            raise SpineError("INVALID_IDENTIFIER_SYSTEM", f"patientNHSNumber's system must be {NHS_NUMBER_SYSTEM}.")
        value = ident.get("value")
        if not isinstance(value, str) or not re.fullmatch(r"\d{10}", value) \
                or check_digit(value[:9]) != int(value[9]):
            raise SpineError("INVALID_NHS_NUMBER", "The NHS number is not valid (10 digits with a Modulus 11 "
                                                   "check digit).")
        return value

    def capability_statement(self) -> Resource:
        spec = self.population.spec
        return {
            "resourceType": "CapabilityStatement", "id": f"mosaic-demo-gpc-{spec.id}", "version": __version__,
            "name": "GP Connect Access Record Structured (demo)", "status": "active", "date": now_iso(),
            "publisher": "Mosaic (demo data; every patient is fictional)", "kind": "instance",
            "software": {"name": SOFTWARE_NAME, "version": __version__},
            "implementation": {"description": f"{spec.name} ({spec.ods_code})", "url": self.base_url},
            "fhirVersion": "3.0.1", "acceptUnknown": "both", "format": ["application/fhir+json"],
            "profile": [{"reference": "https://fhir.nhs.uk/STU3/StructureDefinition/"
                                      "GPConnect-StructuredRecord-Bundle-1"}],
            "rest": [{"mode": "server", "security": {"cors": True},
                      "operation": [{"name": "gpc.getstructuredrecord", "definition": {
                          "reference": "https://fhir.nhs.uk/STU3/OperationDefinition/"
                                       "GPConnect-GetStructuredRecord-Operation-1"}}]}],
        }


def _section_options(name: str, param: dict[str, Any]) -> dict[str, Any]:
    allowed = _PARTS[name]
    parts: dict[str, Any] = {}
    for part in param.get("part") or []:
        pname = part.get("name") if isinstance(part, dict) else None
        if pname not in allowed:
            raise SpineError("INVALID_PARAMETER", f"Unknown part '{pname}' of {name}.")
        kinds = allowed[pname].split("|")  # some parts are sent as either type by real consumers
        kind = next((k for k in kinds if k in part), None)
        if kind is None:
            raise SpineError("INVALID_PARAMETER", f"{name}.{pname} needs a {' or '.join(kinds)}.")
        parts[pname] = part[kind]
    required = _REQUIRED_PARTS.get(name)
    if required and required not in parts:
        raise SpineError("INVALID_PARAMETER", f"{name} needs its {required} part.")
    for pname, value in parts.items():
        if allowed[pname] == "valueBoolean" and not isinstance(value, bool):
            raise SpineError("INVALID_PARAMETER", f"{name}.{pname} must be true or false.")
    if name == "includeAllergies":
        return {"allergies": True, "resolved_allergies": parts["includeResolvedAllergies"]}
    if name == "includeMedication":
        return {"medication": True, "prescription_issues": parts["includePrescriptionIssues"],
                "medication_from": _date(parts.get("medicationSearchFromDate"), f"{name}.medicationSearchFromDate")}
    if name == "includeProblems":
        status = parts.get("filterStatus")
        if status not in (None, "active", "inactive"):
            raise SpineError("INVALID_PARAMETER", "includeProblems.filterStatus must be active or inactive.")
        return {"problems": True, "problem_status": status}
    if name == "includeConsultations":
        recent = parts.get("includeNumberOfMostRecent")
        if recent is not None and (not isinstance(recent, int) or isinstance(recent, bool) or recent < 1):
            raise SpineError("INVALID_PARAMETER", "includeNumberOfMostRecent must be a positive whole number.")
        if recent is not None and "consultationSearchPeriod" in parts:
            raise SpineError("INVALID_PARAMETER", "Give consultationSearchPeriod or includeNumberOfMostRecent, "
                                                  "not both.")
        return {"consultations": True, "most_recent": recent,
                "consultation_period": _period(parts.get("consultationSearchPeriod"), name)}
    if name == "includeUncategorisedData":
        return {"uncategorised": True,
                "uncategorised_period": _period(parts.get("uncategorisedDataSearchPeriod"), name)}
    return {{"includeImmunisations": "immunisations", "includeInvestigations": "investigations"}[name]: True}


def _date(value: Any, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise SpineError("INVALID_PARAMETER", f"{what} must be a date (YYYY-MM-DD).") from None


def _period(value: Any, what: str) -> Period | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SpineError("INVALID_PARAMETER", f"{what}'s search period must be a Period.")
    period = Period(_date(value.get("start"), what), _date(value.get("end"), what))
    if period.start and period.end and period.start > period.end:
        raise SpineError("INVALID_PARAMETER", f"{what}'s search period starts after it ends.")
    return period


def _b64json(segment: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SpineError("BAD_REQUEST", f"The JWT {what} is not base64url-encoded JSON.") from None
    if not isinstance(data, dict):
        raise SpineError("BAD_REQUEST", f"The JWT {what} must be a JSON object.")
    return data


def _identifier(resource: dict[str, Any], system: str) -> str | None:
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == system and isinstance(ident.get("value"), str) \
                and ident["value"]:
            return ident["value"]
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
