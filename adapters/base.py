"""The adapter contract: what the core asks of any practice backend, and how adapters are found.

An adapter speaks one backend's protocol and maps it into `app.core.model`. It never touches the
UI, the audit journal or the access policy. Third parties ship adapters as their own packages by
declaring an entry point in the group ``mosaic.adapters`` whose name is the config's ``adapter`` key.

Appointment books (issue 13) come two ways. `activity()` returns a practice's whole book as one `Activity`,
for callers that want it all. `activity_parts(..., on_part)` streams it: each `ActivityPart` (about a page of
one search) is awaited through `on_part` as it is mapped (the await is the back-pressure: a slow store slows the
read, so memory stays a few pages a search), and the call returns the `Activity` that closes the read, with its
`as_of`, list size, unreadable count and `not_provided` but no rows. Parts are not a book: a read that raises
part-way has handed some, and the caller must drop them (the insight store stages parts per practice and
applies them only when the read returns). An adapter that does not stream inherits `activity_parts` as "read
it all, hand it over as one part".
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from importlib.metadata import entry_points

from app.core.activity import Activity, ActivityPart
from app.core.model import PatientQuery, PatientRecord, PatientSummary, Practice, ServerInfo
from app.core.text import clean_text

ENTRY_POINT_GROUP = "mosaic.adapters"

#: what `Adapter.activity_parts` hands each part to
OnPart = Callable[[ActivityPart], Awaitable[None]]


class AdapterError(Exception):
    """A failure a user can read: what happened at this practice, in plain words.

    `kind` lets the core and UI tell failures apart without parsing text: "auth", "timeout",
    "network", "bad-reply", "too-large", "not-found", "server", "config", "unsupported".
    """

    def __init__(self, message: str, kind: str = "server") -> None:
        message = clean_text(message)  # it may quote the server: never a control or bidi character
        super().__init__(message)
        self.message = message
        self.kind = kind
        #: the id the practice's own audit knows the failed request by, where the protocol has one (GP Connect's
        #: Ssp-TraceID); it travels with this error, never through the adapter's state
        self.trace_id: str | None = None


class Matches(list[PatientSummary]):
    """What `Adapter.search` may return instead of a plain list: the patients found, with what the core journals
    and shows about this one request. `trace_id`: the id the practice's own audit knows the request by (GP
    Connect's Ssp-TraceID), carried with the answer so that concurrent requests never swap ids. `unreadable`:
    entries of the practice's reply that could not be read (counted and named to the user, never dropped
    silently)."""

    def __init__(self, patients: Iterable[PatientSummary] = (), *, trace_id: str | None = None,
                 unreadable: int = 0) -> None:
        super().__init__(patients)
        self.trace_id = trace_id
        self.unreadable = unreadable


class Adapter(abc.ABC):
    """One authenticated session to one practice backend.

    Instances live on the core's asyncio loop. `secret` is the practice's password, token or client
    secret as resolved by the core (environment or keyring); adapters never read secrets themselves.
    """

    #: the config ``adapter`` value, e.g. "fhir-r4"
    kind: str = ""
    #: can this backend search by name and birth date, or only by NHS number?
    supports_demographic_search: bool = True
    #: can this backend find patients by study criteria (a coded condition, an age band) for the research view?
    #: False: the core says "not provided by this practice's system" and never asks (so never "0 patients")
    supports_criteria_search: bool = False
    #: does the backend take Mosaic's AuditEvents? False where the provider audits each request itself
    #: (GP Connect): the journal then records the request's trace id instead, to join the two trails.
    accepts_audit_events: bool = True

    def __init__(self, practice: Practice, secret: str | None) -> None:
        self.practice = practice
        self.secret = secret

    @abc.abstractmethod
    async def connect(self) -> ServerInfo:
        """Authenticate and check the server answers; raise AdapterError with the reason if not."""

    @abc.abstractmethod
    async def search(self, query: PatientQuery) -> list[PatientSummary]:
        """Find patients matching every field of `query`; an empty list when none match (a `Matches` to say
        the request's trace id or how many entries could not be read)."""

    @abc.abstractmethod
    async def fetch_record(self, local_id: str) -> PatientRecord:
        """Fetch one patient's record. Each section ends loaded, failed (with why) or unsupported.

        Raises AdapterError only when the patient themself cannot be read (so there is no banner). The core
        checks the record's patient against the one asked for, and decides the access policy again on the
        record's own identifiers, whatever the adapter checked. `PatientRecord.trace_id` carries the request's
        id at the practice, where the protocol has one.
        """

    async def send_audit_event(self, event: dict, identifier: tuple[str, str]) -> None:
        """Deliver a FHIR AuditEvent to this practice, at most once per `identifier` (system, value).

        Returns once the practice has the event (stored now, or already from an earlier attempt).
        Raises AdapterError; an HttpError's `status` tells a refusal (4xx) from a failure worth
        retrying. Backends that cannot receive audit raise kind "unsupported".
        """
        raise AdapterError(f"{self.practice.name}: this kind of practice system ({self.kind or 'unknown'}) "
                           "cannot receive audit events from Mosaic; they are kept on this PC for export.",
                           "unsupported")

    async def activity(self, start: date, end: date, since: datetime | None = None) -> Activity:
        """The practice's appointment book for `start`..`end` (inclusive, by appointment and slot start): its
        slots, appointments, encounters and list size (app/core/activity.py). With `since`, only what changed
        after it (the previous read's `Activity.as_of`). Paged by the adapter; raises AdapterError.

        A backend that does not carry appointment books raises kind "unsupported", which the locality view
        shows as "not provided by this practice's system", never as zero."""
        raise AdapterError(f"{self.practice.name}: appointments and slots are not provided by this practice's "
                           f"system ({self.kind or 'unknown'}).", "unsupported")

    async def activity_parts(self, start: date, end: date, since: datetime | None, on_part: OnPart) -> Activity:
        """`activity()` streamed: each part awaited through `on_part` as it is read, then the closing Activity
        (no rows). See the module's docstring. This default reads the whole book and hands it over as one part."""
        whole = await self.activity(start, end, since)
        await on_part(ActivityPart(whole.slots, whole.appointments, whole.encounters))
        return dataclasses.replace(whole, slots=(), appointments=(), encounters=())

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Safe to call more than once."""


@functools.cache
def available_adapters() -> dict[str, type[Adapter]]:
    """Adapters installed in this environment, by config name (scanned once: ~4 ms a scan)."""
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, Adapter):
            found[ep.name] = cls
    return found


def adapter_for(practice: Practice, secret: str | None) -> Adapter:
    adapters = available_adapters()
    cls = adapters.get(practice.adapter)
    if cls is None:
        known = ", ".join(sorted(adapters)) or "none"
        raise AdapterError(
            f"{practice.name}: no adapter called '{practice.adapter}' is installed (installed: {known}).",
            kind="config",
        )
    return cls(practice, secret)
