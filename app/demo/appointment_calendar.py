"""Days, UK local time and England's bank holidays for the demo appointment books.

Clinic times are UK wall-clock times (08:30 is 08:30 in winter and in summer), so each day carries its own
UTC offset: the Europe/London offset at midday (the clocks change at 01:00 UTC on a Sunday, when no clinic runs;
a night-time booking in that hour is an hour out, which the demo accepts).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from app.insight.periods import LOCAL_TZ

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
#: "HH:MM" for every minute of a day
HHMM: tuple[str, ...] = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(1440))


def uk_offset_hours(day: date) -> int:
    """1 during British Summer Time, else 0 (the offset at midday)."""
    offset = datetime.combine(day, time(12), LOCAL_TZ).utcoffset()
    return 1 if offset else 0


def local_midnight_epoch(day: date) -> int:
    """The UTC epoch second of 00:00 UK time on `day`."""
    return (day.toordinal() - _EPOCH_ORDINAL) * 86400 - 3600 * uk_offset_hours(day)


def easter_sunday(year: int) -> date:
    """Western Easter (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    return date(year, month, (h + ell - 7 * m + 114) % 31 + 1)


def bank_holidays(year: int) -> set[date]:
    """England and Wales's regular bank holidays (substitute days included; one-off royal ones are not)."""
    def first_monday(month: int) -> date:
        first = date(year, month, 1)
        return first + timedelta(days=(7 - first.weekday()) % 7)

    def last_monday(month: int) -> date:
        last = date(year, month + 1, 1) - timedelta(days=1)
        return last - timedelta(days=last.weekday())

    new_year = date(year, 1, 1)
    while new_year.weekday() >= 5:
        new_year += timedelta(days=1)
    easter = easter_sunday(year)
    days = {new_year, easter - timedelta(days=2), easter + timedelta(days=1), first_monday(5), last_monday(5),
            last_monday(8)}
    christmas, boxing = date(year, 12, 25), date(year, 12, 26)
    if christmas.weekday() == 5:  # Saturday: Monday 27th and Tuesday 28th
        christmas, boxing = date(year, 12, 27), date(year, 12, 28)
    elif christmas.weekday() == 6:  # Sunday: Boxing Day Monday, Christmas Tuesday
        christmas = date(year, 12, 27)
    elif boxing.weekday() == 5:  # Friday Christmas: Boxing Day moves to Monday 28th
        boxing = date(year, 12, 28)
    return days | {christmas, boxing}


class Calendar:
    """Days from `first` on, by index: each day's date text, UTC offset text and local midnight (epoch).

    A time in the book is a local minute index: day index * 1440 + minute of the day."""

    def __init__(self, first: date, days: int) -> None:
        self.first = first
        self.dates = [first + timedelta(days=i) for i in range(days)]
        self.day_text = [d.isoformat() for d in self.dates]
        self.offset_text = ["+01:00" if uk_offset_hours(d) else "+00:00" for d in self.dates]
        self.midnight = [local_midnight_epoch(d) for d in self.dates]

    def __len__(self) -> int:
        return len(self.dates)

    def index(self, day: date) -> int:
        return (day - self.first).days

    def epoch(self, minute: int) -> int:
        return self.midnight[minute // 1440] + (minute % 1440) * 60

    def text(self, minute: int) -> str:
        """The local minute as a FHIR instant with its UK offset."""
        d = minute // 1440
        return f"{self.day_text[d]}T{HHMM[minute % 1440]}:00{self.offset_text[d]}"

    def minute_of(self, when: datetime) -> int:
        """The local minute index of an aware datetime (ValueError outside the calendar)."""
        epoch = when.timestamp()
        day = when.astimezone(UTC).date()
        d = self.index(day)
        for candidate in (d + 1, d, d - 1):
            if 0 <= candidate < len(self.midnight) and self.midnight[candidate] <= epoch:
                return candidate * 1440 + int(epoch - self.midnight[candidate]) // 60
        raise ValueError(f"{when.isoformat()} is outside the appointment book's calendar")


_UTC_DAYS: dict[int, str] = {}


def utc_text(epoch: float) -> str:
    """An epoch second as a FHIR instant in UTC (whole seconds quickly; fractions through datetime)."""
    if isinstance(epoch, int):
        day, rest = divmod(epoch, 86400)
        text = _UTC_DAYS.get(day)
        if text is None:
            text = _UTC_DAYS[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        return f"{text}T{HHMM[rest // 60]}:{rest % 60:02d}Z"
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
