"""The codings the demo practices' appointment books publish (issue 13), and their practice-local slot types.

These are the demo practice's own published vocabulary: Mosaic's FHIR R4 adapter reads them in
adapters/fhir_r4/activity_codes.py, written separately on purpose, so that the tests' independent counts
(app/demo/appointment_book_counts.py) decode the raw resources with the practice's tables, not Mosaic's.

How each fact is carried (README "Locality insight: what the FHIR adapter reads"):

- mode: GP Connect's DeliveryChannel extension (valueCode In-person | Telephone | Video) on Slot, Appointment
  and Encounter; and for a home visit, which DeliveryChannel cannot say ("In-person"), the class HH (HL7 v3
  ActCode "home health"): FHIR R5's Appointment.class, carried in R4 by its cross-version extension on Slot
  and Appointment, and Encounter.class itself (AMB at the surgery, VR virtual, HH at home) on every Encounter.
- clinician type: the Schedule's and Appointment's GP Connect PractitionerRole extension (and
  PractitionerRole.code), a SNOMED CT occupation for GPs, nurses and pharmacists; other practice staff (a
  healthcare assistant) by their staff group in Mosaic's demo code system (code "other").
- national category: GPAD's National Appointment Categories as a coding in Mosaic's demo code system (NHS
  England publishes the categories as names, not as a FHIR CodeSystem), beside the practice's own slot type
  as the CodeableConcept's text, in Slot.serviceType and Appointment.serviceType. A local type the practice
  has not mapped has text only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.core.activity import NATIONAL_CATEGORIES as NATIONAL_CATEGORIES  # one list, the contract's
from app.core.activity import NATIONAL_CATEGORY_SYSTEM as NATIONAL_CATEGORY_SYSTEM

DELIVERY_CHANNEL_URL = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2"
PRACTITIONER_ROLE_URL = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-PractitionerRole-2"
#: FHIR R5 Appointment.class, carried in R4 by the cross-version extension
APPOINTMENT_CLASS_URL = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.class"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"


#: mode -> (DeliveryChannel code, ActCode class)
MODE_CODES: dict[str, tuple[str, str]] = {
    "face-to-face": ("In-person", "AMB"),
    "telephone": ("Telephone", "VR"),
    "video": ("Video", "VR"),
    "home-visit": ("In-person", "HH"),
}
ACT_DISPLAY = {"AMB": "ambulatory", "VR": "virtual", "HH": "home health"}

#: the staff group GPAD counts by, in Mosaic's demo code system, for staff with no SNOMED CT occupation here
STAFF_GROUP_SYSTEM = "https://fhir.mosaic.example.nhs.uk/CodeSystem/practice-staff-group"
#: clinician type -> (system, code, display): a SNOMED CT occupation for GPs, nurses and pharmacists; the
#: practice's other staff (here a healthcare assistant) by their staff group
ROLE_CODES: dict[str, tuple[str, str, str]] = {
    "gp": (SNOMED, "62247001", "General practitioner"),
    "nurse": (SNOMED, "106292003", "Professional nurse"),
    "pharmacist": (SNOMED, "46255001", "Pharmacist"),
    "other": (STAFF_GROUP_SYSTEM, "other", "Healthcare assistant"),
}


@dataclass(frozen=True)
class SlotType:
    """A practice's own slot type: who runs it, how it happens, its length and the national category it maps to."""

    local: str  # the practice's own words, as its system shows them
    role: str  # gp | nurse | pharmacist | other
    mode: str  # face-to-face | telephone | video | home-visit
    category: str | None  # a NATIONAL_CATEGORIES code, None: not mapped by the practice
    minutes: int
    weight: float  # share of the role's slots


STANDARD_TYPES: tuple[SlotType, ...] = (
    SlotType("Routine GP appointment", "gp", "face-to-face", "general-consultation-routine", 10, 0.40),
    SlotType("Same day urgent", "gp", "face-to-face", "general-consultation-acute", 10, 0.18),
    SlotType("GP telephone triage", "gp", "telephone", "clinical-triage", 10, 0.22),
    SlotType("Telephone consultation", "gp", "telephone", "general-consultation-routine", 10, 0.11),
    SlotType("Video consultation", "gp", "video", "general-consultation-routine", 10, 0.04),
    SlotType("Home visit", "gp", "home-visit", "home-visit", 30, 0.03),
    SlotType("Duty doctor list", "gp", "telephone", None, 10, 0.02),  # never mapped: the unmapped share
    SlotType("Nurse chronic disease review", "nurse", "face-to-face", "planned-clinics", 20, 0.45),
    SlotType("Cervical screening", "nurse", "face-to-face", "planned-clinical-procedure", 15, 0.20),
    SlotType("Immunisations", "nurse", "face-to-face", "planned-clinics", 10, 0.25),
    SlotType("Nurse telephone review", "nurse", "telephone", "planned-clinics", 15, 0.10),
    SlotType("Medication review", "pharmacist", "telephone", "structured-medication-review", 20, 0.60),
    SlotType("Pharmacist clinic", "pharmacist", "face-to-face", "general-consultation-routine", 15, 0.40),
    SlotType("Bloods", "other", "face-to-face", "planned-clinical-procedure", 10, 0.60),
    SlotType("NHS health check", "other", "face-to-face", "planned-clinics", 20, 0.25),
    SlotType("Social prescribing", "other", "telephone", "social-prescribing-service", 30, 0.15),
)
#: Saturday extended-access mornings (GPs only)
EXTENDED_ACCESS = SlotType("Extended access", "gp", "face-to-face", "general-consultation-routine", 15, 1.0)

#: the practice with its own mapping: the same local slot types, mapped to other national categories (what
#: makes practices' figures incomparable today, and what the mapping-consistency check finds)
OWN_MAPPING: dict[str, str] = {
    "Same day urgent": "unplanned-clinical-activity",
    "GP telephone triage": "general-consultation-acute",
    "Nurse chronic disease review": "general-consultation-routine",
    "Immunisations": "planned-clinical-procedure",
}


def slot_types(profile: str) -> tuple[SlotType, ...]:
    """The practice's slot types (its profile decides the mapping), and the Saturday type last."""
    types = STANDARD_TYPES + (EXTENDED_ACCESS,)
    if profile != "own-mapping":
        return types
    return tuple(replace(t, category=OWN_MAPPING.get(t.local, t.category)) for t in types)
