"""What the search results' cells say beyond the summary's own fields: the age (or *Deceased*), and the keys
the columns sort by when a heading is clicked.

Sort keys are strings, so Qt's proxy compares them without calling back into Python; an unknown value sorts
after every known one ("~" follows digits and capitals).
"""

from __future__ import annotations

from datetime import date

from app.core.display import format_age, format_date
from app.core.model import PatientSummary

UNKNOWN_LAST = "~"
DECEASED = "Deceased"


def _spelled(short: str) -> str:
    """'47y' -> '47 years', '1m' -> '1 month': what a screen reader and the tooltip say."""
    if not short:
        return "Not known"
    number, unit = short[:-1], short[-1]
    word = {"y": "year", "m": "month", "w": "week", "d": "day"}[unit]
    return f"{number} {word}" + ("" if number == "1" else "s")


def age_cell(patient: PatientSummary, today: date | None = None) -> tuple[str, str]:
    """The Age column's text and its spelled-out description: '47y' / '11m' (months under two years),
    'Deceased', or the research view's age from the year of birth alone ('51–52y')."""
    today = today or date.today()
    if patient.is_deceased:
        died = patient.deceased if isinstance(patient.deceased, date) else None
        if died is None:
            return DECEASED, ("Deceased (the date is withheld in the research view)" if patient.pseudonym
                              else "Deceased (date of death not recorded)")
        at = f", aged {_spelled(format_age(patient.birth_date, died))}" if patient.birth_date else ""
        return DECEASED, f"Died {format_date(died)}{at}"
    if patient.pseudonym:
        if not patient.birth_year:
            return "", "Not known"
        oldest = today.year - patient.birth_year
        return f"{oldest - 1}–{oldest}y", f"{oldest - 1} or {oldest} years (from the year of birth)"
    short = format_age(patient.birth_date, today)
    return short, _spelled(short)


def age_sort_key(patient: PatientSummary, today: date | None = None) -> str:
    """Youngest first; the deceased after the living, then unknown ages."""
    today = today or date.today()
    if patient.is_deceased:
        return "1"
    if patient.birth_date is not None:
        return f"0{max(0, (today - patient.birth_date).days):07d}"
    if patient.birth_year:
        return f"0{max(0, today.year - patient.birth_year) * 366:07d}"
    return UNKNOWN_LAST


def born_sort_key(patient: PatientSummary) -> str:
    if patient.birth_date is not None:
        return patient.birth_date.isoformat()
    return str(patient.birth_year) if patient.birth_year else UNKNOWN_LAST


def name_sort_key(patient: PatientSummary) -> str:
    return "\t".join((patient.pseudonym or "", patient.family.upper(), " ".join(patient.given).upper(),
                      patient.birth_date.isoformat() if patient.birth_date else ""))


def text_sort_key(text: str) -> str:
    """Case and spacing do not change the order; empty sorts last."""
    return "".join(text.split()).upper() or UNKNOWN_LAST

