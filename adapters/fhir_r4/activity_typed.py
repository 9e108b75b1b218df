"""Appointment-book pages decoded straight into the few fields Mosaic reads (msgspec), the fast path of
adapters/fhir_r4/activity.py.

Why: a page of 2,000 appointments parsed into dicts and mapped took ~28 ms of the core's loop; decoded into
these types and mapped, ~10 ms, and the fields Mosaic never reads (a participant's display, fullUrl, the
coding displays) are skipped, never built. The types are `gc=False`: Python's collector never walks them.

The same answers as the dict path, or none: every field is optional here and checked in the mapping exactly
as activity.py checks it, so a resource missing its id or with an unknown status is counted unreadable the
same way. A page with a value of an unexpected JSON type anywhere (a number where FHIR has a string) does not
decode at all: `decode_page` returns None and the page is parsed as plain JSON and mapped by activity.py's
dict path, which counts the bad resources one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from adapters.fhir_r4.activity_codes import (
    ACT_CODE,
    NATIONAL_CATEGORIES,
    NATIONAL_CATEGORY_SYSTEM,
    ROLE_TYPES,
    URL_KINDS,
    mode_from,
    url_kind,
)
from app.core.activity import APPOINTMENT_STATUSES, SLOT_STATUSES, ActivityAppointment, ActivityEncounter, ActivitySlot

_SLOT_STATUSES = frozenset(SLOT_STATUSES)
_APPOINTMENT_STATUSES = frozenset(APPOINTMENT_STATUSES)


class Coding(msgspec.Struct, gc=False):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class Concept(msgspec.Struct, gc=False):
    text: str | None = None
    coding: list[Coding] | None = None


class Extension(msgspec.Struct, gc=False):
    url: str | None = None
    valueCode: str | None = None  # noqa: N815 - FHIR's name
    valueCoding: Coding | None = None  # noqa: N815
    valueCodeableConcept: Concept | None = None  # noqa: N815


class Reference(msgspec.Struct, gc=False):
    reference: str | None = None


class Participant(msgspec.Struct, gc=False):
    actor: Reference | None = None


class Meta(msgspec.Struct, gc=False):
    lastUpdated: str | None = None  # noqa: N815


class Period(msgspec.Struct, gc=False):
    start: str | None = None


class Resource(msgspec.Struct, gc=False):
    """The fields of Slot, Appointment and Encounter that Mosaic reads (one type: unknown fields skipped)."""

    resourceType: str | None = None  # noqa: N815
    id: Any = None  # checked as the dict path checks it
    status: Any = None
    meta: Meta | None = None
    extension: list[Extension] | None = None
    start: str | None = None
    end: str | None = None
    created: str | None = None
    schedule: Reference | None = None
    slot: list[Reference] | None = None
    participant: list[Participant] | None = None
    appointmentType: Concept | None = None  # noqa: N815
    period: Period | None = None
    appointment: list[Reference] | None = None
    klass: Coding | None = msgspec.field(default=None, name="class")


class SlotResource(Resource, gc=False):
    serviceType: list[Concept] | None = None  # noqa: N815


class EncounterResource(Resource, gc=False):
    serviceType: Concept | None = None  # noqa: N815 - Encounter's is one concept (not read)


class Search(msgspec.Struct, gc=False):
    mode: str | None = None


class SlotEntry(msgspec.Struct, gc=False):
    resource: SlotResource | None = None
    search: Search | None = None


class EncounterEntry(msgspec.Struct, gc=False):
    resource: EncounterResource | None = None
    search: Search | None = None


class Link(msgspec.Struct, gc=False):
    relation: str | None = None
    url: str | None = None


class SlotBundle(msgspec.Struct, gc=False):
    """A searchset page of Slots or Appointments."""

    resourceType: str | None = None  # noqa: N815
    meta: Meta | None = None
    link: list[Link] | None = None
    entry: list[SlotEntry] | None = None


class EncounterBundle(msgspec.Struct, gc=False):
    resourceType: str | None = None  # noqa: N815
    meta: Meta | None = None
    link: list[Link] | None = None
    entry: list[EncounterEntry] | None = None


_DECODERS: dict[str, Any] = {"Slot": msgspec.json.Decoder(SlotBundle),
                             "Appointment": msgspec.json.Decoder(SlotBundle),
                             "Encounter": msgspec.json.Decoder(EncounterBundle)}
TYPED_BUNDLES: tuple[type, ...] = (SlotBundle, EncounterBundle)
_EMPTY_CODING: Any = Coding()


def page_decoder(rtype: str) -> Callable[[bytes], Any] | None:
    """A decoder for a page of `rtype` (None for another type): the typed Bundle, or None when the page has a value
    of an unexpected type (then the page is parsed as plain JSON)."""
    decoder = _DECODERS.get(rtype)
    if decoder is None:
        return None
    invalid = msgspec.ValidationError

    def decode(body: bytes) -> Any:
        try:
            return decoder.decode(body)
        except invalid:
            return None
        except msgspec.DecodeError:
            return None  # not JSON at all: the plain parser says why, as for any reply

    return decode


def is_typed(bundle: Any) -> bool:
    return isinstance(bundle, TYPED_BUNDLES)


def next_link(bundle: Any) -> str | None:
    return next((link.url for link in bundle.link or () if link.relation == "next" and link.url is not None), None)


def server_time(bundle: Any, instant: Callable[[Any], datetime]) -> datetime | None:
    text = bundle.meta.lastUpdated if bundle.meta is not None else None
    try:
        return instant(text) if text is not None else None
    except ValueError:
        return None


def take(rtype: str, bundle: Any, schedules: dict[str, str], roles: dict[str, str],
         facts_errors: tuple[type[Exception], ...], instant: Callable[[Any], datetime],
         date_time: Callable[[Any], datetime]) -> tuple[list[Any], int]:
    """One typed page's rows of `rtype`, and how many of its resources could not be read (as activity._take)."""
    rows: list[Any] = []
    unreadable = 0
    for entry in bundle.entry or ():
        r = entry.resource
        if r is None:
            unreadable += 1
            continue
        if entry.search is not None and entry.search.mode in ("include", "outcome"):
            continue
        if r.resourceType != rtype:
            if r.resourceType != "OperationOutcome":
                unreadable += 1
            continue
        try:
            if rtype == "Appointment":
                rows.append(_appointment(r, roles, instant, date_time))
            elif rtype == "Slot":
                rows.append(_slot(r, schedules, instant))
            else:
                rows.append(_encounter(r, date_time, instant))
        except facts_errors:
            unreadable += 1
    return rows, unreadable


