"""The GP Connect Access Record: Structured adapter (FHIR STU3), for EMIS Web and TPP SystmOne practices.

One request reads a whole record: `POST {base}/Patient/$gpc.getstructuredrecord` with a Parameters
body naming the NHS number and the clinical areas wanted. Every request carries the Spine headers
(Ssp-TraceID, Ssp-From, Ssp-To, Ssp-InteractionID) and a fresh unsigned JWT saying who asks and why.
Patients are identified by NHS number only: there is no demographic search, and a GP Connect
practice's `local_id` for a patient IS the NHS number.

The practice audits each request itself; each request's Ssp-TraceID travels with its own answer (the
record's `trace_id`, the search's `Matches.trace_id`, or the AdapterError's `trace_id`), so the core's
journal stores the id of that request — never the latest one of several running at once — and a
practice's audit trail can be joined to Mosaic's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx2

from adapters.base import Adapter, AdapterError, Matches
from adapters.gp_connect.errors import proxy_error, spine_error
from adapters.gp_connect.jwt import (
    ORGANIZATION_SCOPE,
    PATIENT_SCOPE,
    build_token,
    claims_for,
    os_requester,
    requester_from_user,
)
from adapters.gp_connect.mapping import SECTION_PARAMETERS, map_structured_bundle, spine_issues
from adapters.http import (
    _ERROR_BODY_LIMIT,
    DEADLINE_FACTOR,
    HttpError,
    JsonReply,
    _check_content_type,
    _error_detail,
    _parse,
    _plain_errors,
    _read_capped,
    _status_error,
    close_client,
    make_client,
)
from app.core.model import (
    SECTION_TITLES,
    PatientQuery,
    PatientRecord,
    PatientSummary,
    Practice,
    Requester,
    Section,
    SectionName,
    ServerInfo,
)
from app.core.nhs_number import NHS_NUMBER_SYSTEM, is_valid, normalise

log = logging.getLogger("mosaic.adapters.gp_connect")

FHIR_JSON = "application/fhir+json"
STRUCTURED_INTERACTION = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
METADATA_INTERACTION = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
STRUCTURED_PATH = "Patient/$gpc.getstructuredrecord"
CONSULTATIONS_MOST_RECENT = 20
_MAPPING_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError)


def structured_parameters(nhs_number: str, sections: bool = True,
                          consultations: int = CONSULTATIONS_MOST_RECENT) -> dict[str, Any]:
    """The Parameters body: the patient, and (unless `sections` is False) every clinical area."""
    params: list[dict[str, Any]] = [{
        "name": "patientNHSNumber",
        "valueIdentifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs_number},
    }]
    if sections:
        params += [
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": True}]},
            {"name": "includeMedication", "part": [{"name": "includePrescriptionIssues", "valueBoolean": True}]},
            {"name": "includeProblems"},
            {"name": "includeConsultations",
             "part": [{"name": "includeNumberOfMostRecent", "valueInteger": consultations}]},
            {"name": "includeImmunisations"},
            {"name": "includeInvestigations"},
            {"name": "includeUncategorisedData"},
        ]
    return {"resourceType": "Parameters", "parameter": params}


class GpConnectAdapter(Adapter):
    """A practice reached over GP Connect (through the Spine Secure Proxy, or directly in the demo)."""

    kind = "gp-connect"
    supports_demographic_search = False
    accepts_audit_events = False  # the provider audits every request; the journal keeps our Ssp-TraceID

    def __init__(self, practice: Practice, secret: str | None) -> None:
        super().__init__(practice, secret)
        self._base = practice.base_url.rstrip("/")
        self._client: httpx2.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._requester: Requester = os_requester(practice.consumer_ods)

    # --- who asks -------------------------------------------------------------------------------

    @property
    def requester(self) -> Requester:
        return self._requester

    def set_requester(self, requester: Requester | Any | None) -> None:
        """Who the following requests are made for. Accepts a Requester, or the core's signed-in user
        (AuditUser / SignedInUser); None goes back to the OS login with unknown SDS identifiers."""
        if requester is None:
            self._requester = os_requester(self.practice.consumer_ods)
        elif isinstance(requester, Requester):
            if not requester.user_id or not requester.family:
                raise AdapterError(f"{self.practice.name}: GP Connect needs the name and id of the person "
                                   "asking. Sign in again.", "auth")
            self._requester = requester if requester.org_ods else replace(requester,
                                                                          org_ods=self.practice.consumer_ods)
        else:
            self._requester = requester_from_user(requester, self.practice.consumer_ods)

    # --- plumbing -------------------------------------------------------------------------------

    def _http(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            self._client, self._client_loop = make_client(self.practice, accept=FHIR_JSON), loop
        return self._client

    def _check_config(self) -> None:
        missing = [k for k, v in (("asid", self.practice.asid), ("Mosaic's own ASID ([gp_connect] asid)",
                                                                  self.practice.consumer_asid)) if not v]
        if missing:
            raise AdapterError(f"{self.practice.name}: GP Connect needs {' and '.join(missing)} in the "
                               f"practice directory ({self.practice.source or 'machine-wide file'}). Ask IT.",
                               "config")

    def _headers(self, trace_id: str, interaction: str, scope: str) -> dict[str, str]:
        return {
            "Ssp-TraceID": trace_id,
            "Ssp-From": self.practice.consumer_asid or "",
            "Ssp-To": self.practice.asid or "",
            "Ssp-InteractionID": interaction,
            "Authorization": "Bearer " + build_token(claims_for(self._requester, self._base, scope)),
            "Accept": FHIR_JSON,
        }

    async def _exchange(self, method: str, path: str, interaction: str, scope: str,
                        body: dict[str, Any] | None = None) -> JsonReply:
        """One bounded request; Spine OperationOutcomes and proxy failures become plain AdapterErrors. The
        request's Ssp-TraceID travels with what comes back: the reply's `request_id`, or the error's `trace_id`."""
        self._check_config()
        practice = self.practice
        target = httpx2.URL(f"{self._base}/{path}")
        deadline = practice.timeout_s * DEADLINE_FACTOR
        client = self._http()
        trace_id: str | None = None
        try:
            with _plain_errors(practice, method, target, deadline, "try again shortly.", log) as trace:
                trace_id = trace.request_id  # Ssp-TraceID = the request id in Mosaic's log
                headers = {**self._headers(trace.request_id, interaction, scope), "X-Request-ID": trace.request_id}
                content = None
                if body is not None:
                    headers["Content-Type"] = FHIR_JSON
                    content = _json_bytes(body)
                async with asyncio.timeout(deadline), client.stream(method, target, content=content,
                                                                    headers=headers) as resp:
                    trace.status = resp.status_code
                    if resp.status_code >= 300:
                        raw = await _read_capped(resp, _ERROR_BODY_LIMIT, practice, strict=False)
                        raise self._error(resp.status_code, raw)
                    _check_content_type(practice, resp, (FHIR_JSON, "application/json", "application/json+fhir"))
                    data = _parse(practice, await _read_capped(resp, practice.max_response_bytes, practice,
                                                               strict=True))
                    return JsonReply(resp.status_code, data, resp.url, trace.request_id, trace.elapsed_ms)
        except AdapterError as exc:
            exc.trace_id = exc.trace_id or trace_id
            raise
        raise AssertionError("unreachable")

    def _error(self, status: int, raw: bytes) -> AdapterError:
        try:
            outcome = _parse(self.practice, raw) if raw else None
        except HttpError:
            outcome = None
        for code, _text, _diag in spine_issues(outcome):
            if code:
                error = spine_error(self.practice.name, code, status)
                if error is not None:
                    log.info("practice=%s spine_error=%s status=%d", self.practice.id, code, status)
                    return error
        error = proxy_error(self.practice.name, status)
        if error is not None:
            return error
        if 300 <= status < 400:
            return HttpError(f"{self.practice.name} redirected a GP Connect request (HTTP {status}); Mosaic "
                             "does not follow redirects for GP Connect. Check base_url with IT.", "config", status)
        hint = "GP Connect sign-in is by the NHS Spine; sign in to Mosaic again, and if it persists tell IT."
        return _status_error(self.practice, status, _error_detail(raw), hint)

    async def _structured(self, nhs_number: str, sections: bool) -> tuple[Any, JsonReply]:
        reply = await self._exchange("POST", STRUCTURED_PATH, STRUCTURED_INTERACTION, PATIENT_SCOPE,
                                     structured_parameters(nhs_number, sections))
        data = reply.data
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            for code, _t, _d in spine_issues(data):
                error = spine_error(self.practice.name, code or "", reply.status)
                if error is not None:
                    raise _traced(error, reply)
            raise _traced(AdapterError(f"{self.practice.name} answered a GP Connect record request with "
                                       "something other than a Bundle. Tell the practice.", "bad-reply"), reply)
        if not isinstance(data.get("entry") if data.get("entry") is not None else [], list):
            # a malformed Bundle is an error, never "no such patient here"
            raise _traced(AdapterError(f"{self.practice.name} sent a malformed Bundle (its entries are not a "
                                       "list), so its answer cannot be read. Tell the practice.", "bad-reply"), reply)
        return data, reply

    # --- the contract ---------------------------------------------------------------------------

    async def connect(self) -> ServerInfo:
        reply = await self._exchange("GET", "metadata", METADATA_INTERACTION, ORGANIZATION_SCOPE)
        data = reply.data if isinstance(reply.data, dict) else {}
        if data.get("resourceType") != "CapabilityStatement":
            raise AdapterError(f"{self.practice.name}: no GP Connect server answered at {self._base} (its "
                               "metadata is not a CapabilityStatement). Check base_url with IT.", "config")
        version = data.get("fhirVersion") if isinstance(data.get("fhirVersion"), str) else None
        if version and not version.startswith("3."):
            raise AdapterError(f"{self.practice.name} speaks FHIR {version}, not GP Connect's FHIR STU3 (3.0). "
                               "Check the practice's adapter setting with IT.", "config")
        software = raw if isinstance(raw := data.get("software"), dict) else {}
        name, ver = software.get("name"), software.get("version")
        label = " ".join(str(x) for x in (name, ver) if isinstance(x, str) and x) or None
        log.info("practice=%s connected gp-connect fhir=%s rtt_ms=%.0f trace=%s", self.practice.id, version,
                 reply.elapsed_ms, reply.request_id)
        return ServerInfo(software=label, fhir_version=version, round_trip_ms=reply.elapsed_ms,
                          supports_everything=True,
                          extra={"base_url": self._base, "interaction": "gpc.getstructuredrecord",
                                 "trace_id": reply.request_id})

    async def search(self, query: PatientQuery) -> list[PatientSummary]:
        """By NHS number only (GP Connect has no demographic search): [] for name/date-only queries."""
        if not query.nhs_number:
            return []
        number = normalise(query.nhs_number)
        if not is_valid(number):
            return []
        try:
            data, reply = await self._structured(number, sections=False)
        except AdapterError as exc:
            if getattr(exc, "spine_code", None) in ("PATIENT_NOT_FOUND", "NO_RECORD_FOUND", "INVALID_NHS_NUMBER"):
                return Matches(trace_id=exc.trace_id)
            raise
        try:
            record = map_structured_bundle(data, self.practice.id, requested=(), nhs_number_asked=number)
        except _MAPPING_ERRORS as exc:
            raise _traced(AdapterError(f"{self.practice.name} sent patient details Mosaic cannot read. Tell the "
                                       "practice.", "bad-reply"), reply) from exc
        patient = record.patient
        found = Matches(trace_id=reply.request_id)
        if patient is None or patient.local_id != number:
            return found
        if query.birth_date and patient.birth_date and patient.birth_date != query.birth_date:
            return found
        if query.family and patient.family and query.family.strip().lower() != patient.family.lower():
            return found
        found.append(patient)
        return found

    async def fetch_record(self, local_id: str) -> PatientRecord:
        number = normalise(local_id)
        if not is_valid(number):
            raise AdapterError(f"{self.practice.name}: GP Connect records are opened by NHS number, and "
                               f"'{local_id}' is not a valid one. Search for the patient again.", "not-found")
        data, reply = await self._structured(number, sections=True)
        try:
            mapped = map_structured_bundle(data, self.practice.id, nhs_number_asked=number)
        except _MAPPING_ERRORS as exc:
            raise _traced(AdapterError(f"{self.practice.name} sent a record Mosaic cannot read. Tell the practice.",
                                       "bad-reply"), reply) from exc
        if mapped.patient is None:
            raise _traced(AdapterError(f"{self.practice.name} sent a record without the patient's details. Tell "
                                       "the practice.", "bad-reply"), reply)
        if mapped.patient.local_id != number or mapped.patient.nhs_number != number or mapped.about_someone_else:
            # another patient's record, a Patient without the NHS number asked for, or resources about someone else
            log.warning("practice=%s answered a record request with another patient's record trace=%s",
                        self.practice.id, reply.request_id)
            raise _traced(AdapterError(f"{self.practice.name} answered with the record of a different patient "
                                       "from the one asked for, so it is not shown. Tell the practice.",
                                       "bad-reply"), reply)
        now = datetime.now(UTC)
        sections: dict[SectionName, Section] = {}
        warnings = list(mapped.warnings)
        for section in SectionName:
            entries = mapped.entries.get(section)
            if all(p in mapped.not_implemented for p in SECTION_PARAMETERS[section]):
                sections[section] = Section.unsupported(section)
            elif entries is None:
                sections[section] = Section.failed(section, f"{self.practice.name} did not include this section "
                                                            "in its reply. Try again; if it persists, tell the "
                                                            "practice.")
            else:
                sections[section] = Section.loaded(section, entries, now)
                skipped = mapped.skipped.get(section, 0)
                if skipped:
                    warnings.append(f"{SECTION_TITLES[section]}: {skipped} "
                                    f"{'entry' if skipped == 1 else 'entries'} could not be read and are not shown.")
        log.debug("practice=%s record fetched trace=%s", self.practice.id, reply.request_id)
        return PatientRecord(mapped.patient, sections, now, 1, tuple(warnings), contact=mapped.contact,
                             trace_id=reply.request_id)

    async def close(self) -> None:
        client, self._client = self._client, None
        await close_client(client, self._client_loop)


def _traced(error: AdapterError, reply: JsonReply) -> AdapterError:
    """`error`, naming the request it is about (its Ssp-TraceID), for the journal."""
    error.trace_id = reply.request_id
    return error


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


__all__ = ["GpConnectAdapter", "structured_parameters", "STRUCTURED_INTERACTION", "METADATA_INTERACTION"]
