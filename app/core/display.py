"""How the core's values are written for people (NHS Common User Interface conventions)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.core.model import PatientRecord, PatientSummary
from app.core.nhs_number import format_nhs_number
from app.core.policy import FLAG_BREAK_GLASS, FLAG_SELF_OR_FAMILY

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(value: date | None) -> str:
    """12-Mar-1975, or an empty string when unknown."""
    if value is None:
        return ""
    return f"{value.day:02d}-{_MONTHS[value.month - 1]}-{value.year:04d}"


def format_partial_date(text: str | None) -> str:
    """FHIR dates may be '1998', '2001-04', '2001-04-05' or a full dateTime; show what is known."""
    if not text:
        return ""
    try:
        if len(text) == 4:
            return text
        if len(text) == 7:
            year, month = text.split("-")
            return f"{_MONTHS[int(month) - 1]}-{year}"
        if len(text) == 10:
            return format_date(date.fromisoformat(text))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return format_datetime(moment) if moment.tzinfo else format_date(moment.date())
    except (ValueError, IndexError):
        return text


def format_datetime(value: datetime | None) -> str:
    """Local time, 12-Mar-2026 14:05."""
    if value is None:
        return ""
    local = value.astimezone() if value.tzinfo else value.replace(tzinfo=UTC).astimezone()
    return f"{format_date(local.date())} {local:%H:%M}"


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def format_age(birth: date | None, today: date | None = None) -> str:
    """'47y', or '11m' / '3w' / '2d' for babies, as a clinician reads it."""
    if birth is None:
        return ""
    today = today or date.today()
    years = age_on(birth, today)
    if years >= 2:
        return f"{years}y"
    months = (today.year - birth.year) * 12 + today.month - birth.month - (today.day < birth.day)
    if months >= 1:
        return f"{months}m"
    days = (today - birth).days
    return f"{days // 7}w" if days >= 14 else f"{max(days, 0)}d"


RESEARCH_MARKER = "Research view — pseudonymised"
NHS_WITHHELD = "withheld (research view)"


def display_name(patient: PatientSummary) -> str:
    """FAMILY, Given Names — the NHS CUI order, family name upper-cased. A pseudonymised patient (the
    research view) is named by the pseudonym only."""
    if patient.pseudonym:
        return f"Research participant {patient.pseudonym}"
    family = patient.family.upper() if patient.family else "(NO FAMILY NAME)"
    given = " ".join(patient.given)
    return f"{family}, {given}" if given else family


def format_sex(sex: str | None) -> str:
    return {"male": "Male", "female": "Female", "other": "Other", "unknown": "Unknown"}.get(sex or "", "Not known")


def format_born(patient: PatientSummary, today: date | None = None) -> str:
    """'12-Mar-1975 (47y)'; only the year ('1975') in the research view; 'Not known'."""
    if patient.pseudonym:
        return str(patient.birth_year) if patient.birth_year else "Not known"
    if patient.birth_date is None:
        return "Not known"
    return f"{format_date(patient.birth_date)} ({format_age(patient.birth_date, today)})"


def format_patient_nhs_number(patient: PatientSummary) -> str:
    """The NHS number as shown under a banner: '943 476 5919', 'Not recorded', or withheld (research view)."""
    if patient.pseudonym:
        return NHS_WITHHELD
    return format_nhs_number(patient.nhs_number) or "Not recorded"


BREAK_GLASS_NOTE = "Opened by break-glass. This access is flagged for review."
SELF_FAMILY_NOTE = "This patient appears to be you or a family member. This access is flagged for review."


def access_notes(record: PatientRecord) -> list[str]:
    """How the access policy let this record open, in words, when the access is flagged for review:
    what every face shows first, under the banner (the reason given on a line of its own)."""
    notes = []
    if FLAG_BREAK_GLASS in record.access_flags:
        notes.append(BREAK_GLASS_NOTE)
    if FLAG_SELF_OR_FAMILY in record.access_flags:
        notes.append(SELF_FAMILY_NOTE)
    if notes and record.access_reason:
        notes.append(f"Reason given: {record.access_reason}")
    return notes