def _slot(r: Any, schedules: dict[str, str], instant: Callable[[Any], datetime]) -> ActivitySlot:
    status = r.status
    if status not in _SLOT_STATUSES:
        raise ValueError(f"slot status {status!r}")
    schedule = r.schedule.reference if r.schedule is not None else None
    schedule_id = schedule.rsplit("/", 1)[-1] if schedule is not None else None
    category, local = _service_type(r)
    start, end = instant(r.start), instant(r.end)
    if end < start:
        raise ValueError("a slot that ends before it starts")
    return ActivitySlot(id=_id(r), start=start, end=end, status=status,
                        schedule_id=schedule_id, clinician_type=schedules.get(schedule_id) if schedule_id else None,
                        mode=_facts(r)[0], category=category, local_type=local, updated=_updated(r, instant))


def _appointment(r: Any, roles: dict[str, str], instant: Callable[[Any], datetime],
                 date_time: Callable[[Any], datetime]) -> ActivityAppointment:
    status = r.status
    if status not in _APPOINTMENT_STATUSES:
        raise ValueError(f"appointment status {status!r}")
    category, local = _service_type(r)
    mode, kind = _facts(r)
    if kind is None:  # the clinician taking part, by the Schedules' actors (never the patient: not looked at)
        for participant in r.participant or ():
            ref = participant.actor.reference if participant.actor is not None else None
            if ref is not None and ("PractitionerRole/" in ref or "Practitioner/" in ref):
                kind = roles.get("/".join(ref.split("/")[-2:]))
                if kind is not None:
                    break
    slots = tuple(s.reference.rsplit("/", 1)[-1] for s in r.slot or () if s.reference is not None)
    return ActivityAppointment(id=_id(r), status=status, start=instant(r.start) if r.start is not None else None,
                               created=date_time(r.created) if r.created is not None else None, mode=mode,
                               clinician_type=kind, category=category, local_type=local, slot_ids=slots,
                               updated=_updated(r, instant))


def _encounter(r: Any, date_time: Callable[[Any], datetime], instant: Callable[[Any], datetime]
               ) -> ActivityEncounter:
    status = r.status
    if not isinstance(status, str):
        raise ValueError("encounter status")
    start = r.period.start if r.period is not None else None
    appointment = next((a.reference.rsplit("/", 1)[-1] for a in r.appointment or () if a.reference is not None),
                       None)
    return ActivityEncounter(id=_id(r), start=date_time(start) if start is not None else None, status=status,
                             mode=_facts(r)[0], appointment_id=appointment, updated=_updated(r, instant))


def _facts(r: Any) -> tuple[str | None, str | None]:
    """(mode, clinician type), as activity._facts reads them from a dict."""
    act = channel = None
    role: str | None = None
    klass = r.klass
    if klass is not None and klass.system == ACT_CODE:
        act = klass.code
    for ext in r.extension or ():
        url = ext.url
        if url is None:
            raise KeyError("url")
        kind = URL_KINDS.get(url) or url_kind(url)
        if kind == "channel":
            value = ext.valueCode
            if value is None:
                coding = ext.valueCoding
                if coding is None or coding == _EMPTY_CODING:  # as the dict path's `valueCoding or ...`
                    codings = ext.valueCodeableConcept.coding if ext.valueCodeableConcept is not None else None
                    coding = codings[0] if codings else None
                value = coding.code if coding is not None else None
            channel = value.lower() if value is not None else None
        elif kind == "class":
            act = _code(ext.valueCodeableConcept, ACT_CODE) or act
        elif kind == "role" and role is None:
            concept = ext.valueCodeableConcept
            for coding in (concept.coding if concept is not None else None) or ():
                role = ROLE_TYPES.get((str(coding.system), str(coding.code)))
                if role is not None:
                    break
    return mode_from(act, channel), role


def _service_type(r: Any) -> tuple[str | None, str | None]:
    concepts: list[Any] = list(r.serviceType or ())
    if r.appointmentType is not None:
        concepts.append(r.appointmentType)
    category = local = None
    for concept in concepts:
        if local is None and concept.text is not None:
            local = concept.text
        for coding in concept.coding or ():
            if category is None and coding.system == NATIONAL_CATEGORY_SYSTEM:
                category = NATIONAL_CATEGORIES.get(coding.code)
            elif local is None and coding.display is not None:
                local = coding.display
    return category, local


def _code(concept: Any, system: str) -> str | None:
    if concept is None:
        return None
    return next((c.code for c in concept.coding or () if c.system == system), None)


def _id(r: Any) -> str:
    rid = r.id
    if not isinstance(rid, str) or not rid:
        raise ValueError("no id")
    return rid


def _updated(r: Any, instant: Callable[[Any], datetime]) -> datetime | None:
    text = r.meta.lastUpdated if r.meta is not None else None
    return instant(text) if text is not None else None
