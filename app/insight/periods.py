"""Periods of the locality view: a month ("2026-03"), an ISO week ("2026-W10") or a range of months
("2025-12..2026-11"), and the local calendar that decides which day, week and month an event falls in.

Choice: every date is the practice's local date in Europe/London (GMT in winter, BST in summer). An
appointment at 00:30 BST on 1 April is an April appointment, as the practice's own book and NHS England's
GPAD (which counts by the appointment's local date) say, though it is 23:30 UTC on 31 March. "Same day" is
the same local date; days from booking to appointment are local dates subtracted. The store keeps each row's
local date, week and month beside its UTC time, so the SQL never converts time zones (and DuckDB and
PostgreSQL cannot disagree about them).

A week belongs to a month or a range when its Monday does: weeks are never cut at a month's edge, so a week's
figure is the same whatever period it was asked for in (suppression relies on each cell being one thing).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

#: the practices' time zone: decides the local date, week and month of every event
LOCAL_TZ = ZoneInfo("Europe/London")

Grain = Literal["month", "week"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def as_utc(moment: datetime) -> datetime:
    """An aware time in UTC (a naive one is taken as UTC)."""
    if moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_date(moment: datetime | None) -> date | None:
    """The Europe/London calendar date of a time (a naive one is taken as UTC)."""
    if moment is None:
        return None
    u = as_utc(moment)
    return _local_date_of_utc_hour(u.year, u.month, u.day, u.hour)


@functools.lru_cache(maxsize=1 << 16)
def _local_date_of_utc_hour(year: int, month: int, day: int, hour: int) -> date:
    """London's clocks change on the hour (01:00 UTC), so a UTC hour has one local date: one conversion per
    hour instead of one per row (a quarter of a million rows load in a fraction of the time)."""
    return datetime(year, month, day, hour, tzinfo=UTC).astimezone(LOCAL_TZ).date()


@functools.lru_cache(maxsize=1 << 12)
def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


@functools.lru_cache(maxsize=1 << 12)
def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _month_start(text: str) -> date:
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def _month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A period as the user gave it, with its first and last local dates (inclusive)."""

    text: str
    first: date
    last: date
    grain: Grain  # "week" for an ISO week, else "month"

    def months(self) -> list[str]:
        """The calendar months of a month or range period (a week period has none of its own)."""
        if self.grain == "week":
            raise ValueError(f"{self.text} is a week; ask for a month or a range of months to cut by month")
        keys, day = [], self.first
        while day <= self.last:
            keys.append(month_key(day))
            day = _month_end(day) + timedelta(days=1)
        return keys

    def weeks(self) -> list[str]:
        """The ISO weeks whose Monday falls in the period (a week period: itself)."""
        monday = self.first - timedelta(days=self.first.weekday())
        if monday < self.first:
            monday += timedelta(days=7)
        keys = []
        while monday <= self.last:
            keys.append(week_key(monday))
            monday += timedelta(days=7)
        return keys

    def units(self) -> list[str]:
        """The cells' time units: the week itself, or the months."""
        return self.weeks() if self.grain == "week" else self.months()


def parse_period(text: str) -> Period:
    """"2026-03", "2026-W10" or "2025-12..2026-11"; ValueError names what is wrong."""
    text = text.strip()
    if ".." in text:
        start_text, _, end_text = text.partition("..")
        first, last_first = _month_start(start_text.strip()), _month_start(end_text.strip())
        if last_first < first:
            raise ValueError(f"{text!r}: the range ends before it starts")
        return Period(text, first, _month_end(last_first), "month")
    week = _WEEK.match(text)
    if week:
        year, number = int(week.group(1)), int(week.group(2))
        try:
            monday = date.fromisocalendar(year, number, 1)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an ISO week") from exc
        return Period(text, monday, monday + timedelta(days=6), "week")
    first = _month_start(text)
    return Period(text, first, _month_end(first), "month")


def months_back(last: date, count: int) -> list[str]:
    """`count` months ending with `last`'s month, newest first ("2026-03", "2026-02", ...)."""
    index = last.year * 12 + last.month - 1
    return [f"{(i // 12):04d}-{(i % 12 + 1):02d}" for i in range(index, index - count, -1)]


def default_month(latest: str | None, today: date | None = None) -> str:
    """The month figures are for when none is asked for (the Locality view opening, `mosaic insight show` and
    `peers` without --period): the latest whole month with appointments. This month is not over yet: a few days
    of it are mostly counts under 5, and its figures move from day to day."""
    today = today or date.today()
    current = f"{today:%Y-%m}"
    if latest is None or latest >= current:
        return months_back(today, 2)[1]
    return latest
