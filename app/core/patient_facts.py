"""What a patient banner says, as words: birth and death, registration, allergies, and whether the record is
complete. Shared by the window's banner and the record summary it prints, so both say the same thing.

Allergy labels follow the NHS CUI patient banner guidance (Design Guide Entry - Patient Banner, section 2.9,
PAB-0064): "Known allergies", "No known allergies", and plain words when the allergies are not known. An
empty allergy list is *not* "No known allergies": that is a statement somebody recorded (a "No known
allergy" code); an empty list only says nothing is recorded. A section that failed is never either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from app.core.display import age_on, format_age, format_date
from app.core.model import SECTION_TITLES, Entry, PatientRecord, PatientSummary, SectionName

#: SNOMED CT concepts that record an absence of allergy rather than an allergy (UK Core / GP Connect)
NO_KNOWN_ALLERGY_CODES = frozenset({
    "716186003",  # No known allergy
    "409137002",  # No known drug allergy
    "428607008",  # No known environmental allergy
    "429625007",  # No known food allergy
    "1066241000000106",  # No known allergy (UK edition term)
})

AllergyState = Literal["known", "none-known", "none-recorded", "failed", "not-provided", "withheld", "not-loaded"]

KNOWN_ALLERGIES = "Known allergies"
NO_KNOWN_ALLERGIES = "No known allergies"
NO_ALLERGIES_RECORDED = "No allergies recorded"
ALLERGIES_FAILED = "Allergies could not be loaded"
ALLERGIES_NOT_PROVIDED = "Allergies not provided by this practice's system"
ALLERGIES_WITHHELD = "Allergies withheld for this study"
ALLERGIES_WITHHELD_FOR_ROLE = "Allergies not shown under the access policy for your role"
RECORD_INCOMPLETE = "Record incomplete"


@dataclass(frozen=True)
class AllergySummary:
    """The allergies line: its state, its label, and the allergies themselves ("Penicillin (severe)")."""

    state: AllergyState
    label: str
    items: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.label}: {', '.join(self.items)}" if self.items else self.label


def _is_no_known_allergy(entry: Entry) -> bool:
    code = entry.coding.code if entry.coding is not None else None
    if code in NO_KNOWN_ALLERGY_CODES:
        return True
    return entry.text.strip().lower().rstrip(".") in {"no known allergies", "no known allergy", "nka", "nkda",
                                                     "no known drug allergies", "no known drug allergy"}


#: an allergy's status words (FHIR clinical and verification status, as the adapters keep them) that mean it is
#: not a current allergy: the banner lists current ones only (the record's allergies section shows them all)
_NOT_CURRENT = ("inactive", "resolved", "refuted", "entered-in-error")


def is_current_allergy(entry: Entry) -> bool:
    status = (entry.status or "").lower()
    return not any(word in status for word in _NOT_CURRENT)


def allergy_item(entry: Entry) -> str:
    """'Penicillin (severe)'; the severity (or criticality) in brackets where the practice gave one."""
    return f"{entry.text} ({entry.severity})" if entry.severity else entry.text


def allergy_summary(record: PatientRecord | None) -> AllergySummary:
    """The banner's allergies line for `record` (None: not arrived yet)."""
    if record is None:
        return AllergySummary("not-loaded", "Allergies not loaded yet")
    section = record.sections.get(SectionName.ALLERGIES)
    if section is None or section.status == "failed":
        return AllergySummary("failed", ALLERGIES_FAILED)
    if section.status == "unsupported":
        return AllergySummary("not-provided", ALLERGIES_NOT_PROVIDED)
    if section.status == "withheld":
        return AllergySummary("withheld", ALLERGIES_WITHHELD if record.patient.pseudonym
                              else ALLERGIES_WITHHELD_FOR_ROLE)
    allergies = [e for e in section.entries if not _is_no_known_allergy(e) and is_current_allergy(e)]
    if allergies:
        severe_first = sorted(allergies, key=lambda e: 0 if (e.severity or "").lower() in ("severe", "high",
                                                                                            "high risk") else 1)
        return AllergySummary("known", KNOWN_ALLERGIES, tuple(allergy_item(e) for e in severe_first))
    if any(_is_no_known_allergy(e) and is_current_allergy(e) for e in section.entries):  # not one entered in error
        return AllergySummary("none-known", NO_KNOWN_ALLERGIES)
    ended = sum(1 for e in section.entries if not _is_no_known_allergy(e))
    if ended:  # only ended (resolved, refuted) allergies: said, never as "no known allergies"
        return AllergySummary("none-recorded", f"No current allergies recorded ({ended} ended: see Allergies)")
    return AllergySummary("none-recorded", NO_ALLERGIES_RECORDED)


