"""A FHIR R4 practice's appointment book for the locality view (issue 13): read, paged, and mapped.

`read_activity` reads the practice's Schedules and list size (one round), then its Slots, Appointments and
Encounters for the period, all three at once, each split into quarters read side by side (a few chains at a
time), each chain following the server's next links. Pages are mapped as they arrive, with plain dict access
(no per-resource model objects: this runs on the core's event loop while the window is open), and dropped,
so a practice's 150,000 resources never sit in memory as JSON. Streamed (`on_part`, Adapter.activity_parts),
each page's mapped rows go on as they are made, so the mapped book never sits in memory either.

`Activity.as_of` is the server's clock, not this PC's: the earliest `meta.lastUpdated` of the first page of
every search (a searchset Bundle's lastUpdated is when the server made it). The earliest, so nothing that
changed while the read went on is later than it; taken from the Bundles rather than the HTTP Date header
because it is FHIR's own statement of the server's time, and fetch_json hands back the body, not headers.
A change in the same second is read twice (the store upserts by id), never missed.

What is not read: a patient. An Appointment's Patient participant and an Encounter's subject are never
looked at, so nothing that names a patient leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from adapters.base import AdapterError, OnPart
from adapters.fhir_r4 import activity_typed
from adapters.fhir_r4.activity_codes import (
    ACT_CODE,
    NATIONAL_CATEGORIES,
    NATIONAL_CATEGORY_SYSTEM,
    ROLE_TYPES,
    URL_KINDS,
    mode_from,
    url_kind,
)
from adapters.http import HttpError
from app.core.activity import (
    APPOINTMENT_STATUSES,
    SLOT_STATUSES,
    Activity,
    ActivityAppointment,
    ActivityEncounter,
    ActivityPart,
    ActivitySlot,
)

if TYPE_CHECKING:
    from adapters.fhir_r4.adapter import FhirR4Adapter

log = logging.getLogger("mosaic.adapters.fhir_r4.activity")

BOOK_TYPES = ("Slot", "Appointment", "Encounter")
#: the search parameter that filters each type by its start
DATE_PARAMS = {"Slot": "start", "Appointment": "date", "Encounter": "date"}
#: resources a page: ~2 MB of the demo's JSON, well inside max_response_bytes. Parsing one holds the interpreter
#: lock (orjson is C) for ~10-20 ms, which the window's thread may wait behind; 1,000 halves that but measured
#: 20-30 % slower at 100 ms latency (more rounds)
PAGE_SIZE = 2000
MIN_PAGE_SIZE = 50
ESTIMATED_RESOURCE_BYTES = 2048  # to fit the first page's _count to a practice's max_response_bytes
CHUNK_MONTHS = 3  # the period is read in quarters, side by side
CONCURRENT_CHAINS = 6  # searches in flight at once, per practice
MAX_PAGES = 2000  # per chain: a server whose next links never end is stopped, and that is an error
_MAPPING_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)
#: instants outside these years are not a practice's appointment book: the resource is unreadable (counted), so
#: a year-9999 time can neither overflow the store's date arithmetic nor fail the practice
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200
#: a server clock further ahead of this PC's than this is warned of (the cursor never runs ahead of this PC)
CLOCK_AHEAD_WARNING = timedelta(hours=1)
_SLOT_STATUSES = frozenset(SLOT_STATUSES)
_APPOINTMENT_STATUSES = frozenset(APPOINTMENT_STATUSES)


@dataclass
class _Collected:
    """What the chains have read so far: the rows themselves when the whole book is wanted (`on_part` None),
    else only their counts, each page's rows having gone to `on_part`."""

    on_part: OnPart | None = None
    slots: list[ActivitySlot] = field(default_factory=list)
    appointments: list[ActivityAppointment] = field(default_factory=list)
    encounters: list[ActivityEncounter] = field(default_factory=list)
    unreadable: int = 0
    server_times: list[datetime] = field(default_factory=list)  # meta.lastUpdated of each chain's first page
    newest_update: datetime | None = None  # the newest meta.lastUpdated read (for as_of without Bundle times)
    requests: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BOOK_TYPES, 0))


