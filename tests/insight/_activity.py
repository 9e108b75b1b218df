"""Building Activity objects by hand for the insight tests: each helper says exactly what it makes, so a
test can count its expected figures from the arguments, not from the code under test."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from app.core.activity import Activity, ActivityAppointment, ActivitySlot

_ids = itertools.count(1)


def appointments(n: int, *, start: datetime, status: str, created_days_before: int | None = 0,
                 mode: str | None = "face-to-face", clinician: str | None = "gp",
                 category: str | None = "General Consultation Routine", local_type: str | None = "Routine",
                 prefix: str = "a") -> list[ActivityAppointment]:
    """n appointments starting at `start` (one minute apart), created `created_days_before` whole days
    earlier at the same time of day (None: no creation time)."""
    out = []
    for i in range(n):
        when = start + timedelta(minutes=i)
        created = None if created_days_before is None else when - timedelta(days=created_days_before)
        out.append(ActivityAppointment(f"{prefix}{next(_ids)}", status, when, created, mode, clinician, category,
                                       local_type))
    return out


def slots(n: int, *, start: datetime, status: str, mode: str | None = "face-to-face", clinician: str | None = "gp",
          category: str | None = "General Consultation Routine", local_type: str | None = "Routine",
          prefix: str = "s") -> list[ActivitySlot]:
    return [ActivitySlot(f"{prefix}{next(_ids)}", start + timedelta(minutes=10 * i),
                         start + timedelta(minutes=10 * i + 10), status, None, clinician, mode, category, local_type)
            for i in range(n)]


def activity(practice_id: str, *, appts: list[ActivityAppointment] = (),  # type: ignore[assignment]
             slot_list: list[ActivitySlot] = (),  # type: ignore[assignment]
             list_size: int | None = 2000, since: datetime | None = None,
             first: date = date(2026, 1, 1), last: date = date(2026, 12, 31)) -> Activity:
    return Activity(practice_id, first, last, datetime(2026, 12, 1, tzinfo=UTC), since, tuple(slot_list),
                    tuple(appts), (), list_size)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
