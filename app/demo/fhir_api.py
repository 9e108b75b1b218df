"""The FHIR R4 REST API of a demo practice, free of HTTP plumbing: a request in, a reply out.

Routes live in one table (`ROUTES`); to serve something new, write a method and add a line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from app import __version__
from app.core.nhs_number import NHS_NUMBER_SYSTEM, normalise
from app.demo.appointment_book import AppointmentBook
from app.demo.appointment_book_fhir import BOOK_TYPES, ID_PREFIX
from app.demo.appointment_book_search import DATE_PARAM, BookSearch
from app.demo.audit_store import AuditStore
from app.demo.auth import Authenticator, ClientCredentialsAuthenticator
from app.demo.consent import consent_resources
from app.demo.fhir_json import Reply, iter_references, json_reply, now_iso, outcome, searchset, to_json
from app.demo.population import Population
from app.demo.practices import PracticeSpec
from app.demo.records import RECORD_TYPES, flag_resources

Resource = dict[str, Any]
SOFTWARE_NAME = "Mosaic demo practice"
DEFAULT_COUNT, MAX_COUNT = 50, 200
EVERYTHING_COUNT, EVERYTHING_MAX = 500, 1000
#: appointment book searches (Slot, Appointment, Encounter by date): large pages, as a full read is ~150,000
BOOK_COUNT, BOOK_MAX = 500, 2000
#: parameters accepted anywhere and ignored (they change only presentation)
_IGNORED = frozenset({"_format", "_pretty", "_total", "_sort", "_summary"})
_PATIENT_PARAMS = frozenset({"identifier", "family", "given", "name", "birthdate", "_id",
                             #: reverse chaining (FHIR R4 search 3.1.1.5.10): patients with a Condition of this code
                             "_has:Condition:subject:code", "_has:Condition:patient:code", "active"})
_ID = r"[A-Za-z0-9\-.]{1,64}"


class BadRequest(Exception):
    """A client error that becomes an OperationOutcome reply."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: list[tuple[str, str]]
    headers: Mapping[str, str]  # case-insensitive lookups (http.client.HTTPMessage)
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[FhirApi, Request], Reply]
    public: bool = False  # served without credentials


