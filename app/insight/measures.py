"""The locality view's measures, defined once (issue 13): words for the reader, SQL for the store.

Every measure is a numerator and (for a rate, share or per-1,000 figure) a denominator, both additive counts,
so a figure for a locality, a range of months or a cut is the sum of its cells' numerators over the sum of
their denominators (never an average of rates), and suppression can reason about the counts.

Choices the issue leaves open (also in the README):
- dates are Europe/London local dates (app/insight/periods.py): "same day" = the same local date; a month
  or week is the local one the appointment starts in;
- "booked within 7 / 14 days": the local start date is 0 to 7 (0 to 14) days after the local creation date,
  over appointments with a creation time; one created after it started (recorded afterwards) is in the
  denominator and in neither numerator;
- median days: whole local days from creation to start, over counted appointments with a creation time;
- bookable slots are free or busy (busy-unavailable is blocked time, busy-tentative is not yet either, and
  entered-in-error is not a slot); utilisation is busy over free + busy;
- per 1,000 patients uses the practice's list size (active registered patients) as it is now: a practice
  that did not give one has no per-1,000 figure ("not provided"), and a locality's uses only practices
  that did, in numerator and denominator alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.activity import COUNTED_STATUSES


@dataclass(frozen=True)
class Measure:
    name: str
    title: str
    definition: str  # plain words, the definition
    numerator: str
    denominator: str  # "" when none
    unit: str  # "count" | "per 1,000 patients" | "%" | "days"


@dataclass(frozen=True)
class Figure:
    practice_id: str | None  # None = the whole locality (or the practices asked for)
    metric: str
    period: str  # "2026-03", "2026-W10" or "2025-12..2026-11"
    group: str | None  # the cut's value (mode, clinician type, category), else None
    value: float | None  # None when suppressed, not provided or failed
    numerator: float | None
    denominator: float | None
    suppressed: bool  # shown as "<5" (primary) or "suppressed" (secondary)
    status: str  # "ok" | "not provided" | "failed"
    error: str | None = None  # why, for "failed" or "not provided" (names the practice)
    #: "primary" (a count 1-4: show "<5"), "secondary" (hidden so a total cannot reveal one: "suppressed"), or None
    suppression: str | None = None

    @property
    def shown(self) -> str:
        """The figure as a person should see it."""
        if self.status != "ok":
            return self.status
        if self.suppressed:
            return "<5" if self.suppression == "primary" else "suppressed"
        if self.value is None:
            return "-"
        return f"{self.value:g}"


_COUNTED = "(" + ", ".join(f"'{s}'" for s in sorted(COUNTED_STATUSES)) + ")"
_STATUS_WORDS = "booked, arrived, checked-in, fulfilled or noshow"

MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("appointments", "Appointments",
            f"Appointments with a start in the period and status {_STATUS_WORDS}.",
            f"appointments starting in the period with status {_STATUS_WORDS}", "", "count"),
    Measure("appointments_per_1000", "Appointments per 1,000 patients",
            "Appointments (as above) per 1,000 registered patients (list size: active patients).",
            f"appointments starting in the period with status {_STATUS_WORDS}",
            "registered patients (list size) / 1,000", "per 1,000 patients"),
    Measure("dna_rate", "DNA rate",
            "Did not attend: noshow ÷ (fulfilled + noshow), appointments that started in the period.",
            "appointments with status noshow", "appointments with status fulfilled or noshow", "%"),
    Measure("same_day_share", "Same-day share",
            "Appointments created and started on the same day ÷ appointments with a creation time.",
            "appointments created on the local date they started",
            "appointments with a creation time", "%"),
    Measure("within_7_days", "Booked within 7 days",
            "Appointments starting 0 to 7 days after they were booked ÷ appointments with a creation time.",
            "appointments starting 0-7 days after creation", "appointments with a creation time", "%"),
    Measure("within_14_days", "Booked within 14 days",
            "Appointments starting 0 to 14 days after they were booked ÷ appointments with a creation time.",
            "appointments starting 0-14 days after creation", "appointments with a creation time", "%"),
    Measure("median_days_to_appointment", "Median days from booking to appointment",
            "The median of whole days from booking (creation) to the appointment's start.",
            "", "appointments with a creation time", "days"),
    Measure("slots_per_1000", "Capacity: bookable slots per 1,000 patients",
            "Bookable slots (free or busy) starting in the period per 1,000 registered patients.",
            "slots with status free or busy", "registered patients (list size) / 1,000", "per 1,000 patients"),
    Measure("utilisation", "Utilisation",
            "Busy slots ÷ (busy + free) slots starting in the period.",
            "slots with status busy", "slots with status free or busy", "%"),
)}


@dataclass(frozen=True)
class MeasureSql:
    """How the store counts a measure: SQL sums over one table's rows (ANSI SQL both engines run)."""

    table: str  # "appointments" | "slots"
    numerator: str  # a SUM(...) argument, or "" for the median
    denominator: str | None  # a SUM(...) argument; None for a count or per-1,000 figure
    per_1000: bool = False
    median: bool = False
    percent: bool = False


