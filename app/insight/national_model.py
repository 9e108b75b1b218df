"""National context for the locality view (issue 13): what Mosaic keeps from NHS England's published data.

A `NationalFigure` is one practice's figure for one month from NHS England's "Appointments in General
Practice" (GPAD) practice-level files: a numerator and (for a rate or share) a denominator, so the store can
re-aggregate and show both. `PracticeAttributes` are the facts "similar practices" compares on: list size
and age mix from NHS Digital's "Patients Registered at a GP Practice", deprivation and rurality from the
attributes file (see app/insight/gpad.py for the formats and their sources).

Aggregates only: nothing here names or counts an individual patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class NationalFigure:
    """One practice's published figure for one month."""

    practice_code: str  # ODS code, e.g. "A81001"
    practice_name: str
    month: date  # first day of the month
    metric: str  # one of the measure names (app/insight/measures.py) that GPAD can give
    numerator: float
    denominator: float | None  # None for a count (appointments)
    group: str | None = None  # the cut's value for a mix ("telephone", "gp"), None for the practice's whole figure


@dataclass(frozen=True)
class PracticeAttributes:
    """What "similar practices" compares a practice on."""

    practice_code: str
    list_size: int
    imd_decile: int | None  # 1 = most deprived tenth of England, None when not known
    share_over_65: float | None  # 0..1 of registered patients
    share_under_18: float | None  # 0..1
    rurality: str | None  # "urban" | "rural", None when not known
