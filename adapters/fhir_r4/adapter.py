"""The FHIR R4 adapter: connect, search patients, fetch a record, over one httpx2 client per practice.

A record is fetched in as few sequential rounds as the server allows: with Patient/$everything,
one round per page; otherwise the Patient read and one search per resource type all go out at once,
each following its own next links. Every section ends loaded, failed (with why) or unsupported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx2

from adapters.base import Adapter, AdapterError, Matches, OnPart
from adapters.fhir_r4.activity import read_activity
from adapters.fhir_r4.auth import Auth, ClientCredentialsAuth, credentials_hint, make_auth
from adapters.fhir_r4.capabilities import Capabilities, parse_capabilities
from adapters.fhir_r4.consent import research_consent
from adapters.fhir_r4.mapping import (
    MalformedResource,
    ResourceIndex,
    map_patient,
    map_resources,
    nhs_number,
)
from adapters.http import HttpError, JsonReply, close_client, fetch_json, make_client, origin_of, send_json
from adapters.patient_contact import patient_contact
from app.core.activity import Activity
from app.core.model import (
    SECTION_TITLES,
    PatientContact,
    PatientQuery,
    PatientRecord,
    PatientSummary,
    Practice,
    Section,
    SectionName,
    ServerInfo,
)
from app.core.nhs_number import NHS_NUMBER_SYSTEM, normalise

log = logging.getLogger("mosaic.adapters.fhir_r4")

SEARCH_PAGE_SIZE = 250  # = SEARCH_MAX_RESULTS: one round trip unless the server caps pages lower
SEARCH_MAX_PAGES = 5
SEARCH_MAX_RESULTS = 250
RECORD_PAGE_SIZE = 200
RECORD_MAX_PAGES = 20
EVERYTHING_PAGE_SIZE = 1000
EVERYTHING_MAX_PAGES = 50

#: the FHIR resource types each section is built from
SECTION_TYPES: dict[SectionName, tuple[str, ...]] = {
    SectionName.PROBLEMS: ("Condition",),
    SectionName.MEDICATIONS: ("MedicationRequest", "MedicationStatement"),
    SectionName.ALLERGIES: ("AllergyIntolerance",),
    SectionName.ENCOUNTERS: ("Encounter",),
    SectionName.OBSERVATIONS: ("Observation",),
    SectionName.IMMUNISATIONS: ("Immunization",),
}
#: read with a section, in the same round, when the server offers them: the reports that group results, and
#: the Compositions that hold consultation notes (an Encounter has no place for them). A failed search of
#: one fails its section, as a failed search of the section's own type does (never half a section shown
#: as whole); whether a section is provided at all is still decided by SECTION_TYPES alone.
COMPANION_TYPES: dict[SectionName, tuple[str, ...]] = {
    SectionName.OBSERVATIONS: ("DiagnosticReport",),
    SectionName.ENCOUNTERS: ("Composition",),
}
_INCLUDES = {"MedicationRequest": "MedicationRequest:medication",
             "MedicationStatement": "MedicationStatement:medication"}
_FHIR_ID = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")
_MAPPING_ERRORS = (MalformedResource, TypeError, ValueError, AttributeError, KeyError, IndexError)


def search_params(query: PatientQuery) -> dict[str, str]:
    """FHIR search parameters for a PatientQuery (all given fields must match)."""
    params: dict[str, str] = {}
    if query.nhs_number:
        params["identifier"] = f"{NHS_NUMBER_SYSTEM}|{normalise(query.nhs_number)}"
    if query.family:
        params["family"] = query.family.strip()
    if query.given:
        params["given"] = query.given.strip()
    if query.birth_date:
        params["birthdate"] = f"eq{query.birth_date.isoformat()}"
    return params


SNOMED_CT = "http://snomed.info/sct"


def criteria_params(query: PatientQuery, today: date) -> list[tuple[str, str]]:
    """A Patient search for study criteria: a coded condition through reverse chaining
    (`_has:Condition:subject:code`) and the age band as a birth-date range (two `birthdate` parameters)."""
    params: list[tuple[str, str]] = []
    if query.condition:
        params.append(("_has:Condition:subject:code", f"{SNOMED_CT}|{query.condition}"))
    after, latest = query.birth_range(today)
    if after is not None:
        params.append(("birthdate", f"gt{after.isoformat()}"))
    if latest is not None:
        params.append(("birthdate", f"le{latest.isoformat()}"))
    return params


@dataclass
class _Pages:
    """The resources of a paged search: the matches, every resource (for references), and how it went."""

    matches: list[dict[str, Any]] = field(default_factory=list)
    index: ResourceIndex = field(default_factory=ResourceIndex)
    requests: int = 0
    truncated: bool = False
    error: AdapterError | None = None  # a page after the first failed; what arrived is incomplete
    unreadable: int = 0  # entries that are not a resource Mosaic can read (counted, never dropped silently)

    @property
    def complete(self) -> bool:
        """Every page arrived and every entry could be read: what is not among the matches is not there."""
        return self.error is None and not self.truncated and not self.unreadable


class FhirR4Adapter(Adapter):
    """A practice whose clinical system offers a FHIR R4 REST API."""

    kind = "fhir-r4"
    supports_demographic_search = True

    def __init__(self, practice: Practice, secret: str | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` (monotonic seconds) times the renewal of a practice token (client credentials, private key JWT)."""
        super().__init__(practice, secret)
        self._clock = clock
        self._base = practice.base_url.rstrip("/")
        self._origin = origin_of(self._base)
        self._client: httpx2.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._auth: Auth | None = None
        #: what the server's CapabilityStatement said; set by connect()
        self.capabilities: Capabilities | None = None
        #: True when the last search hit the page/result cap (more matches exist than were returned)
        self.last_search_truncated = False

    @property
    def supports_criteria_search(self) -> bool:  # type: ignore[override]
        """Study criteria are searched through the practice's Conditions: not when it declares none."""
        return self.capabilities is None or self.capabilities.supports("Condition")

    # --- plumbing -------------------------------------------------------------------------------

    def _http(self) -> httpx2.AsyncClient:
        """The adapter's client, created on first use on the running loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            self._client, self._client_loop = make_client(self.practice), loop
        return self._client

    def _authenticator(self) -> Auth:
        if self._auth is None:
            self._auth = make_auth(self.practice, self.secret, clock=self._clock)
        return self._auth

    def _token_fetches(self) -> int:
        return self._auth.fetches if isinstance(self._auth, ClientCredentialsAuth) else 0

    def _url(self, target: str) -> str:
        if target.startswith(("http://", "https://")):
            if origin_of(target) != self._origin:
                raise HttpError(f"{self.practice.name} sent a link to a different server "
                                f"({httpx2.URL(target).host}); Mosaic did not follow it. Tell the practice.",
                                "bad-reply")
            return target
        return f"{self._base}/{target.lstrip('/')}"

    def _auth_hint(self) -> str:
        if self.practice.auth == "none":
            return ("This practice is set up without sign-in; ask IT whether it needs a username and "
                    "password in the practice directory.")
        return credentials_hint(self.practice)

    async def _get(self, target: str, params: Mapping[str, str] | None = None, *,
                   signed: bool = True, decode: Callable[[bytes], Any] | None = None) -> JsonReply:
        """GET with credentials; after a 401 with a refreshable token, fetch a new one and retry once. `decode`:
        a typed decoder tried before plain JSON (adapters/http.py's fetch_json)."""
        url = self._url(target)
        client = self._http()
        auth = self._authenticator() if signed else Auth()
        for attempt in (1, 2):
            headers = await auth.headers(client)
            try:
                return await fetch_json(client, self.practice, "GET", url, params=params, headers=headers,
                                        auth_hint=self._auth_hint(), logger=log, decode=decode)
            except HttpError as exc:
                if exc.status == 401 and auth.refreshable and attempt == 1:
                    log.debug("practice=%s token rejected; refreshing once", self.practice.id)
                    auth.invalidate(headers)
                    continue
                raise
        raise AssertionError("unreachable")

    def _bundle(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict) and data.get("resourceType") == "Bundle":
            return data
        kind = data.get("resourceType") if isinstance(data, dict) else None
        what = f"{'an' if kind[:1] in 'AEIOU' else 'a'} {kind}" if isinstance(kind, str) and kind else "something"
        raise HttpError(f"{self.practice.name} answered a search with {what} instead of a Bundle. "
                        "Tell the practice.", "bad-reply")

    def _entries(self, bundle: dict[str, Any]) -> list[Any]:
        """A Bundle's entries. An `entry` that is not a list is a malformed Bundle: an error, never "nothing
        found" (which would read as a false "not registered here")."""
        entries = bundle.get("entry")
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise HttpError(f"{self.practice.name} sent a malformed Bundle (its entries are not a list), so "
                            "its answer cannot be read. Tell the practice.", "bad-reply")
        return entries

    async def _collect(self, target: str, params: Mapping[str, str] | None, max_pages: int,
                       match_type: str | None = None, max_results: int | None = None) -> _Pages:
        """Follow a search's next links. The first page's failure raises; a later one is recorded.

        With `match_type`, only resources of that type not marked as includes are matches (the rest
        still go into the index, to name what matches refer to); without it, everything is a match.
        """
        pages = _Pages()
        url: str | None = target
        while url is not None:
            if pages.requests >= max_pages or (max_results is not None and len(pages.matches) >= max_results):
                pages.truncated = True
                break
            try:
                bundle = self._bundle((await self._get(url, params)).data)
            except AdapterError as exc:
                if pages.requests == 0:
                    raise
                pages.error = exc
                break
            pages.requests += 1
            params = None  # next links carry their own query
            for entry in self._entries(bundle):
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                    pages.unreadable += 1
                    continue
                pages.index.add(resource, entry.get("fullUrl"))
                if match_type is None:  # $everything: every resource belongs to the record
                    pages.matches.append(resource)
                    continue
                search = entry.get("search") if isinstance(entry.get("search"), dict) else {}
                if search.get("mode") not in ("include", "outcome") and resource.get("resourceType") == match_type:
                    pages.matches.append(resource)
            url = _next_link(bundle)
        return pages

    async def _ensure_capabilities(self) -> tuple[Capabilities, int]:
        """The server's capabilities, fetching them (one round) when connect() has not run."""
        if self.capabilities is not None:
            return self.capabilities, 0
        reply = await self._metadata()
        self.capabilities = parse_capabilities(self.practice, reply.data)
        return self.capabilities, 1

    async def _metadata(self) -> JsonReply:
        """GET metadata, unsigned as the spec allows; signed if the server insists."""
        try:
            try:
                return await self._get("metadata", signed=False)
            except HttpError as exc:
                if exc.status in (401, 403) and self.practice.auth != "none":
                    return await self._get("metadata")
                raise
        except HttpError as exc:
            if exc.kind == "not-found":
                raise AdapterError(f"{self.practice.name}: no FHIR server answered at {self._base} (HTTP "
                                   f"{exc.status} for /metadata). Check base_url in "
                                   f"{self.practice.source or 'the practice directory'}.", "config") from exc
            raise

    def _credential_check(self) -> Awaitable[object]:
        """Prove the credentials in the same round trip as /metadata.

        For client credentials a granted token is the proof (a signed search would wait for the
        token first: two round trips); otherwise a cheap signed search.
        """
        auth = self._authenticator()
        if isinstance(auth, ClientCredentialsAuth):
            return auth.headers(self._http())
        if self.practice.auth == "none":
            return _nothing()
        return self._get("Patient", {"_count": "1", "_summary": "count"})

    # --- the contract ---------------------------------------------------------------------------

    async def connect(self) -> ServerInfo:
        """Read the CapabilityStatement and prove the credentials with a cheap signed search."""
        self._authenticator()  # a missing secret or setting fails here, before any network traffic
        probe = self._credential_check()
        meta, checked = await asyncio.gather(self._metadata(), probe, return_exceptions=True)
        if isinstance(checked, AdapterError) and checked.kind == "auth":
            raise checked
        if isinstance(meta, BaseException):
            raise meta
        if isinstance(checked, BaseException) and not isinstance(checked, AdapterError):
            raise checked
        caps = parse_capabilities(self.practice, meta.data)
        self.capabilities = caps
        if self.practice.auth == "none":
            auth_check = "not needed"
        elif isinstance(checked, AdapterError):
            auth_check = f"inconclusive ({checked.kind})"
            log.info("practice=%s sign-in check inconclusive kind=%s", self.practice.id, checked.kind)
        else:
            auth_check = "passed"
        extra = {"auth_check": auth_check, "base_url": self._base}
        if caps.software_name:
            extra["software_name"] = caps.software_name
        if caps.software_version:
            extra["software_version"] = caps.software_version
        log.info("practice=%s connected fhir=%s everything=%s rtt_ms=%.0f", self.practice.id,
                 caps.fhir_version, caps.supports_everything, meta.elapsed_ms)
        return ServerInfo(software=caps.software, fhir_version=caps.fhir_version,
                          round_trip_ms=meta.elapsed_ms, supports_everything=caps.supports_everything,
                          extra=extra)

    async def search(self, query: PatientQuery) -> list[PatientSummary]:
        if query.is_criteria:
            return await self._search_criteria(query)
        params = search_params(query)
        self.last_search_truncated = False
        if not params:
            return []
        pages = await self._collect("Patient", {**params, "_count": str(SEARCH_PAGE_SIZE)}, SEARCH_MAX_PAGES,
                                    match_type="Patient", max_results=SEARCH_MAX_RESULTS)
        if pages.error is not None:
            raise pages.error  # a partial list would look complete to the user
        found: list[PatientSummary] = []
        skipped = pages.unreadable
        for resource in pages.matches:
            try:
                found.append(map_patient(resource, self.practice.id))
            except _MAPPING_ERRORS:
                skipped += 1
        matching = [p for p in found if _still_matches(p, query)]
        truncated = pages.truncated or len(matching) > SEARCH_MAX_RESULTS
        self.last_search_truncated = truncated
        if skipped or len(matching) < len(found):
            log.info("practice=%s search skipped_unreadable=%d dropped_nonmatching=%d", self.practice.id,
                     skipped, len(found) - len(matching))
        if truncated:
            log.info("practice=%s search truncated at %d results", self.practice.id, SEARCH_MAX_RESULTS)
        return Matches(matching[:SEARCH_MAX_RESULTS], unreadable=skipped)

    async def _search_criteria(self, query: PatientQuery) -> list[PatientSummary]:
        """Patients with the condition coded and in the age band (the research view's search). A server that
        declares no Condition resource cannot answer it: "not provided", never "nobody"."""
        self.last_search_truncated = False
        caps, _rounds = await self._ensure_capabilities()
        if not caps.supports("Condition"):
            raise AdapterError(f"{self.practice.name}: a search by study criteria is not provided by this "
                               "practice's system.", "unsupported")
        today = date.today()
        params = [*criteria_params(query, today), ("_count", str(SEARCH_PAGE_SIZE))]
        pages = await self._collect(f"Patient?{urlencode(params)}", None, SEARCH_MAX_PAGES, match_type="Patient",
                                    max_results=SEARCH_MAX_RESULTS)
        if pages.error is not None:
            raise pages.error  # a partial list would look complete to the user
        after, latest = query.birth_range(today)
        found: list[PatientSummary] = []
        skipped = pages.unreadable
        for resource in pages.matches:
            try:
                patient = map_patient(resource, self.practice.id)
            except _MAPPING_ERRORS:
                skipped += 1
                continue
            born = patient.birth_date
            if (after or latest) and (born is None or (after is not None and born <= after)
                                      or (latest is not None and born > latest)):
                continue  # a server that ignored the age band: only the band is believed
            found.append(patient)
        self.last_search_truncated = pages.truncated or len(found) > SEARCH_MAX_RESULTS
        log.info("practice=%s criteria search results=%d truncated=%s", self.practice.id, len(found),
                 self.last_search_truncated)
        return Matches(found[:SEARCH_MAX_RESULTS], unreadable=skipped)

    async def fetch_record(self, local_id: str) -> PatientRecord:
        if not _FHIR_ID.match(local_id):
            raise AdapterError(f"{self.practice.name}: that is not a valid record id for this practice. "
                               "Search for the patient again.", "not-found")
        tokens_before = self._token_fetches()
        caps, extra_rounds = await self._ensure_capabilities()
        if caps.supports_everything:
            record = await self._fetch_everything(local_id, caps)
        else:
            record = await self._fetch_by_type(local_id, caps)
        rounds = record.round_trips + extra_rounds + (self._token_fetches() - tokens_before)
        log.debug("practice=%s record fetched rounds=%d", self.practice.id, rounds)
        return dataclasses.replace(record, round_trips=rounds)

    async def activity(self, start: date, end: date, since: datetime | None = None) -> Activity:
        """The practice's appointment book (Slot, Appointment, Encounter, list size): adapters/fhir_r4/activity.py."""
        return await read_activity(self, start, end, since)

    async def activity_parts(self, start: date, end: date, since: datetime | None, on_part: OnPart) -> Activity:
        """The appointment book streamed, a page a part (adapters/base.py, adapters/fhir_r4/activity.py)."""
        return await read_activity(self, start, end, since, on_part)

    async def send_audit_event(self, event: dict, identifier: tuple[str, str]) -> None:
        """POST the AuditEvent as a conditional create keyed on `identifier`: a repeat is a no-op (200)."""
        system, value = identifier
        condition = "identifier=" + quote(f"{system}|{value}", safe=":/|")
        client = self._http()
        auth = self._authenticator()
        for attempt in (1, 2):
            headers = {**await auth.headers(client), "If-None-Exist": condition}
            try:
                await send_json(client, self.practice, "POST", self._url("AuditEvent"), event, headers=headers,
                                auth_hint=self._auth_hint(), logger=log)
                return
            except HttpError as exc:
                if exc.status == 401 and auth.refreshable and attempt == 1:
                    auth.invalidate(headers)
                    continue
                raise

    async def close(self) -> None:
        if isinstance(self._auth, ClientCredentialsAuth):
            self._auth.forget()  # sign-out: no access token outlives the session
        self._auth = None
        client, self._client = self._client, None
        await close_client(client, self._client_loop)

    # --- record strategies ----------------------------------------------------------------------

    async def _fetch_everything(self, local_id: str, caps: Capabilities) -> PatientRecord:
        try:
            pages = await self._collect(f"Patient/{local_id}/$everything",
                                        {"_count": str(EVERYTHING_PAGE_SIZE)}, EVERYTHING_MAX_PAGES)
        except AdapterError as exc:
            raise self._patient_error(exc) from exc
        patients = [r for r in pages.matches if r.get("resourceType") == "Patient"]
        own = next((r for r in patients if r.get("id") == local_id), None)
        if own is None:
            if patients:  # another patient's details: never show them under the one asked for
                raise self._other_patient_error()
            raise AdapterError(f"{self.practice.name} sent the record without the patient's details, so it "
                               "cannot be shown. Tell the practice.", "bad-reply")
        patient = self._patient(own, pages.index)
        flags = [r for r in pages.matches if r.get("resourceType") == "Flag"]
        contact = patient_contact(own, flags if pages.complete else None)  # a missing page may hold the mark
        failures: dict[SectionName, str] = {}
        if pages.error is not None:
            why = f"Only part of the record arrived. {pages.error.message}"
            failures = {s: why for s in SectionName}
        truncated = {s for s in SectionName} if pages.truncated else set()
        record = self._record(patient, caps, pages.matches, pages.index, failures, truncated, pages.requests,
                              contact, pages.unreadable)
        return dataclasses.replace(record, research_consent=research_consent(pages.matches))

    async def _fetch_by_type(self, local_id: str, caps: Capabilities) -> PatientRecord:
        types = [t for section in SectionName if any(caps.supports(t) for t in SECTION_TYPES[section])
                 for t in (*SECTION_TYPES[section], *COMPANION_TYPES.get(section, ())) if caps.supports(t)]
        tasks: dict[str, asyncio.Task[_Pages]] = {}
        for rtype in types:
            params = {"patient": local_id, "_count": str(RECORD_PAGE_SIZE)}
            if _INCLUDES.get(rtype) in caps.includes.get(rtype, frozenset()):
                params["_include"] = _INCLUDES[rtype]
            tasks[rtype] = asyncio.ensure_future(self._collect(rtype, params, RECORD_MAX_PAGES, match_type=rtype))
        consent_task = asyncio.ensure_future(self._consents(local_id)) if caps.supports("Consent") else None
        # the do-not-notify mark may be held as a Flag: read with the rest, in the same round
        flag_task = asyncio.ensure_future(self._flags(local_id)) if caps.supports("Flag") else None
        try:
            reply = await self._get(f"Patient/{local_id}")
            patient = self._patient(reply.data)
            if patient.local_id != local_id:
                raise self._other_patient_error()
        except BaseException as exc:
            others = [*tasks.values(), *(t for t in (consent_task, flag_task) if t is not None)]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            if isinstance(exc, AdapterError):
                raise self._patient_error(exc) from exc
            raise
        outcomes = dict(zip(tasks, await asyncio.gather(*tasks.values(), return_exceptions=True), strict=True))
        index = ResourceIndex()
        resources: list[dict[str, Any]] = []
        failures: dict[SectionName, str] = {}
        truncated: set[SectionName] = set()
        rounds = 1
        unreadable = 0
        for rtype, outcome in outcomes.items():
            section = next(s for s in SectionName if rtype in (*SECTION_TYPES[s], *COMPANION_TYPES.get(s, ())))
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, AdapterError):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    log.error("practice=%s %s search crashed", self.practice.id, rtype, exc_info=outcome)
                reason = outcome.message if isinstance(outcome, AdapterError) else (
                    f"{self.practice.name}: unexpected error ({type(outcome).__name__}); see the log.")
                failures[section] = _add_reason(failures.get(section), reason)
                continue
            rounds = max(rounds, outcome.requests)
            if outcome.error is not None:
                failures[section] = _add_reason(failures.get(section),
                                                f"Only part of this section arrived. {outcome.error.message}")
            if outcome.truncated:
                truncated.add(section)
            unreadable += outcome.unreadable
            resources.extend(outcome.matches)
            index.update(outcome.index)
        consent = await consent_task if consent_task is not None else None
        flags = await flag_task if flag_task is not None else None  # not offered: the mark cannot be read
        contact = patient_contact(reply.data, flags)
        record = self._record(patient, caps, resources, index, failures, truncated, rounds, contact, unreadable)
        return dataclasses.replace(record, research_consent=consent)

    async def _flags(self, local_id: str) -> list[dict[str, Any]] | None:
        """Every Flag the practice holds for the patient; None when they cannot all be read (the search failed,
        a page is missing, an entry is unreadable): the do-not-notify mark is then unknown."""
        try:
            pages = await self._collect("Flag", {"patient": local_id, "_count": str(RECORD_PAGE_SIZE)},
                                        RECORD_MAX_PAGES, match_type="Flag")
        except AdapterError as exc:
            log.info("practice=%s flag search failed kind=%s", self.practice.id, exc.kind)
            return None
        return pages.matches if pages.complete else None

    async def _consents(self, local_id: str) -> bool | None:
        """The patient's research consent, searched alongside the sections (same round); None when the
        search fails (no consent is assumed: the research view stays pseudonymised)."""
        try:
            pages = await self._collect("Consent", {"patient": local_id, "_count": str(RECORD_PAGE_SIZE)}, 1,
                                        match_type="Consent")
        except AdapterError as exc:
            log.info("practice=%s consent search failed kind=%s", self.practice.id, exc.kind)
            return None
        return research_consent(pages.matches)

    def _patient(self, data: Any, resolve: ResourceIndex | None = None) -> PatientSummary:
        try:
            return map_patient(data, self.practice.id, resolve)
        except _MAPPING_ERRORS as exc:
            raise AdapterError(f"{self.practice.name} sent patient details Mosaic cannot read. "
                               "Tell the practice.", "bad-reply") from exc

    def _other_patient_error(self) -> AdapterError:
        log.warning("practice=%s answered a record request with another patient's details", self.practice.id)
        return AdapterError(f"{self.practice.name} answered with the details of a different patient from the "
                            "one asked for, so the record is not shown. Tell the practice.", "bad-reply")

    def _patient_error(self, exc: AdapterError) -> AdapterError:
        if exc.kind == "not-found":
            return AdapterError(f"{self.practice.name} has no patient with this record id (the record may "
                                "have been merged or removed). Search for the patient again.", "not-found")
        return exc

    def _record(self, patient: PatientSummary, caps: Capabilities, resources: list[dict[str, Any]],
                index: ResourceIndex, failures: dict[SectionName, str], truncated: set[SectionName],
                rounds: int, contact: PatientContact | None = None, unreadable: int = 0) -> PatientRecord:
        now = datetime.now(UTC)
        if any(_about_someone_else(r, patient.local_id, patient.nhs_number) for r in resources):
            raise self._other_patient_error()  # a server that ignored `patient=`: nothing of it is shown
        mapped = map_resources(resources, index)
        sections: dict[SectionName, Section] = {}
        warnings: list[str] = []
        for section in SectionName:
            title = SECTION_TITLES[section]
            if not any(caps.supports(t) for t in SECTION_TYPES[section]):
                sections[section] = Section.unsupported(section)
            elif section in failures:
                sections[section] = Section.failed(section, failures[section])
            else:
                sections[section] = Section.loaded(section, mapped.entries[section], now)
                if mapped.skipped[section]:
                    n = mapped.skipped[section]
                    warnings.append(f"{title}: {n} {'entry' if n == 1 else 'entries'} could not be read "
                                    "and are not shown.")
                    log.info("practice=%s section=%s skipped_unreadable=%d", self.practice.id, section, n)
                if section in truncated:
                    warnings.append(f"{title}: the practice holds more entries than Mosaic fetches at once "
                                    f"({len(mapped.entries[section])} shown).")
                    log.info("practice=%s section=%s truncated at %d", self.practice.id, section,
                             len(mapped.entries[section]))
        if unreadable:
            warnings.append(f"{unreadable} {'entry' if unreadable == 1 else 'entries'} from {self.practice.name} "
                            "could not be read and are not shown.")
            log.info("practice=%s record unreadable_entries=%d", self.practice.id, unreadable)
        return PatientRecord(patient, sections, now, rounds, tuple(warnings), contact=contact)


