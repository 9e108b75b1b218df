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


# --- clinical words for record entries (never a raw FHIR code on screen) ----------------------------------

#: the group an entry falls in within its section, as a clinician reads the record
ACTIVE, PAST, REPEAT, ACUTE, CURRENT = "active", "past", "repeat", "acute", "current"

GROUP_TITLES: dict[tuple[str, str], str] = {
    ("problems", ACTIVE): "Active problems",
    ("problems", PAST): "Significant past problems",
    ("medications", REPEAT): "Repeat medication",
    ("medications", ACUTE): "Acute medication",
    ("medications", CURRENT): "Current medication",  # the sender does not say repeat or acute
    ("medications", PAST): "Past medication",
}

_PAST_PROBLEM = {"inactive", "resolved", "remission"}
_PAST_MEDICATION = {"stopped", "completed", "cancelled", "entered-in-error", "ended", "not-taken", "inactive"}

#: what a status code reads as; a status that is what the clinician expects there says nothing (see status_words)
_STATUS_WORDS = {
    "active": "Active", "inactive": "Inactive", "resolved": "Resolved", "remission": "In remission",
    "recurrence": "Recurrence", "relapse": "Relapse", "stopped": "Stopped", "completed": "Completed",
    "cancelled": "Cancelled", "on-hold": "On hold", "draft": "Draft", "unknown": "Status unknown",
    "entered-in-error": "Entered in error", "ended": "Ended", "intended": "Intended", "not-taken": "Not taken",
    "final": "Final result", "preliminary": "Preliminary result", "amended": "Amended result",
    "corrected": "Corrected result", "registered": "Awaiting result", "partial": "Partial result",
    "finished": "Completed", "in-progress": "In progress", "planned": "Planned", "arrived": "Arrived",
    "triaged": "Triaged", "onleave": "On leave", "not-done": "Not given", "unconfirmed": "Unconfirmed",
    "confirmed": "Confirmed", "refuted": "Refuted", "provisional": "Provisional", "differential": "Differential",
}

#: statuses that are the ordinary case in their section (a final result, a finished consultation): no words
_ORDINARY = {
    "problems": {"active", "inactive", "resolved"},  # already said by the group (active / past)
    "medications": {"active"},
    "allergies": {"active", "confirmed"},
    "encounters": {"finished"},
    "observations": {"final"},
    "immunisations": {"completed"},
}


def entry_group(section: str, entry_group_: str | None, status: str | None) -> str | None:
    """Which group an entry is read in: problems active | past; medications repeat | acute | current | past.
    The sender's own grouping first; otherwise worked out from the status (an unknown status stays with
    the current ones, where it is seen). None for sections without groups."""
    code = (status or "").strip().lower()
    if section == "problems":
        if entry_group_ in (ACTIVE, PAST):
            return entry_group_
        return PAST if code in _PAST_PROBLEM else ACTIVE
    if section == "medications":
        if code in _PAST_MEDICATION or entry_group_ == PAST:
            return PAST
        return entry_group_ if entry_group_ in (REPEAT, ACUTE) else CURRENT
    return None


def status_words(section: str, status: str | None) -> str:
    """A status as a clinician says it ("Stopped", "Preliminary result"), or "" when it is the ordinary case
    there (a final result, a finished consultation, an active problem under Active problems). An unknown
    code is written as words, never shown raw ("in-progress" -> "In progress")."""
    code = (status or "").strip().lower()
    if not code or code in _ORDINARY.get(section, set()):
        return ""
    words = _STATUS_WORDS.get(code)
    if words is None:
        words = code.replace("-", " ").replace("_", " ")
        words = words[:1].upper() + words[1:]
    return words


def severity_words(severity: str | None) -> str:
    """An allergy's severity or criticality in words: "Severe", "High risk"."""
    text = (severity or "").strip().lower()
    return {"high": "High risk", "low": "Low risk", "unable-to-assess": "Risk not assessed"}.get(
        text, text[:1].upper() + text[1:])


#: abnormal flags (FHIR v3 ObservationInterpretation): (symbol, words, level 1 abnormal / 2 critical)
_FLAGS = {
    "H": ("▲", "High", 1), "L": ("▼", "Low", 1), "HH": ("▲▲", "Critically high", 2),
    "LL": ("▼▼", "Critically low", 2), "A": ("◆", "Abnormal", 1), "AA": ("◆◆", "Critically abnormal", 2),
    "HU": ("▲▲", "Significantly high", 2), "LU": ("▼▼", "Significantly low", 2), "POS": ("◆", "Positive", 1),
    "DET": ("◆", "Detected", 1), "R": ("◆", "Resistant", 1), "I": ("◆", "Intermediate", 1),
    ">": ("▲", "Above the measurable range", 1), "<": ("▼", "Below the measurable range", 1),
}


def measurement_flag(flag: str | None, value: float | None = None, low: float | None = None,
                     high: float | None = None) -> str | None:
    """The flag as sent, else worked out from the reference range (None: normal, or nothing to go on)."""
    if flag:
        return flag.strip().upper()
    if value is None:
        return None
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return None


def flag_words(flag: str | None) -> tuple[str, int]:
    """('▲ High', 1): the symbol and words of an abnormal flag, and its level (0: normal or none, 1: abnormal,
    2: critical). Shown in words, a symbol and colour together, never colour alone."""
    code = (flag or "").strip().upper()
    if not code or code in ("N", "NEG", "ND", "S"):
        return "", 0
    symbol, words, level = _FLAGS.get(code, ("◆", f"Abnormal ({code})", 1))
    return f"{symbol} {words}", level


def format_number(value: float) -> str:
    """6.4, 142, 0.05: as few digits as the value needs."""
    return f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}"


def format_value(value: float | None, unit: str | None, text: str | None) -> str:
    """'6.4 mmol/L', or the value as sent when it is not a number ('Positive', '<5')."""
    if value is not None:
        shown = format_number(value)
        return f"{shown} {unit}".strip() if unit else shown
    return (text or "").strip()


def format_range(low: float | None, high: float | None, range_text: str | None) -> str:
    """'0–5.0', '< 5.2', '> 60', or the range as the sender wrote it."""
    if low is not None and high is not None:
        return f"{format_number(low)}–{format_number(high)}"
    if high is not None:
        return f"< {format_number(high)}"
    if low is not None:
        return f"> {format_number(low)}"
    return (range_text or "").strip()
