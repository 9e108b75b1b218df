"""Independent counts of a demo practice's appointment book, straight from the FHIR JSON it serves.

For tests and benchmarks that check Mosaic's figures: the resources are read through the demo server's own
search code (`served`), and decoded with the demo practice's own published tables
(app/demo/appointment_book_codes.py), never with Mosaic's adapter or mapping. `raw_appointments` gives each
appointment's facts as plain values, for a test that recomputes a measure (DNA rate, same-day share, days
from booking) its own way; `independent_counts` counts by status, mode, clinician type and category.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from app.demo.appointment_book_codes import (
    APPOINTMENT_CLASS_URL,
    DELIVERY_CHANNEL_URL,
    MODE_CODES,
    NATIONAL_CATEGORIES,
    NATIONAL_CATEGORY_SYSTEM,
    PRACTITIONER_ROLE_URL,
    ROLE_CODES,
)

Resource = dict[str, Any]
_MODE_OF = {codes: mode for mode, codes in MODE_CODES.items()}  # (channel, class) -> mode
_ROLE_OF = {(system, code): role for role, (system, code, _display) in ROLE_CODES.items()}


@dataclass(frozen=True)
class RawAppointment:
    id: str
    status: str
    start: datetime
    created: datetime | None
    mode: str | None
    clinician_type: str | None
    category: str | None  # GPAD's name, None when the practice did not map its type
    local_type: str | None


def served(api: Any, rtype: str, query: Iterable[tuple[str, str]] = ()) -> Iterator[Resource]:
    """Every resource a search of the demo FhirApi `api` returns, page by page through its next links (the
    server's own search code, without HTTP or credentials). Entries that are not JSON objects are skipped."""
    from app.demo.fhir_api import Request

    params = [*query]
    while True:
        reply = api.search_book(Request("GET", f"/fhir/{rtype}", params, {}, params={"type": rtype}))
        if reply.status != 200:
            raise RuntimeError(f"{rtype} search failed: HTTP {reply.status} {reply.body[:200]!r}")
        bundle = json.loads(reply.body)
        for entry in bundle.get("entry") or []:
            if isinstance(entry.get("resource"), dict):
                yield entry["resource"]
        url = next((link["url"] for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
        if url is None:
            return
        params = parse_qsl(urlsplit(url).query, keep_blank_values=True)


def period_query(rtype: str, start: date, end: date) -> list[tuple[str, str]]:
    """The search for `start`..`end` (inclusive) by the type's date parameter."""
    name = "start" if rtype == "Slot" else "date"
    return [(name, f"ge{start.isoformat()}"), (name, f"le{end.isoformat()}")]


def _mode(resource: Resource) -> str | None:
    channel = act = None
    for ext in resource.get("extension") or []:
        if ext.get("url") == DELIVERY_CHANNEL_URL:
            channel = ext.get("valueCode")
        elif ext.get("url") == APPOINTMENT_CLASS_URL:
            act = ext["valueCodeableConcept"]["coding"][0]["code"]
    if isinstance(resource.get("class"), dict):
        act = resource["class"]["code"]
    if act == "HH":
        return "home-visit"
    if channel is not None:
        return _MODE_OF.get((channel, "VR" if channel in ("Telephone", "Video") else "AMB"))
    return "face-to-face" if act == "AMB" else None


def _role(resource: Resource) -> str | None:
    for ext in resource.get("extension") or []:
        if ext.get("url") == PRACTITIONER_ROLE_URL:
            coding = ext["valueCodeableConcept"]["coding"][0]
            return _ROLE_OF.get((coding["system"], coding["code"]))
    return None


def _category(concept: Resource) -> tuple[str | None, str | None]:
    codes = [c["code"] for c in concept.get("coding") or [] if c.get("system") == NATIONAL_CATEGORY_SYSTEM]
    return (NATIONAL_CATEGORIES[codes[0]] if codes else None), concept.get("text")


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def raw_appointments(resources: Iterable[Resource]) -> list[RawAppointment]:
    """The Appointments among `resources`, as plain facts."""
    found = []
    for r in resources:
        if r.get("resourceType") != "Appointment":
            continue
        category, local = _category(r["serviceType"][0])
        start = _when(r["start"])
        assert start is not None
        found.append(RawAppointment(r["id"], r["status"], start, _when(r.get("created")), _mode(r), _role(r),
                                    category, local))
    return found


def independent_counts(resources: Iterable[Resource]) -> dict[str, Counter[Any]]:
    """Counts of the book's resources: "Appointment.status", "Appointment.mode", "Appointment.clinician_type",
    "Appointment.category", "Slot.status", "Slot.mode", "Slot.clinician_type" (by the Schedules among
    `resources`), "Slot.category", "Encounter.status", "Encounter.mode"; None counts what is not mapped."""
    items = list(resources)
    schedule_roles = {r["id"]: _role(r) for r in items if r.get("resourceType") == "Schedule"}
    counts: dict[str, Counter[Any]] = {}

    def add(key: str, value: Any) -> None:
        counts.setdefault(key, Counter())[value] += 1

    for a in raw_appointments(items):
        add("Appointment.status", a.status)
        add("Appointment.mode", a.mode)
        add("Appointment.clinician_type", a.clinician_type)
        add("Appointment.category", a.category)
    for r in items:
        kind = r.get("resourceType")
        if kind == "Slot":
            add("Slot.status", r["status"])
            add("Slot.mode", _mode(r))
            add("Slot.clinician_type", schedule_roles.get(r["schedule"]["reference"].split("/")[-1]))
            add("Slot.category", _category(r["serviceType"][0])[0])
        elif kind == "Encounter":
            add("Encounter.status", r["status"])
            add("Encounter.mode", _mode(r))
    return counts


__all__ = ["RawAppointment", "independent_counts", "period_query", "raw_appointments", "served"]