class FhirApi:
    """One practice's API. `base_url` is http://host:port/fhir."""

    def __init__(self, population: Population, authenticator: Authenticator, audit: AuditStore,
                 base_url: str, supports_everything: bool, seed: int = 0) -> None:
        self.population = population
        self.auth = authenticator
        self.audit = audit
        self.base_url = base_url
        self.supports_everything = supports_everything
        #: /metadata is open by default, as on most FHIR servers; set True to demand credentials for it too
        self.metadata_requires_auth = False
        spec = population.spec
        #: the practice's appointment book (issue 13), made on its first search; tests change it through its
        #: add_appointment / set_status / add_raw
        self.book = AppointmentBook(spec.id, spec.clinicians, spec.nurses, len(population),
                                    population.reference_date, seed, self._patient_at)
        self._book_search: BookSearch | None = None
        #: resource types this server pretends not to offer (left out of /metadata, 404 on search): for tests
        #: of a practice whose system publishes no Encounters, say
        self.withheld_types: set[str] = set()

    @property
    def spec(self) -> PracticeSpec:
        return self.population.spec

    def dispatch(self, request: Request) -> Reply:
        try:
            route, allowed = _find_route(request)
            if route is None:
                if allowed:
                    return outcome(405, "not-supported", f"{request.method} is not allowed on this path.",
                                   {"Allow": ", ".join(sorted(allowed))})
                return outcome(404, "not-found", "There is nothing at this address on this server.")
            public = route.public and not (route.handler is FhirApi.metadata and self.metadata_requires_auth)
            if not public:
                denied = self.auth.check(request.headers.get("authorization"))
                if denied is not None:
                    return outcome(401, "login", denied.message, {"WWW-Authenticate": denied.challenge})
            return route.handler(self, request)
        except BadRequest as exc:
            return outcome(exc.status, exc.code, str(exc))

    # -- routes -------------------------------------------------------------------------------

    def metadata(self, request: Request) -> Reply:
        return json_reply(200, self.capability_statement(), pretty=_pretty(request))

    def token(self, request: Request) -> Reply:
        if not isinstance(self.auth, ClientCredentialsAuthenticator):
            return outcome(404, "not-found", "This practice does not issue OAuth2 tokens.")
        status, body, headers = self.auth.issue(request.body, request.headers)
        return json_reply(status, body, headers, content_type="application/json")

    def read(self, request: Request) -> Reply:
        rtype, rid = request.params["type"], request.params["id"]
        if rtype in self.withheld_types:
            return outcome(404, "not-supported", f"This server does not serve {rtype} resources.")
        resource = self.audit.get(rid) if rtype == "AuditEvent" else self._book_read(rtype, rid) if (
            rtype in BOOK_TYPES and "-" not in rid) else self.population.read(rtype, rid)
        if resource is None:
            return outcome(404, "not-found", f"{rtype}/{rid} is not known at this practice.")
        return json_reply(200, resource, {"ETag": 'W/"1"'}, pretty=_pretty(request))

    def search_patients(self, request: Request) -> Reply:
        kept, count, offset = _paging(request.query, DEFAULT_COUNT, MAX_COUNT, _PATIENT_PARAMS)
        pop = self.population
        sets: list[set[int]] = []
        births = [v for name, v in kept if name == "birthdate"]
        if len(births) > 1 or any(v[:2] in _RANGE_PREFIXES for v in births):
            sets.append(pop.match_birth_range(*_birth_range(births)))
            kept_for_match = [(n, v) for n, v in kept if n != "birthdate"]
        else:
            kept_for_match = kept
        for name, value in kept_for_match:
            alternatives = [v for v in value.split(",") if v]
            if not alternatives:
                continue
            found: set[int] = set()
            for alt in alternatives:
                found |= self._match_patient(name, alt)
            sets.append(found)
        positions = sorted(set.intersection(*sets) if sets else pop.all_positions())
        if _summary_count(request):
            count = 0  # the total alone (the list size)
        items = [pop.patient_resource(pop.at(i)) for i in positions[offset:offset + count]] if count else []
        bundle = searchset(self.base_url, "/Patient", kept, items, offset=offset, count=count,
                           total=len(positions))
        return json_reply(200, bundle, pretty=_pretty(request))

    def everything(self, request: Request) -> Reply:
        if not self.supports_everything:
            raise BadRequest("This server does not support the Patient $everything operation; search "
                             "each resource type by patient instead.", 400, "not-supported")
        patient = self.population.get(request.params["id"])
        if patient is None:
            return outcome(404, "not-found", f"Patient/{request.params['id']} is not known at this practice.")
        kept, count, offset = _paging(request.query, EVERYTHING_COUNT, EVERYTHING_MAX, {"_type"})
        types = {t for name, v in kept if name == "_type" for t in v.split(",") if t}
        record = self.population.record(patient)
        items: list[Resource] = [self.population.patient_resource(patient)]
        for rtype, resources in record.items():
            if not types or rtype in types:
                items.extend(resources)
        if not types or "Consent" in types:
            items.extend(consent_resources(patient))  # research consent, about one patient in five
        if not types or "Flag" in types:
            items.extend(flag_resources(patient))  # the do-not-notify mark, kept as a Flag too
        items.extend(self._referenced(items))
        if types:
            items = [r for r in items if r["resourceType"] in types or r["resourceType"] == "Patient"]
        bundle = searchset(self.base_url, f"/Patient/{patient.local_id}/$everything", kept,
                           items[offset:offset + count], offset=offset, count=count, total=len(items),
                           rest_mode="include")
        return json_reply(200, bundle, pretty=_pretty(request))

    def search_type(self, request: Request) -> Reply:
        rtype = request.params["type"]
        if rtype not in self.searchable_types():
            return outcome(404, "not-supported", f"This server does not serve {rtype} resources.")
        if rtype in BOOK_TYPES and not any(n in ("patient", "subject") for n, _ in request.query):
            return self.search_book(request)
        kept, count, offset = _paging(request.query, DEFAULT_COUNT, MAX_COUNT, {"patient", "subject"})
        refs = [v for name, v in kept if name in ("patient", "subject") and v]
        if not refs:
            raise BadRequest(f"Search {rtype} by patient: add patient=<id> (or subject=Patient/<id>).")
        ids = {_patient_id(ref) for ref in refs}
        items: list[Resource] = []
        if len(ids) == 1:
            patient = self.population.get(ids.pop())
            if patient is not None:
                items = self.population.resources(patient, rtype)
                if rtype == "Consent":
                    items += consent_resources(patient)
                elif rtype == "Flag":
                    items += flag_resources(patient)
        bundle = searchset(self.base_url, f"/{rtype}", kept, items[offset:offset + count], offset=offset,
                           count=count, total=len(items))
        return json_reply(200, bundle, pretty=_pretty(request))

    def search_book(self, request: Request) -> Reply:
        """The appointment book: Slot?start=, Appointment?date=, Encounter?date= (with _lastUpdated=gt...),
        and the book's Schedules, PractitionerRoles and Practitioners."""
        rtype = request.params["type"]
        date_param = DATE_PARAM.get(rtype)
        allowed = {"_lastUpdated"} | ({date_param} if date_param else set())
        kept, count, offset = _paging(request.query, BOOK_COUNT, BOOK_MAX, allowed)
        if date_param is None:  # the few Schedules and their clinicians
            if kept:
                raise BadRequest(f"Search {rtype} without parameters here (all {rtype} resources).")
            items = self._book().renderer.small(rtype)
            bundle = searchset(self.base_url, f"/{rtype}", kept, items[offset:offset + count], offset=offset,
                               count=count, total=len(items))
            return json_reply(200, bundle, pretty=_pretty(request))
        try:
            total, page = self._book().page(rtype, kept, offset, count)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        shell = searchset(self.base_url, f"/{rtype}", kept, [], offset=offset, count=count, total=total)
        del shell["entry"]
        head = to_json(shell)[:-1]
        entries = ",".join(f'{{"fullUrl":"{self.base_url}/{rtype}/{_id_of(text)}","resource":{text},'
                           '"search":{"mode":"match"}}' for text in page)
        return Reply(200, head + b',"entry":[' + entries.encode("utf-8") + b"]}")

    def _book(self) -> BookSearch:
        if self._book_search is None:
            self._book_search = BookSearch(self.book.ensure_built())
        return self._book_search

    def _book_read(self, rtype: str, rid: str) -> Resource | None:
        renderer = self._book().renderer
        prefix = ID_PREFIX.get(rtype)
        if prefix is None:
            return next((r for r in renderer.small(rtype) if r["id"] == rid), None)
        try:
            number = int(rid.removeprefix(prefix), 16) if rid.startswith(prefix) else -1
        except ValueError:
            return None
        row = self.book.find(rtype, number)
        return None if row is None else json.loads(renderer.render(rtype, row))

    def _patient_at(self, position: int) -> str:
        return self.population.at(position % len(self.population)).local_id

    def create_audit_event(self, request: Request) -> Reply:
        kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if kind not in ("application/fhir+json", "application/json"):
            raise BadRequest("Send the AuditEvent as application/fhir+json.", 415, "not-supported")
        try:
            event = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}") from exc
        if not isinstance(event, dict) or event.get("resourceType") != "AuditEvent":
            raise BadRequest("The body must be an AuditEvent resource.")
        try:
            status, stored = self.audit.create(event, request.headers.get("if-none-exist"))
        except LookupError as exc:
            raise BadRequest(str(exc), 412, "duplicate") from exc
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        headers = {"Location": f"{self.base_url}/AuditEvent/{stored['id']}/_history/1", "ETag": 'W/"1"'}
        if "return=minimal" in (request.headers.get("prefer") or ""):
            return Reply(status, b"", headers=headers)
        return json_reply(status, stored, headers)

    def search_audit_events(self, request: Request) -> Reply:
        kept, count, offset = _paging(request.query, DEFAULT_COUNT, MAX_COUNT, {"patient", "identifier"})
        values = dict(kept)
        items = self.audit.search(values.get("patient"), values.get("identifier"))
        bundle = searchset(self.base_url, "/AuditEvent", kept, items[offset:offset + count], offset=offset,
                           count=count, total=len(items))
        return json_reply(200, bundle, pretty=_pretty(request))

    # -- helpers ------------------------------------------------------------------------------

    def searchable_types(self) -> set[str]:
        types = set(RECORD_TYPES) | {"Consent", "Flag"} | set(BOOK_TYPES) | self.population.resource_types()
        return types - self.withheld_types

    def capability_statement(self) -> Resource:
        spec = self.spec
        patient: Resource = {
            "type": "Patient",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": n, "type": t} for n, t in (
                ("identifier", "token"), ("family", "string"), ("given", "string"), ("name", "string"),
                ("birthdate", "date"), ("_id", "token"), ("_has", "special"))],
        }
        if self.supports_everything:
            patient["operation"] = [{"name": "everything",
                                     "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
        resources = [patient]
        for rtype in sorted(self.searchable_types()):
            params = [] if rtype in BOOK_TYPES and rtype != "Encounter" else [
                {"name": "patient", "type": "reference"}, {"name": "subject", "type": "reference"}]
            if rtype in DATE_PARAM:
                params.append({"name": DATE_PARAM[rtype], "type": "date"})
            if rtype in BOOK_TYPES:
                params.append({"name": "_lastUpdated", "type": "date"})
            resources.append({"type": rtype, "interaction": [{"code": "read"}, {"code": "search-type"}],
                              "searchParam": params})
        resources.append({"type": "AuditEvent",
                          "interaction": [{"code": "create"}, {"code": "read"}, {"code": "search-type"}],
                          "conditionalCreate": True,
                          "searchParam": [{"name": "patient", "type": "reference"},
                                          {"name": "identifier", "type": "token"}]})
        return {
            "resourceType": "CapabilityStatement",
            "id": f"mosaic-demo-{spec.id}",
            "status": "active",
            "date": now_iso(),
            "publisher": "Mosaic (demo data; every patient is fictional)",
            "kind": "instance",
            "software": {"name": SOFTWARE_NAME, "version": __version__},
            "implementation": {"description": f"{spec.name} ({spec.ods_code})", "url": self.base_url},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "rest": [{"mode": "server", "security": self._security(), "resource": resources}],
        }

    def _security(self) -> Resource:
        system = "http://terminology.hl7.org/CodeSystem/restful-security-service"
        kind = self.auth.kind
        code = {"basic": "Basic", "bearer": "OAuth", "client-credentials": "OAuth"}.get(kind)
        security: Resource = {"cors": False}
        if code:
            security["service"] = [{"coding": [{"system": system, "code": code}]}]
        if kind == "client-credentials":
            token_url = self.base_url.rsplit("/fhir", 1)[0] + "/oauth/token"
            security["extension"] = [{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": token_url}]}]
        return security

    def _match_patient(self, name: str, value: str) -> set[int]:
        pop = self.population
        if name == "identifier":
            system, sep, ident = value.partition("|")
            if not sep:
                return pop.match_identifier(None, value)
            if system == NHS_NUMBER_SYSTEM:
                ident = normalise(ident)
            return pop.match_identifier(system, ident) if system else set()
        if name == "family":
            return pop.match_family(value)
        if name == "given":
            return pop.match_given(value)
        if name == "name":
            return pop.match_family(value) | pop.match_given(value)
        if name == "_id":
            position = pop.position_of(value)
            return set() if position is None else {position}
        if name == "active":
            if value not in ("true", "false"):
                raise BadRequest(f"active must be true or false, not '{value}'.")
            return {i for i in pop.all_positions()
                    if pop.patient_resource(pop.at(i)).get("active", True) is (value == "true")}
        if name.startswith("_has:Condition:"):
            system, sep, code = value.partition("|")
            return pop.match_condition(system or None, code) if sep else pop.match_condition(None, value)
        return pop.match_birth_date(_parse_birthdate(value))

    def _referenced(self, items: list[Resource]) -> list[Resource]:
        """Resources outside the record that it refers to (Synthea's Organizations, Practitioners)."""
        have = {(r["resourceType"], r["id"]) for r in items}
        extra: list[Resource] = []
        for item in list(items):
            for ref in iter_references(item):
                rtype, _, rid = ref["reference"].partition("/")
                if not rid or "/" in rid or (rtype, rid) in have or rtype in ("Patient", "AuditEvent"):
                    continue
                have.add((rtype, rid))
                found = self.population.read(rtype, rid)
                if found is not None:
                    extra.append(found)
        return extra


ROUTES: tuple[Route, ...] = tuple(Route(m, re.compile(p), h, public) for m, p, h, public in (
    ("POST", r"/oauth/token", FhirApi.token, True),
    ("GET", r"/fhir/metadata", FhirApi.metadata, True),
    ("GET", rf"/fhir/Patient/(?P<id>{_ID})/\$everything", FhirApi.everything, False),
    ("GET", r"/fhir/Patient", FhirApi.search_patients, False),
    ("POST", r"/fhir/AuditEvent", FhirApi.create_audit_event, False),
    ("GET", r"/fhir/AuditEvent", FhirApi.search_audit_events, False),
    ("GET", rf"/fhir/(?P<type>[A-Z][A-Za-z]{{1,63}})/(?P<id>{_ID})", FhirApi.read, False),
    ("GET", r"/fhir/(?P<type>[A-Z][A-Za-z]{1,63})", FhirApi.search_type, False),
))


def _find_route(request: Request) -> tuple[Route | None, set[str]]:
    allowed: set[str] = set()
    for route in ROUTES:
        match = route.pattern.fullmatch(request.path.rstrip("/") or "/")
        if match is None:
            continue
        if route.method != request.method:
            allowed.add(route.method)
            continue
        request.params = {k: v for k, v in match.groupdict().items() if v is not None}
        return route, allowed
    return None, allowed


def _paging(query: list[tuple[str, str]], default: int, maximum: int,
            allowed: set[str] | frozenset[str]) -> tuple[list[tuple[str, str]], int, int]:
    """(the search's own parameters, page size, offset); unknown parameters are a 400."""
    kept: list[tuple[str, str]] = []
    count, offset = default, 0
    for name, value in query:
        if name == "_count":
            count = min(_non_negative(name, value), maximum)
        elif name == "_offset":
            offset = _non_negative(name, value)
        elif name in _IGNORED:
            continue
        elif name in allowed:
            kept.append((name, value))
        elif ":" in name and name.split(":")[0] in allowed:
            raise BadRequest(f"The modifier in '{name}' is not supported here.")
        else:
            raise BadRequest(f"Unknown search parameter '{name}'.")
    return kept, count, offset


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit():
        raise BadRequest(f"{name} must be a whole number, not '{value}'.")
    return int(value)


def _parse_birthdate(value: str) -> date:
    text = value[2:] if value.startswith("eq") else value
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadRequest(f"birthdate must be a full date, YYYY-MM-DD (optionally prefixed 'eq'), not '{value}'.")


_RANGE_PREFIXES = frozenset({"gt", "ge", "lt", "le"})


def _birth_range(values: list[str]) -> tuple[date | None, date | None]:
    """birthdate=gt…/ge…/lt…/le… (full dates), ANDed, as (born after, born on or before)."""
    after: date | None = None
    latest: date | None = None
    for value in values:
        prefix = value[:2]
        if prefix not in _RANGE_PREFIXES:
            raise BadRequest(f"birthdate '{value}': combine only ranges (gt, ge, lt, le) in one search.")
        day = _parse_birthdate("eq" + value[2:])
        low = day if prefix == "gt" else day - timedelta(days=1) if prefix == "ge" else None
        high = day if prefix == "le" else day - timedelta(days=1) if prefix == "lt" else None
        if low is not None:
            after = low if after is None else max(after, low)
        if high is not None:
            latest = high if latest is None else min(latest, high)
    return after, latest


def _patient_id(reference: str) -> str:
    """'abc', 'Patient/abc' or 'http://host/fhir/Patient/abc' -> 'abc'."""
    parts = reference.rstrip("/").split("/")
    return parts[-1]


def _summary_count(request: Request) -> bool:
    return any(name == "_summary" and value == "count" for name, value in request.query)


def _id_of(resource_json: str) -> str:
    """The id of a book resource's JSON text (written by appointment_book_fhir with "id" second)."""
    at = resource_json.find('"id":"')
    return resource_json[at + 6:resource_json.find('"', at + 6)] if at >= 0 else ""


def _pretty(request: Request) -> bool:
    return any(name == "_pretty" and value == "true" for name, value in request.query)