async def read_activity(adapter: FhirR4Adapter, start: date, end: date, since: datetime | None,
                        on_part: OnPart | None = None) -> Activity:
    """The practice's book for `start`..`end` (inclusive), or what changed in it after `since`: whole, or with
    `on_part` each page's rows handed to it as they are mapped and an Activity without rows returned
    (adapters/base.py). Streamed, a read holds a page a search, whatever the size of the book."""
    with collector_paused():
        return await _read(adapter, start, end, since, on_part)


_pauses = 0
_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while appointment books are read (nested and concurrent reads
    share one pause; the last to finish restores it as it was).

    Still needed with the read streamed and typed, measured (tests/perf/bench_insight.py's five
    practices, 2 cores): the mapped rows and the pages' lists outlive the collector's young passes while a part
    waits for the store, so they are promoted and trigger full passes over everything the process holds
    (~170,000 objects): 43 full passes and ~9 s of this process's CPU with the collector running (refresh 41 s)
    against none paused (29 s); with dict pages, before the typed decoding, 128 passes and 21 s. The read makes
    no reference cycles (a page is freed by reference counting once it is mapped), and streamed, its memory no
    longer grows with the book (peak RSS ~410 MB against 780 MB whole), so pausing loses nothing. The pause is
    process-wide (the collector is), so the window thread's collections wait too, for the ~30 s of a full
    refresh, and run after it."""
    global _pauses, _was_enabled
    if _pauses == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()


async def _read(adapter: FhirR4Adapter, start: date, end: date, since: datetime | None,
                on_part: OnPart | None) -> Activity:
    if end < start:
        raise AdapterError(f"{adapter.practice.name}: the period ends ({end}) before it starts ({start}).", "config")
    caps, _rounds = await adapter._ensure_capabilities()
    offered = [t for t in BOOK_TYPES if caps.supports(t)]
    not_provided = tuple(t for t in BOOK_TYPES if t not in offered)
    if "Appointment" not in offered and "Slot" not in offered:
        raise AdapterError(f"{adapter.practice.name}: appointments and slots are not provided by this practice's "
                           "system (its FHIR server offers neither Slot nor Appointment).", "unsupported")
    collected = _Collected(on_part)
    roles_task = asyncio.ensure_future(_schedules(adapter, collected) if caps.supports("Schedule") else _no_roles())
    size_task = asyncio.ensure_future(_list_size(adapter))
    try:
        schedules, roles = await roles_task
    except BaseException:
        size_task.cancel()
        await asyncio.gather(size_task, return_exceptions=True)
        raise
    gate = asyncio.Semaphore(CONCURRENT_CHAINS)
    chains = [asyncio.ensure_future(_chain(adapter, rtype, low, high, last, since, collected, gate,
                                           schedules, roles))
              for rtype in offered for low, high, last in _chunks(start, end)]
    try:
        await asyncio.gather(*chains)
    except BaseException:  # one search failed: a part-read book would look whole, so none of it is kept
        for task in (*chains, size_task):
            task.cancel()
        await asyncio.gather(*chains, size_task, return_exceptions=True)
        raise
    list_size = await size_task
    as_of = _as_of(collected, since, f"{adapter.practice.name} ({adapter.practice.id})")
    counts = collected.counts
    log.info("practice=%s activity slots=%d appointments=%d encounters=%d unreadable=%d requests=%d "
             "incremental=%s streamed=%s not_provided=%s", adapter.practice.id, counts["Slot"],
             counts["Appointment"], counts["Encounter"], collected.unreadable, collected.requests,
             since is not None, on_part is not None, ",".join(not_provided) or "-")
    return Activity(practice_id=adapter.practice.id, period_start=start, period_end=end, as_of=as_of, since=since,
                    slots=tuple(collected.slots), appointments=tuple(collected.appointments),
                    encounters=tuple(collected.encounters), list_size=list_size, unreadable=collected.unreadable,
                    not_provided=not_provided)


def _chunks(start: date, end: date) -> list[tuple[date, date, bool]]:
    """(first day, the next chunk's first day, is the last chunk) covering start..end in quarters."""
    chunks: list[tuple[date, date, bool]] = []
    low = start
    while low <= end:
        month = low.month - 1 + CHUNK_MONTHS
        high = date(low.year + month // 12, month % 12 + 1, 1)
        if high > end:
            chunks.append((low, end, True))
            break
        chunks.append((low, high, False))
        low = high
    return chunks


async def _pages(adapter: FhirR4Adapter, rtype: str, query: list[tuple[str, str]],
                 collected: _Collected) -> AsyncIterator[list[Any]]:
    """Yield each page's Bundle of one search, following next links; the first page's `_count` is fitted to
    the practice's max_response_bytes, and halved (down to MIN_PAGE_SIZE) if the practice still says too large.

    Each Bundle comes in a one-item list for the consumer to `pop()`: a generator suspended at `yield bundle`
    would keep the page's JSON (~40,000 objects) alive while its consumer waits for the store, and with a few
    dozen searches waiting, Python's collector walked a million objects again and again (measured: 20 s of
    a five-practice refresh).

    A Bundle is a dict, or for Slot, Appointment and Encounter pages a typed one (adapters/fhir_r4/activity_typed.py)
    when msgspec is installed and the page decodes."""
    decode = activity_typed.page_decoder(rtype)
    count = max(MIN_PAGE_SIZE, min(PAGE_SIZE, adapter.practice.max_response_bytes // ESTIMATED_RESOURCE_BYTES))
    while True:
        try:
            reply = await adapter._get(f"{rtype}?{urlencode([*query, ('_count', str(count))])}", decode=decode)
            break
        except HttpError as exc:
            if exc.kind != "too-large" or count <= MIN_PAGE_SIZE:
                raise
            count = max(MIN_PAGE_SIZE, count // 2)
    pages = 0
    while True:
        collected.requests += 1
        if activity_typed.is_typed(reply.data):
            bundle = reply.data
            if bundle.resourceType != "Bundle":
                adapter._bundle({"resourceType": bundle.resourceType})  # raises, naming what came instead
            url = activity_typed.next_link(bundle)
        else:
            bundle = adapter._bundle(reply.data)
            url = _next_link(bundle)
        del reply
        box = [bundle]
        del bundle
        yield box
        del box
        pages += 1
        if url is None:
            return
        if pages >= MAX_PAGES:
            raise AdapterError(f"{adapter.practice.name} kept sending more pages of {rtype} ({pages} read); "
                               "Mosaic stopped. Tell the practice.", "bad-reply")
        reply = await adapter._get(url, decode=decode)


async def _chain(adapter: FhirR4Adapter, rtype: str, low: date, high: date, last: bool, since: datetime | None,
                 collected: _Collected, gate: asyncio.Semaphore, schedules: dict[str, str],
                 roles: dict[str, str]) -> None:
    param = DATE_PARAMS[rtype]
    query = [(param, f"ge{low.isoformat()}"), (param, f"{'le' if last else 'lt'}{high.isoformat()}")]
    if since is not None:
        query.append(("_lastUpdated", f"gt{since.astimezone(UTC).isoformat()}"))
    first = True
    async with gate:
        pages = _pages(adapter, rtype, query, collected)
        while (box := await anext(pages, None)) is not None:
            bundle = box.pop()
            typed = activity_typed.is_typed(bundle)
            if first:
                first = False
                when = activity_typed.server_time(bundle, _instant) if typed else _server_time(bundle)
                if when is not None:
                    collected.server_times.append(when)
            if typed:
                rows, unreadable = activity_typed.take(rtype, bundle, schedules, roles, _MAPPING_ERRORS, _instant,
                                                       _date_time)
                if unreadable:
                    log.info("practice=%s %s unreadable=%d", adapter.practice.id, rtype, unreadable)
                collected.unreadable += unreadable
            else:
                rows = _take(adapter, rtype, adapter._entries(bundle), collected, schedules, roles)
            del bundle  # mapped: the page's JSON goes now, not after the next page arrives
            await _keep(rtype, rows, collected)


async def _keep(rtype: str, rows: list[Any], collected: _Collected) -> None:
    """One page's mapped rows: handed on as a part when streaming, else kept for the whole Activity."""
    collected.counts[rtype] += len(rows)
    newest = max((r.updated for r in rows if r.updated is not None), default=None)
    if newest is not None and (collected.newest_update is None or newest > collected.newest_update):
        collected.newest_update = newest
    if collected.on_part is not None:
        if rows:
            part = (ActivityPart(appointments=tuple(rows)) if rtype == "Appointment" else
                    ActivityPart(slots=tuple(rows)) if rtype == "Slot" else ActivityPart(encounters=tuple(rows)))
            await collected.on_part(part)
    elif rtype == "Appointment":
        collected.appointments.extend(rows)
    elif rtype == "Slot":
        collected.slots.extend(rows)
    else:
        collected.encounters.extend(rows)


def _take(adapter: FhirR4Adapter, rtype: str, entries: list[Any], collected: _Collected,
          schedules: dict[str, str], roles: dict[str, str]) -> list[Any]:
    """Map one page's entries of `rtype`; anything that cannot be read is counted, never dropped silently."""
    unreadable = 0
    rows: list[Any] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            unreadable += 1
            continue
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") in ("include", "outcome"):
            continue
        if resource.get("resourceType") != rtype:
            if resource.get("resourceType") != "OperationOutcome":
                unreadable += 1
            continue
        try:
            if rtype == "Appointment":
                rows.append(map_appointment(resource, roles))
            elif rtype == "Slot":
                rows.append(map_slot(resource, schedules))
            else:
                rows.append(map_encounter(resource))
        except _MAPPING_ERRORS:
            unreadable += 1
    if unreadable:
        log.info("practice=%s %s unreadable=%d", adapter.practice.id, rtype, unreadable)
    collected.unreadable += unreadable
    return rows


async def _schedules(adapter: FhirR4Adapter, collected: _Collected) -> tuple[dict[str, str], dict[str, str]]:
    """(schedule id -> clinician type, "PractitionerRole/id" or "Practitioner/id" -> clinician type)."""
    schedules: dict[str, str] = {}
    roles: dict[str, str] = {}
    async for box in _pages(adapter, "Schedule", [], collected):
        bundle = box.pop()
        for entry in adapter._entries(bundle):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or resource.get("resourceType") != "Schedule":
                continue
            try:
                kind = _facts(resource)[1]
                sid = resource["id"]
                actors = [a.get("reference") for a in resource.get("actor") or () if isinstance(a, dict)]
            except _MAPPING_ERRORS:
                collected.unreadable += 1
                continue
            if kind is None or not isinstance(sid, str):
                continue
            schedules[sid] = kind
            for ref in actors:
                if isinstance(ref, str) and ref.split("/")[-2:-1] in (["PractitionerRole"], ["Practitioner"]):
                    roles["/".join(ref.split("/")[-2:])] = kind
    return schedules, roles


async def _no_roles() -> tuple[dict[str, str], dict[str, str]]:
    return {}, {}


async def _list_size(adapter: FhirR4Adapter) -> int | None:
    """Active registered patients (`Patient?active=true&_summary=count`); None when the server will not say."""
    try:
        reply = await adapter._get("Patient", {"active": "true", "_summary": "count"})
    except AdapterError as exc:
        log.info("practice=%s list size not read kind=%s", adapter.practice.id, exc.kind)
        return None
    data = reply.data
    total = data.get("total") if isinstance(data, dict) and data.get("resourceType") == "Bundle" else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


# --- mapping: plain dict access, strict where the contract needs a value ---------------------------

def map_slot(r: dict[str, Any], schedules: dict[str, str]) -> ActivitySlot:
    status = r["status"]
    if status not in _SLOT_STATUSES:
        raise ValueError(f"slot status {status!r}")
    schedule = (r.get("schedule") or {}).get("reference")
    schedule_id = schedule.rsplit("/", 1)[-1] if isinstance(schedule, str) else None
    category, local = _service_type(r)
    start, end = _instant(r["start"]), _instant(r["end"])
    if end < start:
        raise ValueError("a slot that ends before it starts")
    return ActivitySlot(id=_id(r), start=start, end=end, status=status,
                        schedule_id=schedule_id, clinician_type=schedules.get(schedule_id) if schedule_id else None,
                        mode=_facts(r)[0], category=category, local_type=local, updated=_updated(r))


def map_appointment(r: dict[str, Any], roles: dict[str, str]) -> ActivityAppointment:
    status = r["status"]
    if status not in _APPOINTMENT_STATUSES:
        raise ValueError(f"appointment status {status!r}")
    start = r.get("start")
    created = r.get("created")
    category, local = _service_type(r)
    mode, kind = _facts(r)
    if kind is None:  # the clinician taking part, by the Schedules' actors (never the patient: not looked at)
        for participant in r.get("participant") or ():
            ref = (participant.get("actor") or {}).get("reference")
            if isinstance(ref, str) and ("PractitionerRole/" in ref or "Practitioner/" in ref):
                kind = roles.get("/".join(ref.split("/")[-2:]))
                if kind is not None:
                    break
    slots = tuple(s["reference"].rsplit("/", 1)[-1] for s in r.get("slot") or () if isinstance(s.get("reference"), str))
    return ActivityAppointment(id=_id(r), status=status, start=_instant(start) if start is not None else None,
                               created=_date_time(created) if created is not None else None, mode=mode,
                               clinician_type=kind, category=category, local_type=local, slot_ids=slots,
                               updated=_updated(r))


def map_encounter(r: dict[str, Any]) -> ActivityEncounter:
    status = r["status"]
    if not isinstance(status, str):
        raise ValueError("encounter status")
    start = (r.get("period") or {}).get("start")
    appointment = next((a["reference"].rsplit("/", 1)[-1] for a in r.get("appointment") or ()
                        if isinstance(a.get("reference"), str)), None)
    return ActivityEncounter(id=_id(r), start=_date_time(start) if start is not None else None, status=status,
                             mode=_facts(r)[0], appointment_id=appointment, updated=_updated(r))


def mode_of(r: dict[str, Any]) -> str | None:
    """Face to face, telephone, video or home visit: a home visit by its class (HH), else by GP Connect's
    DeliveryChannel, else by the class alone (AMB); None when neither says."""
    return _facts(r)[0]


def clinician_type(r: dict[str, Any]) -> str | None:
    """GP, nurse, pharmacist or other, from GP Connect's PractitionerRole extension; None when not coded."""
    return _facts(r)[1]


def _facts(r: dict[str, Any]) -> tuple[str | None, str | None]:
    """(mode, clinician type) from the resource's class and extensions, in one pass."""
    act = channel = None
    role: str | None = None
    klass = r.get("class")  # Encounter.class: a Coding
    if klass is not None and klass.get("system") == ACT_CODE:
        act = klass.get("code")
    for ext in r.get("extension") or ():
        url = ext["url"]
        kind = URL_KINDS.get(url) or url_kind(url)
        if kind == "channel":
            value = ext.get("valueCode")
            if value is None:
                codings = (ext.get("valueCodeableConcept") or {}).get("coding") or [{}]
                coding: dict[str, Any] = ext.get("valueCoding") or codings[0]
                value = coding.get("code")
            channel = value.lower() if isinstance(value, str) else None
        elif kind == "class":
            act = _code(ext.get("valueCodeableConcept"), ACT_CODE) or act
        elif kind == "role" and role is None:
            for coding in (ext.get("valueCodeableConcept") or {}).get("coding") or ():
                role = ROLE_TYPES.get((str(coding.get("system")), str(coding.get("code"))))
                if role is not None:
                    break
    return mode_from(act, channel), role


def _service_type(r: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the national category, the practice's own type text) from serviceType (Encounter: one concept;
    Slot, Appointment: a list), else appointmentType."""
    concepts = r.get("serviceType") or ()
    if isinstance(concepts, dict):
        concepts = (concepts,)
    kind = r.get("appointmentType")
    if kind is not None:
        concepts = (*concepts, kind)
    category = local = None
    for concept in concepts:
        text = concept.get("text")
        if local is None and isinstance(text, str):
            local = text
        for coding in concept.get("coding") or ():
            if category is None and coding.get("system") == NATIONAL_CATEGORY_SYSTEM:
                category = NATIONAL_CATEGORIES.get(coding.get("code"))
            elif local is None and isinstance(coding.get("display"), str):
                local = coding["display"]
    return category, local


def _code(concept: Any, system: str) -> str | None:
    if not isinstance(concept, dict):
        return None
    return next((c.get("code") for c in concept.get("coding") or () if c.get("system") == system), None)


def _id(r: dict[str, Any]) -> str:
    rid = r["id"]
    if not isinstance(rid, str) or not rid:
        raise ValueError("no id")
    return rid


def _instant(text: Any) -> datetime:
    """A FHIR instant: a full date and time with its offset (a naive one is not an instant: unreadable), in
    EARLIEST_YEAR..LATEST_YEAR."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("an instant without its offset")
    return _in_range(when)


def _date_time(text: Any) -> datetime:
    """A FHIR dateTime: a date alone is its midnight, UTC; one without an offset is taken as UTC."""
    when = datetime.fromisoformat(text)
    return _in_range(when if when.tzinfo is not None else when.replace(tzinfo=UTC))


def _in_range(when: datetime) -> datetime:
    """`when`, if its year (in UTC too: 9999-12-31T23:00-05:00 is year 10000 there) is one a book can hold."""
    if EARLIEST_YEAR < when.year < LATEST_YEAR:  # an offset is under a day: its UTC year is in range too (2 M
        return when  # times a five-practice refresh; converting each to UTC took ~1.5 s of the loop's CPU)
    try:
        years = (when.year, when.astimezone(UTC).year)
    except OverflowError:
        years = (when.year, LATEST_YEAR + 1)
    if not all(EARLIEST_YEAR <= year <= LATEST_YEAR for year in years):
        raise ValueError(f"a time outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return when


def _updated(r: dict[str, Any]) -> datetime | None:
    meta = r.get("meta")
    text = meta.get("lastUpdated") if meta is not None else None
    return _instant(text) if text is not None else None


def _server_time(bundle: dict[str, Any]) -> datetime | None:
    text = (bundle.get("meta") or {}).get("lastUpdated") if isinstance(bundle.get("meta"), dict) else None
    try:
        return _instant(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _as_of(collected: _Collected, since: datetime | None, practice: str = "") -> datetime:
    """The server's time the read began (see the module's docstring), never later than this PC's now: a server
    whose clock (or Bundle time) is ahead, say year 9999, would otherwise set a cursor no later change passes,
    so nothing would ever be read again; an earlier cursor only reads some things twice (upserted by id). More
    than CLOCK_AHEAD_WARNING ahead is warned of, naming `practice`. Without any Bundle time: the newest
    lastUpdated read, else `since`, else this PC's time less an hour, logged."""
    now = datetime.now(UTC)
    if collected.server_times:
        server = min(collected.server_times)
    elif collected.newest_update is not None:
        server = collected.newest_update
    elif since is not None:
        server = since
    else:
        log.warning("activity: practice=%s the server gave no time; as_of is this PC's clock less an hour", practice)
        return now - timedelta(hours=1)
    if server > now + CLOCK_AHEAD_WARNING:
        log.warning("activity: practice=%s the server's time (%s) is more than an hour ahead of this PC's (%s); "
                    "its changes are read from this PC's time instead", practice, server.isoformat(),
                    now.isoformat(timespec="seconds"))
    return min(server, now)


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None
