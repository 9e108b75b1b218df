"""A practice's activity for the locality view (issue 13): its appointment book, read through its adapter.

What an adapter hands the core from `Adapter.activity`: the slots of its schedules (capacity), the
appointments booked into them (activity and demand), the contacts that happened (encounters) and its list
size, all for one period, and only what changed since the last refresh when asked for that. Aggregates are
made from these in `app/insight/`; nothing here names a patient (an appointment keeps no patient reference:
the locality view never needs one, so it is never stored).

The words are FHIR R4's where FHIR has them (Slot.status, Appointment.status); a value the practice's system
sent that Mosaic cannot map is kept as None beside the practice's own text (`local_type`), so the
data-quality badge can count it, never guessed into a category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

#: FHIR R4 Slot.status
SlotStatus = Literal["free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error"]
SLOT_STATUSES: tuple[str, ...] = ("free", "busy", "busy-unavailable", "busy-tentative", "entered-in-error")

#: FHIR R4 Appointment.status
AppointmentStatus = Literal["proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                            "entered-in-error", "checked-in", "waitlist"]
APPOINTMENT_STATUSES: tuple[str, ...] = ("proposed", "pending", "booked", "arrived", "fulfilled", "cancelled",
                                         "noshow", "entered-in-error", "checked-in", "waitlist")
#: the statuses that count as an appointment in the issue's measure (cancelled and the rest do not)
COUNTED_STATUSES: frozenset[str] = frozenset({"booked", "arrived", "checked-in", "fulfilled", "noshow"})

#: how the appointment took place, in GPAD's terms (NHS England, Appointments in General Practice)
Mode = Literal["face-to-face", "telephone", "video", "home-visit"]
MODES: tuple[str, ...] = ("face-to-face", "telephone", "video", "home-visit")

#: who the appointment was with, in GPAD's HCP type terms
ClinicianType = Literal["gp", "nurse", "pharmacist", "other"]
CLINICIAN_TYPES: tuple[str, ...] = ("gp", "nurse", "pharmacist", "other")

#: the code system Mosaic (and the demo) codes the national category in: NHS England publishes GPAD's National
#: Appointment Categories as names, not as a FHIR CodeSystem
NATIONAL_CATEGORY_SYSTEM = "https://fhir.mosaic.example.nhs.uk/CodeSystem/gpad-national-appointment-category"
#: category code -> GPAD's National Appointment Category name, exactly as NHS England publishes it
NATIONAL_CATEGORIES: dict[str, str] = {
    "general-consultation-routine": "General Consultation Routine",
    "general-consultation-acute": "General Consultation Acute",
    "clinical-triage": "Clinical Triage",
    "planned-clinics": "Planned Clinics",
    "planned-clinical-procedure": "Planned Clinical Procedure",
    "unplanned-clinical-activity": "Unplanned Clinical Activity",
    "home-visit": "Home Visit",
    "care-home-visit": "Care Home Visit",
    "structured-medication-review": "Structured Medication Review",
    "social-prescribing-service": "Social Prescribing Service",
    "service-provided-by-external-organisation": "Service provided by organisation external to the practice",
    "walk-in": "Walk-in",
    "care-home-round": "Patient contact during Care Home Round",
    "care-home-needs-assessment": "Care Home Needs Assessment & Personalised Care and Support Planning",
    "group-consultation": "Group Consultation and Group Education",
    "non-contractual-chargeable-work": "Non-contractual chargeable work",
}


@dataclass(frozen=True)
class ActivitySlot:
    """One bookable (or blocked) period of a clinician's session."""

    id: str  # the practice's Slot id
    start: datetime  # timezone-aware
    end: datetime
    status: str  # one of SLOT_STATUSES
    schedule_id: str | None = None
    clinician_type: str | None = None  # one of CLINICIAN_TYPES, None when the schedule's actor is not known
    mode: str | None = None  # one of MODES, None when unmapped
    category: str | None = None  # the national appointment category (GPAD), None when unmapped
    local_type: str | None = None  # the practice's own slot type text, as sent (for the mapping check)
    updated: datetime | None = None  # meta.lastUpdated


@dataclass(frozen=True)
class ActivityAppointment:
    """One appointment, without its patient."""

    id: str  # the practice's Appointment id
    status: str  # one of APPOINTMENT_STATUSES
    start: datetime | None  # None for a waitlist or proposed appointment with no time yet
    created: datetime | None = None  # Appointment.created: when it was booked
    mode: str | None = None  # one of MODES, None when unmapped
    clinician_type: str | None = None  # one of CLINICIAN_TYPES, None when unmapped
    category: str | None = None  # national appointment category, None when unmapped
    local_type: str | None = None  # the practice's own appointment / slot type text
    slot_ids: tuple[str, ...] = ()
    updated: datetime | None = None


@dataclass(frozen=True)
class ActivityEncounter:
    """A contact that happened (FHIR Encounter), without its patient."""

    id: str
    start: datetime | None
    status: str  # FHIR R4 Encounter.status
    mode: str | None = None  # from Encounter.class (AMB face to face, VR virtual, HH home), None when unmapped
    appointment_id: str | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class Activity:
    """What one practice's system gave for a period (all of it, or what changed since `since`).

    `as_of` is the server's own time the read began, to be the next refresh's `since` (the server's clock, not
    this PC's: an incremental read that used the PC's clock would miss what changed while the clocks differ).
    """

    practice_id: str
    period_start: date
    period_end: date  # inclusive
    as_of: datetime
    since: datetime | None = None  # None: a full read of the period
    slots: tuple[ActivitySlot, ...] = ()
    appointments: tuple[ActivityAppointment, ...] = ()
    encounters: tuple[ActivityEncounter, ...] = ()
    list_size: int | None = None  # active registered patients, None when not given
    #: resources in the replies that could not be read: counted and shown, never dropped silently
    unreadable: int = 0
    #: resource types the practice's server does not offer ("Encounter"), shown as "not provided"
    not_provided: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ActivityPart:
    """A piece of a practice's read (about a page of one search), handed on as it arrives by
    `Adapter.activity_parts` so that a practice's whole book never sits in memory at once. A part is not a
    book: only the `Activity` that ends the read (its as_of, list size, unreadable count) makes the parts whole."""

    slots: tuple[ActivitySlot, ...] = ()
    appointments: tuple[ActivityAppointment, ...] = ()
    encounters: tuple[ActivityEncounter, ...] = ()