def failed_sections(record: PatientRecord | None) -> list[SectionName]:
    """The sections that could not be loaded, in display order (a section never sent counts as failed)."""
    if record is None:
        return []
    return [name for name in SECTION_TITLES
            if (s := record.sections.get(name)) is None or s.status == "failed"]


def incomplete_text(record: PatientRecord | None) -> str | None:
    """'Record incomplete: medications and allergies could not be loaded', or None when nothing failed."""
    failed = failed_sections(record)
    if not failed:
        return None
    names = [SECTION_TITLES[n].split(" and ")[0].lower() if n is SectionName.ALLERGIES else SECTION_TITLES[n].lower()
             for n in failed]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{RECORD_INCOMPLETE}: {listed} could not be loaded"


def death_date(patient: PatientSummary) -> date | None:
    return patient.deceased if isinstance(patient.deceased, date) else None


def born_text(patient: PatientSummary, today: date | None = None) -> str:
    """'12-Mar-1975 (47y)'; a deceased patient's without an age (it stops at death: see `deceased_text`);
    the year only in the research view."""
    if patient.pseudonym:
        return str(patient.birth_year) if patient.birth_year else "Not known"
    if patient.birth_date is None:
        return "Not known"
    if patient.is_deceased:
        return format_date(patient.birth_date)
    return f"{format_date(patient.birth_date)} ({format_age(patient.birth_date, today)})"


def deceased_text(patient: PatientSummary) -> str | None:
    """'03-Jan-2024 (aged 83y)', 'date not known', or None when the patient is not recorded as deceased."""
    if not patient.is_deceased:
        return None
    if patient.pseudonym:
        return "date withheld (research view)"  # the fact is kept, never the date (app/core/research.py)
    died = death_date(patient)
    if died is None:
        return "date not known"
    if patient.birth_date is not None and not patient.pseudonym:
        return f"{format_date(died)} (aged {format_age(patient.birth_date, died)})"
    return format_date(died)


def age_at_death(patient: PatientSummary) -> int | None:
    died = death_date(patient)
    if died is None or patient.birth_date is None:
        return None
    return age_on(patient.birth_date, died)


def address_text(patient: PatientSummary) -> str | None:
    """The home address on one line, or the postcode alone; None when not known (or the research view)."""
    if patient.pseudonym:
        return None
    if patient.address is not None and patient.address.one_line():
        return patient.address.one_line()
    return patient.postcode or None


def registration_text(patient: PatientSummary, practice_name: str | None = None) -> str | None:
    """'Regular · GP Dr A Smith · since 04-Feb-2015 · at Riverside (Y12345)': what the practice says of the
    registration. The practice is named only when it differs from the one the record came from."""
    reg = patient.registration
    if reg is None or patient.pseudonym:
        return None
    parts = []
    if reg.kind:
        parts.append(reg.kind)
    if reg.gp:
        parts.append(f"GP {reg.gp}")
    if reg.since:
        parts.append(f"since {format_date(reg.since)}")
    if reg.practice_name and reg.practice_name != practice_name:
        parts.append(f"at {reg.practice_name}" + (f" ({reg.practice_ods})" if reg.practice_ods else ""))
    return " · ".join(parts) or None
