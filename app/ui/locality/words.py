"""The Locality view's figures as words: values with units, "<5" and "suppressed" never as numbers, "not provided by
this practice's system" and "failed: why" never as zero, and titles that always state the period and the cut."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from app.insight.measures import MEASURES, Figure
from app.insight.periods import parse_period

NOT_PROVIDED = "not provided by this practice's system"
CUT_WORDS = {"practice": "practice", "mode": "mode", "clinician-type": "clinician type",
             "category": "category (slot type)", "month": "month", "week": "week"}
#: the words for the store's values (FHIR/GPAD codes) in labels
GROUP_WORDS = {"face-to-face": "Face to face", "telephone": "Telephone", "video": "Video", "home-visit": "Home visit",
               "gp": "GP", "nurse": "Nurse", "pharmacist": "Pharmacist", "other": "Other staff",
               "unmapped": "Not mapped"}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def group_words(value: str | None) -> str:
    if value is None:
        return ""
    return GROUP_WORDS.get(value, value)


def number(value: float, unit: str) -> str:
    """A value in its unit's precision: counts whole, shares and rates to one decimal place."""
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "days":
        return f"{value:,.1f}".removesuffix(".0")
    return f"{value:,.1f}"


def unit_suffix(unit: str) -> str:
    return {"count": "", "%": " %", "days": " days", "per 1,000 patients": " per 1,000"}.get(unit, f" {unit}")


def cell_text(figure: Figure, unit: str) -> str:
    """A figure as the view shows it."""
    if figure.status == "not provided":
        return NOT_PROVIDED
    if figure.status == "failed":
        return f"failed: {failure(figure)}"
    if figure.suppressed:
        return figure.shown  # "<5" or "suppressed": the figure's own words
    if figure.value is None:
        return "no data"
    return number(figure.value, unit) + unit_suffix(unit)


def failure(figure: Figure) -> str:
    return figure.error or "no reason given"


def count_text(value: float | None, figure: Figure) -> str:
    """A numerator or denominator count, or why there is none."""
    if figure.status == "not provided":
        return NOT_PROVIDED
    if figure.status == "failed":
        return "failed"
    if figure.suppressed:
        return figure.shown
    return "-" if value is None else f"{value:,.0f}"


def period_words(period: str) -> str:
    """"November 2026", "week 10 of 2026 (2 Mar – 8 Mar)", "December 2024 to November 2026"."""
    if ".." in period:
        first, _, last = period.partition("..")
        return f"{month_words(first)} to {month_words(last)}"
    if "-W" in period:
        parsed = parse_period(period)
        year, week = period.split("-W")
        return f"week {int(week)} of {year} ({_day(parsed.first)} – {_day(parsed.last)})"
    return month_words(period)


def month_words(month: str) -> str:
    year, number_ = month.split("-")
    return f"{_MONTHS[int(number_) - 1]} {year}"


def short_month(month: str) -> str:
    year, number_ = month.split("-")
    return f"{_MONTHS[int(number_) - 1][:3]} {year[2:]}"


def _day(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1][:3]}"


def filter_words(filters: Mapping[str, str]) -> str:
    """"telephone, GP only" or "" (every mode, clinician type and category)."""
    return ", ".join(group_words(v) for _, v in sorted(filters.items()))


def chart_title(metric: str, cut: str, period: str, where: str, filters: Mapping[str, str]) -> str:
    """"DNA rate (%) by practice · November 2026 · the locality (5 practices) · telephone only"."""
    measure = MEASURES[metric]
    unit = "" if measure.unit == "count" else f" ({measure.unit})"
    parts = [f"{measure.title}{unit} by {CUT_WORDS.get(cut, cut)}", period_words(period), where]
    chosen = filter_words(filters)
    parts.append(f"{chosen} only" if chosen else "every mode, clinician type and category")
    return " · ".join(p for p in parts if p)