async def _nothing() -> None:
    return None


def _add_reason(existing: str | None, reason: str) -> str:
    return reason if not existing or reason == existing else f"{existing} {reason}"


_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9.\-]{1,64})(?:/_history/[^/]+)?$")


def _about_someone_else(resource: dict[str, Any], local_id: str, number: str | None = None) -> bool:
    """Whether a record resource names another Patient as its subject or patient: a relative or absolute
    reference to another Patient id, a logical reference by another valid NHS number, or a contained Patient
    with another NHS number. A urn:uuid reference names nobody here and passes."""
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if not isinstance(ref, dict):
            continue
        reference = ref.get("reference")
        match = _PATIENT_REFERENCE.search(reference) if isinstance(reference, str) else None
        if match and match.group(1) != local_id:
            return True
        named = [ref.get("identifier")]
        if isinstance(reference, str) and reference.startswith("#"):
            named += [i for c in resource.get("contained") or [] if isinstance(c, dict)
                      and c.get("resourceType") == "Patient" and c.get("id") == reference[1:]
                      for i in (c.get("identifier") or [None])]
        other = next((n for n in (nhs_number([i]) for i in named) if n is not None), None)
        if other is not None and other != number:
            return True
    return False


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _still_matches(patient: PatientSummary, query: PatientQuery) -> bool:
    """Guard against servers that ignore a search parameter and return everyone.

    Only exact fields are checked here: names match any of a patient's names on the server (maiden,
    usual...), which the summary does not carry, so they are left to the server.
    """
    if query.nhs_number and patient.nhs_number != normalise(query.nhs_number):
        return False
    return not (query.birth_date and patient.birth_date and patient.birth_date != query.birth_date)


__all__ = ["FhirR4Adapter", "search_params", "SECTION_TYPES", "COMPANION_TYPES"]