def _when(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


_IS_COUNTED = f"status IN {_COUNTED}"
_WITH_CREATED = f"{_IS_COUNTED} AND created_date IS NOT NULL"

MEASURE_SQL: dict[str, MeasureSql] = {
    "appointments": MeasureSql("appointments", _when(_IS_COUNTED), None),
    "appointments_per_1000": MeasureSql("appointments", _when(_IS_COUNTED), None, per_1000=True),
    "dna_rate": MeasureSql("appointments", _when("status = 'noshow'"),
                           _when("status IN ('fulfilled', 'noshow')"), percent=True),
    "same_day_share": MeasureSql("appointments", _when(f"{_WITH_CREATED} AND days_to_start = 0"),
                                 _when(_WITH_CREATED), percent=True),
    "within_7_days": MeasureSql("appointments", _when(f"{_WITH_CREATED} AND days_to_start BETWEEN 0 AND 7"),
                                _when(_WITH_CREATED), percent=True),
    "within_14_days": MeasureSql("appointments", _when(f"{_WITH_CREATED} AND days_to_start BETWEEN 0 AND 14"),
                                 _when(_WITH_CREATED), percent=True),
    "median_days_to_appointment": MeasureSql("appointments", "", _when(_WITH_CREATED), median=True),
    "slots_per_1000": MeasureSql("slots", _when("status IN ('free', 'busy')"), None, per_1000=True),
    "utilisation": MeasureSql("slots", _when("status = 'busy'"), _when("status IN ('free', 'busy')"),
                              percent=True),
}

#: the rows the median is taken over (the same rows as its denominator)
MEDIAN_ROWS = _WITH_CREATED

#: the cuts figures() offers
CUTS: tuple[str, ...] = ("practice", "mode", "clinician-type", "category", "week", "month", "locality")
#: a cut or filter's name -> the column it groups on
GROUP_COLUMNS: dict[str, str] = {"mode": "mode", "clinician-type": "clinician_type", "category": "category"}
#: what a row with no mapped value is grouped as (counted, never dropped; the quality badge shows its share)
UNMAPPED = "unmapped"


def value_of(spec: MeasureSql, numerator: float, denominator: float | None) -> float | None:
    """A figure's value from its (summed) numerator and denominator; None when there is nothing to divide by."""
    if spec.per_1000:
        return None if not denominator else round(numerator * 1000.0 / denominator, 2)
    if spec.denominator is None:
        return numerator
    if not denominator:
        return None
    share = numerator / denominator
    return round(share * 100.0, 2) if spec.percent else share


def measure(name: str) -> Measure:
    try:
        return MEASURES[name]
    except KeyError:
        raise ValueError(f"unknown measure {name!r}; one of: {', '.join(MEASURES)}") from None
